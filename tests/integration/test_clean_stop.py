"""Nothing a CTI peer sent is lost: many `cti-journal simulate --connect` clients coming and going
into one listening gateway, and a SIGTERM of the gateway mid-stream (listen and tcp sources)
while its sockets still hold unread lines. Compared with what the simulators counted as sent
(`--expect-out`), as multisets: 0 lost, 0 duplicated.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.harness import Pipeline, free_port, wait_for

pytestmark = pytest.mark.timeout(180)

_KEYS = (
    "in_out", "zeitpunkt", "verb_zustand", "rufnummer", "name", "firma", "lokale_rufnummer",
    "weitergeleitet", "datensatz_id", "datensatz_tabelle", "rufdauer_ms", "verbdauer_sec", "lcr",
    "gebuehren", "amtsholung",
)  # fmt: skip


def _key(entry: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple("" if entry.get(k) is None else str(entry.get(k)) for k in _KEYS)


class Sim:
    """One `cti-journal simulate` process and the entries it counted as sent."""

    def __init__(self, work: Path, name: str, *args: str) -> None:
        self.expect = work / f"{name}.expect.jsonl"
        self.log = work / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cti_journal.cli", "simulate",
                 "--expect-out", str(self.expect), *args],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def sent(self) -> list[dict[str, Any]]:
        text = self.expect.read_bytes() if self.expect.exists() else b""
        return [orjson.loads(line) for line in text.splitlines() if line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _assert_exactly_once(pipeline: Pipeline, sent: Iterable[Mapping[str, Any]]) -> None:
    expected = Counter(_key(e) for e in sent)
    total = sum(expected.values())
    got: list[dict[str, Any]] = []

    def arrived() -> bool:
        got.extend(pipeline.entries("lookup", remove=True))
        return len(got) >= total

    with contextlib.suppress(AssertionError):  # the comparison below says which are missing
        wait_for(arrived, 60, f"{total} entries in the lookup queue")
    time.sleep(1.0)
    got.extend(pipeline.entries("lookup", remove=True))  # anything more would be a duplicate
    received = Counter(_key(e) for e in got)
    lost, doubled = expected - received, received - expected
    assert (sum(lost.values()), sum(doubled.values())) == (0, 0), (total, lost, doubled)
    assert len({e["event_id"] for e in got}) == total
    assert pipeline.dead_letters() == []


def _listener(pipeline_factory: Any, port: int) -> Pipeline:
    pipeline: Pipeline = pipeline_factory(
        {
            "gateway": {
                "source": "listen",
                "listen_port": port,
                "timezone": "Europe/Berlin",
                "preenriched": "lookup",
            }
        }
    )
    return pipeline


def _start_gateway(pipeline: Pipeline, name: str = "gateway") -> None:
    pipeline.start(name, "gateway")
    wait_for(lambda: "connected to broker" in pipeline.log(name), 30, f"{name} connected")


def test_many_simulate_clients_coming_and_going_lose_nothing(pipeline_factory, tmp_path):
    """Clients of different lengths start at different times, so that clients close while
    others are sending: every line each of them sent is one entry."""
    port = free_port()
    pipeline = _listener(pipeline_factory, port)
    _start_gateway(pipeline)
    wait_for(lambda: "listening for CTI clients" in pipeline.log("gateway"), 30, "the listener")
    plan = [(0.0, 1600), (0.0, 300), (0.3, 900), (0.8, 400), (1.5, 1200), (2.2, 250), (2.5, 700)]
    sims: list[Sim] = []
    began = time.monotonic()
    try:
        for i, (at, count) in enumerate(plan):
            time.sleep(max(0.0, began + at - time.monotonic()))
            args = ["--count", str(count), "--rate", "400", "--seed", str(i + 1)]
            sims.append(Sim(tmp_path, f"sim{i}", "--connect", f"127.0.0.1:{port}", *args))
        for sim in sims:
            assert sim.wait(60) == 0, sim.log.read_text()
    finally:
        for sim in sims:
            sim.stop()
    sent = [e for sim in sims for e in sim.sent()]
    assert len(sent) == sum(count for _, count in plan)
    _assert_exactly_once(pipeline, sent)
    pipeline.assert_running()


def _terminate_while_lines_wait_in_the_sockets(pipeline: Pipeline) -> int:
    """Freeze the gateway so that its sockets fill with unread lines, then SIGTERM it: the stop
    must read them (and make the peers stop at a line boundary) before it closes."""
    proc = pipeline.procs["gateway"]
    proc.send_signal(signal.SIGSTOP)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    return proc.wait(timeout=60)


def test_sigterm_of_a_listening_gateway_mid_stream_loses_nothing(pipeline_factory, tmp_path):
    port = free_port()
    pipeline = _listener(pipeline_factory, port)
    _start_gateway(pipeline)
    wait_for(lambda: "listening for CTI clients" in pipeline.log("gateway"), 30, "the listener")
    sims = [
        Sim(tmp_path, f"sim{i}", "--connect", f"127.0.0.1:{port}", "--count", "3000",
            "--rate", "800", "--seed", str(i + 1))
        for i in range(3)
    ]  # fmt: skip
    try:
        wait_for(lambda: sum(len(s.sent()) for s in sims) >= 1500, 30, "1500 entries sent")
        assert _terminate_while_lines_wait_in_the_sockets(pipeline) == 0
        pipeline.start("gateway", "gateway")  # the clients reconnect and send the rest
        for sim in sims:
            assert sim.wait(90) == 0, sim.log.read_text()
    finally:
        for sim in sims:
            sim.stop()
    _assert_exactly_once(pipeline, [e for sim in sims for e in sim.sent()])
    assert "(stopped)" in pipeline.log("gateway")  # the connections were drained, not cut
    pipeline.assert_running()


def test_sigterm_of_a_tcp_gateway_mid_stream_loses_nothing(pipeline_factory, tmp_path):
    """The gateway connects to the CTI server (the simulator serving): the server keeps sending
    until it sees the gateway's half-close, then keeps the rest for the next connection."""
    cti_port = free_port()
    server = Sim(tmp_path, "server", "--listen", f"127.0.0.1:{cti_port}", "--count", "8000",
                 "--rate", "2000", "--seed", "7")  # fmt: skip
    try:
        pipeline: Pipeline = pipeline_factory(
            {
                "gateway": {
                    "source": "tcp",
                    "port": cti_port,
                    "timezone": "Europe/Berlin",
                    "preenriched": "lookup",
                    "reconnect_max_s": 1.0,
                }
            }
        )
        _start_gateway(pipeline)
        wait_for(lambda: len(server.sent()) >= 2000, 30, "2000 entries sent")
        assert _terminate_while_lines_wait_in_the_sockets(pipeline) == 0
        pipeline.start("gateway", "gateway")
        assert server.wait(90) == 0, server.log.read_text()
    finally:
        server.stop()
    _assert_exactly_once(pipeline, server.sent())
    pipeline.assert_running()
