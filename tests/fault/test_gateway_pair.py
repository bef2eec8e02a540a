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

from tests.support.faults import CtiServer, DayLog, FaultRun
from tests.support.harness import free_port, wait_for

pytestmark = pytest.mark.timeout(180)

PAIR = ("gateway-a", "gateway-b")
KILLS = ((700, "gateway-a", signal.SIGKILL), (1300, "gateway-b", signal.SIGKILL),
         (1900, "gateway-a", signal.SIGTERM), (2400, "gateway-b", signal.SIGTERM))  # fmt: skip


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
        {"source": "tcp", "host": "127.0.0.1", "port": server.port},
        writer={"metrics_port": writer_metrics},
    )
    for name in PAIR:  # the default config, but two gateways on one host: a spool each
        run.env[name] = {"CTI_JOURNAL_GATEWAY__NAME": name,
                         "CTI_JOURNAL_GATEWAY__SPOOL_DIR": str(work / f"spool-{name}")}  # fmt: skip
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


def test_a_tcp_and_a_day_log_member_give_the_same_ids(fault_run: Any, tmp_path: Path) -> None:
    """The other pair: one gateway over TCP, one tailing the server's day.log (with rotation).
    Two source kinds, one id per call: each is killed (SIGKILL, SIGTERM) and restarted; the
    journal holds every call once and both members' copies were skipped at times."""
    count, rate = 3000, 150
    day = tmp_path / "Journal" / "day.log"
    day.parent.mkdir()
    server = CtiServer(count, rate=rate, clients=2).start()  # the same calls as the file's
    day_log = DayLog(day, count, rate, rotate_every=1000, seed=server.seed).start()
    writer_metrics = free_port()
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port},
        writer={"metrics_port": writer_metrics},
    )
    run.env["gateway-a"] = {"CTI_JOURNAL_GATEWAY__NAME": "tcp"}
    run.env["gateway-b"] = {"CTI_JOURNAL_GATEWAY__NAME": "file",
                            "CTI_JOURNAL_GATEWAY__SOURCE": "file",
                            "CTI_JOURNAL_GATEWAY__PATH": str(day)}  # fmt: skip
    for name in ("writer-1", "lookup-1", *PAIR):
        run.start(name)
    try:
        wait_for(lambda: server.sim.clients == 1, 60, "the TCP member to connect")
        for at, name, sig in KILLS:
            wait_for(lambda at=at: len(day_log.sent) >= at, 60, f"{at} entries written")
            run.pipeline.kill(name, sig)
            run.start(name)
            wait_for(lambda: server.sim.clients == 1, 60, "the TCP member to reconnect")
        wait_for(lambda: server.done, 60, "the CTI server to send everything")
        result, dead = run.finish(day_log, count, rows_timeout=90)
        skipped = scrape(writer_metrics, "cti_journal_duplicates_skipped_by_gateway_total")
    finally:
        server.close()
        day_log.close()
    print(f"tcp + day.log pair: {result}; copies skipped per gateway {skipped}")
    assert result.ok, result
    assert dead == []
    assert {'{gateway="tcp"}', '{gateway="file"}'} <= set(skipped)
