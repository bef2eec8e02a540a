"""deploy/prometheus/: every alert has a test that fires it and one that does not, a severity, a
summary and a description (promtool itself runs the rule tests in
tests/integration/test_alert_rules.py)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = ("recording.yml", "alerts.yml")
TEST_FILES = ("alerts.test.yml", "recording.test.yml")


def _load(name: str) -> Any:
    return yaml.safe_load((PROMETHEUS / name).read_text(encoding="utf-8"))


def _rules(name: str) -> list[dict[str, Any]]:
    return [rule for group in _load(name)["groups"] for rule in group["rules"]]


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    names = {rule["alert"] for rule in _rules("alerts.yml") if "alert" in rule}
    fired: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    for test in _load("alerts.test.yml")["tests"]:
        for case in test.get("alert_rule_test", []):
            (fired if case["exp_alerts"] else quiet)[case["alertname"]] += 1
    assert set(fired) | set(quiet) <= names, "a test names an alert that does not exist"
    assert names - set(fired) == set(), "alerts no test fires"
    assert names - set(quiet) == set(), "alerts no test shows quiet"


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for rule in _rules("alerts.yml"):
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_the_queue_prefix_is_a_setting_not_part_of_the_alerts() -> None:
    """Queue names come from the cti_journal:pipeline rule's `prefix` label in recording.yml."""
    alerts = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    assert not re.search(r'queue\s*=~?\s*"', alerts), "alerts.yml names a queue"
    (pipeline,) = [r for r in _rules("recording.yml") if r.get("record") == "cti_journal:pipeline"]
    assert pipeline["labels"]["prefix"] == "cti-journal"
    recording = (PROMETHEUS / "recording.yml").read_text(encoding="utf-8")
    assert recording.count("cti-journal") == 1, "the prefix is written in one place only"


def test_prometheus_loads_both_rule_files() -> None:
    config = _load("prometheus.yml")
    assert [Path(f).name for f in config["rule_files"]] == list(RULE_FILES)
