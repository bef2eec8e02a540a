"""RabbitMQ faults under load, on a node of the test's own: stopped and restarted, failed over,
and a poison entry that must be retried with growing delays and then dead-lettered alone.

Every test ends by comparing the journal with what the simulator sent, as multisets of values.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pyodbc
import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.faults import CtiServer, FaultRun
from tests.support.harness import free_port, wait_for

pytestmark = pytest.mark.timeout(240)


def _spool_bytes(spool: Path) -> int:
    return sum(p.stat().st_size for p in spool.glob("*.seg"))


def test_broker_stopped_and_restarted_under_load(fault_run: Any, tmp_path: Path) -> None:
    """The node goes away for ~10 s mid-stream: the gateway keeps reading into its spool, every
    process reconnects by itself, and every entry becomes exactly one row."""
    count = 5000
    server = CtiServer(count, rate=150).start()
    spool = tmp_path / "spool"
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port, "spool_dir": str(spool)}
    )
    try:
        run.start_all(lookups=1, writers=1)
        run.wait_rows(1, 60)
        wait_for(lambda: len(server.sent) >= 1000, 30, "1000 entries sent")
        began = time.monotonic()
        run.node.stop()
        stopped_at = time.monotonic()
        stop_s = stopped_at - began
        sent_at_stop, spool_at_stop = len(server.sent), _spool_bytes(spool)
        timeline = []
        for _ in range(10):
            time.sleep(1)
            timeline.append((len(server.sent), _spool_bytes(spool)))
        sent_while_down = len(server.sent) - sent_at_stop
        spool_growth = _spool_bytes(spool) - spool_at_stop
        rows_while_down = run.rows()
        run.node.start()
        down_s = time.monotonic() - stopped_at
        print(f"node stop took {stop_s:.1f} s")
        result, dead = run.finish(server, count)
    finally:
        server.close()
    print(f"broker down {down_s:.1f} s; meanwhile {sent_while_down} sent, spool +{spool_growth} "
          f"bytes; rows then {rows_while_down}; {result}; {timeline}")  # fmt: skip
    assert result.expected == count
    assert result.ok, result
    assert dead == []
    # The gateway read on while the broker was away: into the spool, not into memory.
    assert sent_while_down >= 750  # of 1500 due in 10 s at 150/s, on a busy machine
    assert spool_growth > 0
    for name in ("gateway", "lookup-1", "writer-1"):
        assert run.log(name).count("connected to broker") == 2, name


def test_failover_to_the_next_broker_url(fault_run: Any, node: Any, tmp_path: Path) -> None:
    """broker.urls = [nothing listens, a proxy to our node, our node]: the processes skip the
    dead URL at start; when the proxy refuses mid-stream they fail over to the third URL."""
    count = 3000
    dead_port = free_port()
    with FaultProxy("127.0.0.1", node.port) as proxy:
        urls = [
            f"amqp://guest:guest@127.0.0.1:{dead_port}/%2F",
            f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F",
            node.url,
        ]
        server = CtiServer(count, rate=300).start()
        run: FaultRun = fault_run(
            {"source": "tcp", "host": "127.0.0.1", "port": server.port,
             "spool_dir": str(tmp_path / "spool")},
            broker={"urls": urls},
        )  # fmt: skip
        try:
            run.start_all(lookups=1, writers=1)
            run.wait_rows(500, 60)
            assert proxy.open_connections >= 3  # gateway, lookup and writer came through it
            proxy.refuse()
            result, dead = run.finish(server, count, rows_timeout=60)
        finally:
            server.close()
    assert result.ok, result
    assert dead == []
    for name in ("gateway", "lookup-1", "writer-1"):
        log = run.log(name)
        assert f"127.0.0.1:{dead_port}" in log and "unreachable" in log, name
        connected = re.findall(r"connected to broker amqp://guest:\*\*\*@127\.0\.0\.1:(\d+)", log)
        assert connected[:1] == [str(proxy.port)], (name, connected)
        assert connected[-1] == str(node.port), (name, connected)


def _create_journal_with_poison_trigger(dsn: str, marker: str) -> None:
    from cti_journal.writer.ddl import create_table_sql
    from cti_journal.writer.dialect import Dialect

    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        conn.cursor().execute(create_table_sql(Dialect.SQLITE, "journal"))
        # An error the writer cannot place (not a constraint, not a lock): it must be retried a
        # bounded number of times, never forever and never at the expense of the other rows.
        conn.cursor().execute(
            'CREATE TRIGGER poison BEFORE INSERT ON journal WHEN NEW."Journal_Rufnummer" = '
            f"'{marker}' BEGIN SELECT RAISE(ABORT, 'poison entry refused by a trigger'); END"
        )
    finally:
        conn.close()


def test_poison_entry_is_retried_with_growing_delay_then_dead_lettered(
    fault_run: Any, tmp_path: Path
) -> None:
    count, poison_at, marker = 1500, 100, "0666000666"
    delays_ms, max_attempts = [800, 1600, 3200], 4
    server = CtiServer(count, rate=0, overrides={poison_at: {"rufnummer": marker}}).start()
    run: FaultRun = fault_run(
        {"source": "tcp", "host": "127.0.0.1", "port": server.port},
        broker={"retry_delays_ms": delays_ms, "max_attempts": max_attempts},
    )
    _create_journal_with_poison_trigger(run.dsn, marker)
    try:
        run.start_all(lookups=1, writers=1)
        # Everything behind the poison is written while it is still waiting in a retry queue.
        run.wait_rows(count - 1, 60)
        all_others_at = time.monotonic()
        dead_then = run.dead_letters()
        wait_for(lambda: len(run.dead_letters()) >= 1, 30, "the poison in the dead-letter queue")
        dead_at = time.monotonic()
        run.settle(quiet_s=1.0)
        dead = run.dead_letters()
        result = run.compare([e for e in server.sent if e["rufnummer"] != marker])
        writer_log = run.log("writer-1")
    finally:
        server.close()
    poison_sent_at = server.sent_at[poison_at]
    assert result.ok, result
    assert dead_then == []
    assert len(dead) == 1
    headers, body = dead[0]
    assert marker.encode() in body
    assert headers["x-cti-attempt"] == max_attempts
    assert headers["x-cti-stage"] == "write"
    assert headers["x-cti-error"] == "UnknownDatabaseError"
    assert "poison entry refused by a trigger" in headers["x-cti-reason"]
    retries = re.findall(r"write: attempt (\d) failed, retrying later", writer_log)
    assert retries == ["1", "2", "3"]
    # Bounded, not timed: at least the sum of the delays, and not much more.
    took = dead_at - poison_sent_at
    assert sum(delays_ms) / 1000 * 0.9 <= took <= sum(delays_ms) / 1000 + 20, took
    assert all_others_at < dead_at
