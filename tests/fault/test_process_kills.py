"""SIGKILL of the gateway, lookup workers and writers under load, and the CTI server connection
dropping; each test compares the journal with what the simulator sent.

What a TCP source can promise: the simulator counts a line as sent when `sendall` returned, so
lines still in the kernel's buffers (or in a proxy) when the reading side dies are counted as
sent and never arrive - TCP without application acks, exactly as with a real CTI server. Such
losses can only sit at the end of a connection. The tests therefore assert, for TCP: no
duplicate ever, no loss anywhere but in the last few lines of a connection that was broken under
load, and none at all where the break came while nothing was in flight. The file source
(day.log with a confirmed checkpoint) is the lossless alternative and gets exact counts.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cti_journal.simulator.calls import generate_calls
from tests.support.faultproxy import FaultProxy
from tests.support.faults import START, Comparison, CtiServer, DayLog, FaultRun, _key
from tests.support.harness import wait_for

pytestmark = pytest.mark.timeout(240)


def _assert_tcp_losses(result: Comparison, sent: Sequence[Mapping[str, Any]],
                       connections: Sequence[int], broken: Sequence[int]) -> int:  # fmt: skip
    """Lines may be lost only as one contiguous tail of a broken connection: whatever sat in
    the kernel's (and the proxy's) socket buffers when it broke. Any other gap is a real loss."""
    assert not result.extra, result
    missing = Counter(result.missing)
    end = 0
    for number, lines in enumerate(connections):
        end += lines
        if number not in broken:
            continue
        at = end
        while at > end - lines and missing[_key(sent[at - 1])] > 0:
            missing[_key(sent[at - 1])] -= 1
            at -= 1
    stray = [k for k, n in missing.items() if n > 0]
    assert not stray, f"lost entries not at the end of a broken connection: {stray[:3]}"
    return sum(result.missing.values())


def test_gateway_killed_mid_stream_tcp_with_spool(fault_run: Any, tmp_path: Path) -> None:
    count = 4000
    server = CtiServer(count, rate=300).start()
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port,
         "spool_dir": str(tmp_path / "spool")}
    )  # fmt: skip
    try:
        run.start_all(lookups=1, writers=1)
        run.wait_rows(1, 60)
        for at in (1000, 2500):
            wait_for(lambda at=at: len(server.sent) >= at, 30, f"{at} entries sent")
            run.kill("gateway")
            time.sleep(0.5)
            run.start("gateway")
        result, dead = run.finish(server, None)
    finally:
        server.close()
    connections = server.sim.connections
    lost = _assert_tcp_losses(result, server.sent, connections, range(len(connections) - 1))
    print(f"gateway killed twice: {result}; lines per connection {connections}; "
          f"lost in TCP buffers at the kills: {lost}")  # fmt: skip
    assert len(connections) == 3
    assert dead == []


def test_gateway_restart_between_two_identical_calls_keeps_both(
    fault_run: Any, tmp_path: Path
) -> None:
    count = 600
    calls = list(generate_calls(11, count, START, duplicate_ratio=0.02))
    pair = next(i for i in range(1, count) if _key(calls[i]) == _key(calls[i - 1]))
    gate = threading.Event()
    server = CtiServer(count, rate=0, duplicate_ratio=0.02, gate=gate, gate_at=pair).start()
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port,
         "spool_dir": str(tmp_path / "spool")}
    )  # fmt: skip
    try:
        run.start_all(lookups=1, writers=1)
        run.wait_rows(pair, 60)  # the first of the pair is in the journal
        run.kill("gateway")
        run.start("gateway")
        gate.set()
        wait_for(lambda: server.done, 60, "the simulator to send everything")
        run.settle()
        result = run.compare(server.sent)
    finally:
        server.close()
    assert len(server.sim.connections) == 2
    assert result.ok, result


def test_gateway_killed_mid_stream_file_source_is_exact(fault_run: Any, tmp_path: Path) -> None:
    count = 4000
    day = tmp_path / "Journal" / "day.log"
    day.parent.mkdir()
    writer = DayLog(day, count, rate=400, rotate_every=1500, seed=12).start()
    run: FaultRun = fault_run({"source": "file", "path": str(day)})
    try:
        run.start_all(lookups=1, writers=1)
        for at in (800, 1900, 3100):  # the second and third kill follow a rotation
            wait_for(lambda at=at: len(writer.sent) >= at, 30, f"{at} entries written")
            run.kill("gateway")
            time.sleep(0.3)
            run.start("gateway")
        result, dead = run.finish(writer, count, rows_timeout=60)
    finally:
        writer.close()
    print(f"file source, gateway killed 3 times: {result}")
    assert result.expected == count
    assert result.ok, result
    assert dead == []


def test_lookup_and_writer_killed_at_random_moments(fault_run: Any, tmp_path: Path) -> None:
    count = 5000
    server = CtiServer(count, rate=350).start()
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port,
         "spool_dir": str(tmp_path / "spool")}
    )  # fmt: skip
    rng = random.Random(5)
    kills: Counter[str] = Counter()
    try:
        run.start_all(lookups=2, writers=2)
        run.wait_rows(1, 60)
        while not server.done and sum(kills.values()) < 8:
            time.sleep(rng.uniform(0.5, 2.0))
            victim = rng.choice(["lookup-1", "lookup-2", "writer-1", "writer-2"])
            run.kill(victim)
            kills[victim] += 1
            time.sleep(rng.uniform(0.1, 1.0))
            run.start(victim)
        result, dead = run.finish(server, count)
    finally:
        server.close()
    print(f"kills {dict(kills)}: {result}")
    assert sum(kills.values()) >= 4
    assert {v.split("-")[0] for v in kills} == {"lookup", "writer"}
    assert result.expected == count
    assert result.ok, result
    assert dead == []


def test_cti_connection_drops_and_comes_back(fault_run: Any, tmp_path: Path) -> None:
    """Through a fault proxy: the link is cut twice under load and refused for 3 s once while
    the server has nothing to send; the gateway reconnects each time, and the server sends what
    it kept to the next connection."""
    count, quiet_at = 3000, 2200
    gate = threading.Event()
    server = CtiServer(count, rate=300, gate=gate, gate_at=quiet_at).start()
    with FaultProxy("127.0.0.1", server.port) as proxy:
        run: FaultRun = fault_run(
            {"source": "tcp", "host": "127.0.0.1", "port": proxy.port,
             "spool_dir": str(tmp_path / "spool")}
        )  # fmt: skip
        try:
            run.start_all(lookups=1, writers=1)
            for at in (700, 1500):
                wait_for(lambda at=at: len(server.sent) >= at, 30, f"{at} entries sent")
                assert proxy.cut() == 1
            wait_for(lambda: len(server.sent) >= quiet_at, 30, f"{quiet_at} entries sent")
            time.sleep(1.0)  # nothing in flight now: the server waits for its next call
            proxy.refuse()
            time.sleep(3.0)
            proxy.forward()
            gate.set()
            wait_for(lambda: server.done, 60, "the simulator to send everything")
            # After the refusal the gateway may sit in its reconnect backoff for seconds.
            run.settle(quiet_s=5.0)
            result = run.compare(server.sent)
            run.pipeline.assert_running()
            dead = run.dead_letters()
        finally:
            server.close()
    connections = server.sim.connections
    print(f"CTI link cut twice under load, refused once while quiet: {result}; "
          f"lines per connection {connections}; refused {proxy.rejected}")  # fmt: skip
    assert len(connections) >= 4
    # Any connection may end in a reset (the proxy's refusals, too) and lose its tail in the TCP
    # buffers: TCP has no application acks. A line lost anywhere else is a real loss.
    ended = range(len(connections))
    lost = _assert_tcp_losses(result, server.sent, connections, ended)
    print(f"lost in TCP buffers at the cuts: {lost}")
    assert dead == []
    assert proxy.rejected >= 1
    assert "reconnecting" in run.log("gateway")
