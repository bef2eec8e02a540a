"""deploy/prometheus/: promtool checks the rules and runs their unit tests (alerts.test.yml,
recording.test.yml). An integration test because it runs the real promtool (tens of seconds).

promtool comes with Debian's `prometheus` package (deploy/setup.sh installs it for the tests). In
CI (CI=true) a missing promtool fails the run; locally it skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = ("recording.yml", "alerts.yml")
TEST_FILES = ("alerts.test.yml", "recording.test.yml")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (Debian package prometheus, deploy/setup.sh)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI=true: a missing tool fails the run)")
        pytest.skip(message)
    return path


def _promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_promtool_checks_the_rule_files() -> None:
    result = _promtool_run("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", TEST_FILES)
def test_promtool_unit_tests_pass(name: str) -> None:
    result = _promtool_run("test", "rules", name)
    assert result.returncode == 0, result.stdout + result.stderr
