"""A gateway pair: two gateways read the same CTI server (each gets every line) and publish the
same event ids; the writer's ledger keeps one row per call. Killing either gateway, hard or
gently, loses nothing and doubles nothing, although a killed gateway loses what sat in its socket
and its memory buffer: the other one delivered it too.

The gateways run without a spool (memory buffer), the harshest case for the pair: every kill
drops that gateway's unconfirmed entries and its identity counters, so the test also shows that
the restarted gateway's ids stay aligned with its partner's (gateway/identity.py).
"""

from __future__ import annotations

import random
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fault.conftest import CtiServer, FaultRun
from tests.harness import free_port, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.timeout(180)]

PAIR = ("gateway-a", "gateway-b")


def scrape(port: int, metric: str) -> dict[str, float]:
    """The samples of one metric family from a process's /metrics, by their label set."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(metric):
            name, _, value = line.rpartition(" ")
            out[name[len(metric) :]] = float(value)
    return out


def start_pair(server: CtiServer, work: Path, fault_run: Any) -> tuple[FaultRun, int]:
    writer_metrics = free_port()
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port, "spool_dir": ""},
        writer={"metrics_port": writer_metrics},
    )
    for name in PAIR:
        run.env[name] = {"CTI_JOURNAL_GATEWAY__NAME": name}
    run.start("writer-1")
    run.start("lookup-1")
    for name in PAIR:
        run.start(name)
    return run, writer_metrics


def test_killing_either_gateway_of_a_pair_loses_and_doubles_nothing(
    fault_run: Any, tmp_path: Path
) -> None:
    count, rate = 5000, 160
    server = CtiServer(count, rate=rate, clients=2, duplicate_ratio=0.01).start()
    run, writer_metrics = start_pair(server, tmp_path, fault_run)
    rng = random.Random(20261201)
    kills: list[tuple[str, str, int]] = []
    try:
        wait_for(lambda: server.sim.clients == 2, 60, "both gateways to connect")
        while len(server.sent) < count - 3 * rate:
            time.sleep(rng.uniform(1.0, 3.0))
            name = rng.choice(PAIR)
            sig = rng.choice((signal.SIGKILL, signal.SIGTERM))
            kills.append((name, sig.name, len(server.sent)))
            run.pipeline.kill(name, sig)
            run.start(name)
            # The pair's promise holds while one member is up: the next kill only once both
            # read again (the restarted one also reconnected to the CTI server).
            wait_for(lambda: server.sim.clients == 2, 60, f"{name} to reconnect")
        result, dead = run.finish(server, count, rows_timeout=90)
        written = scrape(writer_metrics, "cti_journal_rows_written_by_gateway_total")
        skipped = scrape(writer_metrics, "cti_journal_duplicates_skipped_by_gateway_total")
    finally:
        server.close()
    print(f"gateway pair, {len(kills)} kills {kills}: {result}; rows written per gateway "
          f"{written}, copies skipped per gateway (overlap) {skipped}")  # fmt: skip
    assert {sig for _, sig, _ in kills} == {"SIGKILL", "SIGTERM"}
    assert {name for name, _, _ in kills} == set(PAIR)
    assert result.ok, result
    assert dead == []
    assert sum(written.values()) == count
    # Both copies of most entries reached the writer: each gateway's copy was skipped at times.
    assert {'{gateway="gateway-a"}', '{gateway="gateway-b"}'} <= set(skipped)
    assert min(skipped.values()) > 0
