"""The CTI-link alert on a real Prometheus (Debian's package) scraping a real gateway.

A simulated CTI server serves the journal over TCP, a gateway reads it (source = "tcp") and
publishes to the shared RabbitMQ under a queue prefix of its own. Prometheus, with its own data
folder and port, scrapes the gateway every second and evaluates recording.yml and alerts.yml
every second; the test copy of alerts.yml only shortens CtiJournalCtiLinkDown's `for:` from 2m
to 3s. Killing the CTI server must take the alert through pending to firing (/api/v1/alerts);
starting it again must resolve it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import free_port

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERT = "CtiJournalCtiLinkDown"
FOR_IN_TEST = "3s"
SIMULATE = (sys.executable, "-m", "cti_journal.cli", "simulate", "--rate", "20")
WAIT_S = 30  # bound for each state change: scrape 1 s + evaluation 1 s + `for` 3 s + reconnect


def _prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus is not installed (Debian package prometheus, deploy/setup.sh)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI=true: a missing tool fails the run)")
        pytest.skip(message)
    return path


def _rules_with_short_for(workdir: Path) -> list[Path]:
    """recording.yml as it is; alerts.yml with the CTI-link alert's `for:` cut to seconds."""
    shutil.copy(RULES / "recording.yml", workdir / "recording.yml")
    text = (RULES / "alerts.yml").read_text(encoding="utf-8")
    head, sep, rest = text.partition(f"- alert: {ALERT}\n")
    assert sep, f"{ALERT} is not in alerts.yml"
    rule, next_rule, tail = rest.partition("\n      - alert: ")
    assert "        for: 2m\n" in rule
    rule = rule.replace("        for: 2m\n", f"        for: {FOR_IN_TEST}\n")
    (workdir / "alerts.yml").write_text(head + sep + rule + next_rule + tail, encoding="utf-8")
    return [workdir / "recording.yml", workdir / "alerts.yml"]


def _api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())["data"]


def _wait(what: str, check: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass  # Prometheus not listening yet
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s: {what}")


class Simulator:
    """`cti-journal simulate --listen`: the CTI server, killed and started again by the test."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*SIMULATE, "--listen", f"127.0.0.1:{self.port}", "--count", "1000000"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(free_port(), tmp_path / "simulator.log")
    sim.start()
    yield sim
    sim.kill()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], int]]:
    """Start Prometheus scraping a gateway's metrics port; returns Prometheus's own port."""
    binary = _prometheus()
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> int:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        rule_files = "\n".join(f"  - {p}" for p in _rules_with_short_for(tmp_path))
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n{rule_files}\n"
            "scrape_configs:\n  - job_name: cti-journal-gateway\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
            encoding="utf-8",
        )
        with open(tmp_path / "prometheus.log", "ab") as out:
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return port

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _states(port: int) -> list[str]:
    return [
        a["state"]
        for a in _api(port, "/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == ALERT
    ]


def _connected(port: int) -> list[str]:
    result = _api(port, "/api/v1/query?query=cti_journal_source_connected")["result"]
    return [sample["value"][1] for sample in result]


@pytest.mark.timeout(120)
def test_cti_link_alert_goes_pending_firing_and_resolves(
    pipeline_factory: Any, simulator: Simulator, prometheus: Callable[[int], int], tmp_path: Path
) -> None:
    metrics_port = free_port()
    pipeline = pipeline_factory(
        {
            "metrics_address": "127.0.0.1",
            "gateway": {
                "source": "tcp",
                "host": "127.0.0.1",
                "port": simulator.port,
                "reconnect_max_s": 1.0,
                "spool_dir": str(tmp_path / "spool"),
                "metrics_port": metrics_port,
            },
        }
    )
    pipeline.start("gateway", "gateway")
    port = prometheus(metrics_port)

    _wait("Prometheus scrapes the connected gateway", lambda: _connected(port) == ["1"])
    assert _states(port) == []
    pipeline.assert_running()

    simulator.kill()
    seen: list[str] = []  # every state the alert was seen in, in order

    def firing() -> bool:
        states = _states(port)
        for state in states:
            if not seen or seen[-1] != state:
                seen.append(state)
        return states == ["firing"]

    _wait(f"{ALERT} fires after the CTI server is gone", firing)
    assert seen[0] == "pending", f"the alert fired without being pending first: {seen}"

    simulator.start()
    _wait(f"{ALERT} resolves once the gateway is connected again", lambda: _states(port) == [])
    assert _connected(port) == ["1"]
    pipeline.assert_running()
