"""The writer under faults, with the real processes, the real RabbitMQ and real databases:
a poison entry in a batch, SIGKILL between commit and ack, two writers on one queue (and a
network split between them), and the journal database unreachable for a while.

Entries are published straight to the write queue, each with a unique `DatensatzID`, so that
"0 lost, 0 doubled" is two exact numbers: the row count and the count of distinct ids.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pika
import pyodbc
import pytest

from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.declare import declare_topology_blocking
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.writer.ddl import create_table_sql
from cti_journal.writer.dialect import Dialect, detect_dialect, quote_identifier
from tests.support.faultproxy import FaultProxy
from tests.support.harness import Pipeline, fetch_rows, wait_for

LEDGER = "cti_journal_ledger"
PG_PORT, MARIA_PORT, AMQP_PORT = 5432, 3306, 5672


def make_entries(count: int, seed: int = 1) -> list[JournalEntry]:
    """`count` valid, distinct entries as the lookup would pass them on (DatensatzID = index)."""
    parse = LineFormat(timezone="Europe/Berlin").parse
    entries = []
    for i, call in enumerate(generate_calls(seed, count, duplicate_ratio=0.0)):
        values = parse(LineFormat().format(call)).values
        values.update(datensatz_id=str(i), datensatz_tabelle="Kontakte", name=f"Kontakt {i}")
        entries.append(
            JournalEntry(
                event_id=f"{seed:08x}{i:024x}",
                source="test",
                received_at=time.time(),
                lookup=Lookup.HIT,
                **values,
            )
        )
    return entries


def publish(amqp_url: str, prefix: str, entries: Sequence[JournalEntry], rate: float = 0) -> None:
    """Publish to the write queue, persistent and confirmed; `rate` entries/s (0 = at once)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json"
        )
        started = time.monotonic()
        for i, entry in enumerate(entries):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            channel.basic_publish(prefix, "write", entry.encode(), props, mandatory=True)
    finally:
        conn.close()


@dataclass
class Journal:
    dsn: str
    dialect: Dialect
    table: str

    def q(self, name: str) -> str:
        return quote_identifier(name, self.dialect)

    def execute(self, sql: str) -> None:
        conn = pyodbc.connect(self.dsn, autocommit=True)
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    def create(self, constraint: str = "", replace_type: tuple[str, str] | None = None) -> None:
        sql = create_table_sql(self.dialect, self.table)
        if replace_type is not None:
            column, sql_type = replace_type
            head, _, rest = sql.partition(f"{self.q(column)} ")
            sql = f"{head}{self.q(column)} {sql_type}" + rest[rest.index(",") :]
        if constraint:
            body, _, options = sql.rpartition("\n)")
            sql = f"{body},\n    {constraint}\n){options}"
        self.execute(sql)

    def counts(self) -> tuple[int, int]:
        """(rows, distinct DatensatzID): equal when nothing was doubled."""
        column = self.q("Journal_DatensatzID")
        rows = fetch_rows(
            self.dsn, f"SELECT COUNT(*), COUNT(DISTINCT {column}) FROM {self.q(self.table)}"
        )
        return int(rows[0][0]), int(rows[0][1])

    def ids(self) -> set[str]:
        column = self.q("Journal_DatensatzID")
        return {
            str(r[0]) for r in fetch_rows(self.dsn, f"SELECT {column} FROM {self.q(self.table)}")
        }

    def drop(self) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.q(self.table)}")


def _journal(dsn: str, table: str) -> Journal:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        return Journal(dsn, detect_dialect(conn), table)
    finally:
        conn.close()


@pytest.fixture
def journal(any_dsn: str, table_name: str) -> Iterator[Journal]:
    table = _journal(any_dsn, table_name)
    yield table
    table.drop()


@pytest.fixture
def pg_journal(pg_dsn: str, table_name: str) -> Iterator[Journal]:
    table = _journal(pg_dsn, table_name)
    yield table
    table.drop()


def writer_pipeline(
    factory: Any, amqp_url: str, journal: Journal, dsn: str | None = None, **writer: Any
) -> Pipeline:
    """A pipeline whose topology exists before any writer starts, so entries can wait for it.
    Each test gets its own ledger table too (dropped afterwards), so the ledgers of concurrent
    test runs never meet."""
    ledger = f"{journal.table}_ledger"
    settings = {
        "writer": {
            "dsn": dsn or journal.dsn,
            "table": journal.table,
            "ledger_table": ledger,
            "db_retry_max_s": 2.0,
            **writer,
        },
    }
    pipeline: Pipeline = factory(settings)
    b = pipeline.settings["broker"]
    declare_topology_blocking(
        BrokerSettings(
            urls=(amqp_url,), prefix=pipeline.prefix, retry_delays_ms=tuple(b["retry_delays_ms"])
        )
    )
    return pipeline


@pytest.fixture
def drop_ledger() -> Iterator[list[Journal]]:
    made: list[Journal] = []
    yield made
    for journal in made:
        journal.execute(f"DROP TABLE IF EXISTS {journal.q(journal.table + '_ledger')}")


def settle(pipeline: Pipeline, journal: Journal, expected: int, timeout: float = 90.0) -> None:
    def done() -> bool:
        pipeline.assert_running()
        return journal.counts()[0] >= expected and pipeline.queue_depth("write") == 0

    wait_for(done, timeout, f"{expected} rows and an empty write queue")
    time.sleep(1.0)  # a late duplicate would land now


def kill(pipeline: Pipeline, name: str) -> None:
    """SIGKILL a process and forget it, so that `assert_running` watches only the living."""
    pipeline.kill(name)
    del pipeline.procs[name]


def consumers(pipeline: Pipeline, stage: str) -> int:
    with pipeline.channel() as ch:
        frame = ch.queue_declare(pipeline.topology.queue(stage), passive=True)
        return int(frame.method.consumer_count)


# -- a poison entry ---------------------------------------------------------------------------


def test_poison_entries_are_dead_lettered_alone_and_the_rest_commits(
    journal: Journal, drop_ledger: list[Journal], pipeline_factory: Any, amqp_url: str
) -> None:
    """Entries the table cannot take, in one batch of 300: one breaks a CHECK constraint (the
    database says no), one does not fit a SMALLINT column (the writer knows the column's range
    from the catalog; SQLite has no narrow integers and takes it). Each rejected entry goes to
    the dead-letter queue alone, with the reason; every other row commits."""
    drop_ledger.append(journal)
    constraint = (
        f"CONSTRAINT {journal.q(journal.table + '_talk')} CHECK "
        f"({journal.q('Journal_VerbDauer_sec')} < 86400)"
    )
    journal.create(constraint, replace_type=("Journal_Rufdauer_ms", "SMALLINT"))
    entries = make_entries(300, seed=3)
    entries = [
        e if e.rufdauer_ms is None or e.rufdauer_ms < 30_000 else replace(e, rufdauer_ms=29_999)
        for e in entries
    ]
    check_poison = replace(entries[57], verbdauer_sec=100_000)
    small_poison = replace(entries[211], rufdauer_ms=40_000)
    entries[57], entries[211] = check_poison, small_poison
    narrow = journal.dialect is not Dialect.SQLITE
    rejected = {"57", "211"} if narrow else {"57"}
    written = 300 - len(rejected)
    pipeline = writer_pipeline(pipeline_factory, amqp_url, journal, batch_size=500, batch_ms=1500)
    publish(amqp_url, pipeline.prefix, entries)  # all waiting: they form one batch
    pipeline.start("writer", "writer")
    settle(pipeline, journal, written)

    assert journal.counts() == (written, written)
    assert journal.ids() == {str(i) for i in range(300)} - rejected
    dead = {JournalEntry.decode(b).event_id: h for h, b in pipeline.dead_letters()}
    assert set(dead) == {e.event_id for e in entries if e.datensatz_id in rejected}
    check = dead[check_poison.event_id]
    assert check["x-cti-stage"] == "write"
    assert check["x-cti-error"] == "RowError"
    reason = check["x-cti-reason"].lower()
    assert "check" in reason or "constraint" in reason, reason
    if narrow:
        small = dead[small_poison.event_id]
        assert small["x-cti-column"] == "Journal_Rufdauer_ms"
        assert "40000" in small["x-cti-reason"]


# -- SIGKILL between commit and ack -----------------------------------------------------------


def test_writer_killed_between_commit_and_ack_inserts_nothing_twice(
    pg_journal: Journal, drop_ledger: list[Journal], pipeline_factory: Any, amqp_url: str
) -> None:
    """Deterministic: the writer's AMQP link goes through the fault proxy, which holds every
    byte the writer sends (its acks) but passes the deliveries. The writer commits what it
    received, cannot ack, and is SIGKILLed. The broker redelivers all of it to a new writer,
    which must find the committed entries in the ledger and insert only the rest."""
    journal = pg_journal
    drop_ledger.append(journal)
    journal.create()
    entries = make_entries(1500, seed=4)
    with FaultProxy("127.0.0.1", AMQP_PORT) as proxy:
        proxied = amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
        pipeline = writer_pipeline(
            pipeline_factory, amqp_url, journal, batch_size=200, batch_ms=100, prefetch=600
        )
        pipeline.start("writer", "writer", env={"CTI_JOURNAL_BROKER__URLS": proxied})
        wait_for(lambda: consumers(pipeline, "write") == 1, 30, "the writer to consume")
        proxy.pause("to_upstream")
        publish(amqp_url, pipeline.prefix, entries)
        # The prefetch window (600) is all the writer gets without acking: exactly 600 rows.
        wait_for(lambda: journal.counts()[0] >= 600, 30, "the first 600 rows")
        time.sleep(1.0)
        assert journal.counts() == (600, 600)
        kill(pipeline, "writer")
        proxy.cut()
    # Nothing was acked: all 1500 are back in the queue, 600 of them already committed.
    wait_for(lambda: pipeline.queue_depth("write") == 1500, 30, "all entries requeued")
    pipeline.start("writer-2", "writer")
    settle(pipeline, journal, 1500)
    assert journal.counts() == (1500, 1500)
    assert journal.ids() == {str(i) for i in range(1500)}
    assert "skipped" in pipeline.log("writer-2")  # the ledger, not luck
    assert pipeline.dead_letters() == []


def test_writer_killed_at_random_moments_loses_and_doubles_nothing(
    pg_journal: Journal, drop_ledger: list[Journal], pipeline_factory: Any, amqp_url: str
) -> None:
    """Entries stream in while one writer after another is SIGKILLed at a random moment (the
    seed is in the failure message); a last writer finishes. Every entry is in the table once."""
    journal = pg_journal
    drop_ledger.append(journal)
    journal.create()
    count = 6000
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    pipeline = writer_pipeline(pipeline_factory, amqp_url, journal, batch_size=100, batch_ms=50)
    feeder = threading.Thread(
        target=publish, args=(amqp_url, pipeline.prefix, make_entries(count, seed=5), 500)
    )
    feeder.start()
    kills_under_load = 0
    try:
        for round_ in range(4):
            before = journal.counts()[0]
            name = f"writer-{round_}"
            pipeline.start(name, "writer")
            wait_for(lambda b=before: journal.counts()[0] > b, 30, f"progress in round {round_}")
            time.sleep(rng.uniform(0.0, 0.4))
            kills_under_load += journal.counts()[0] < count
            kill(pipeline, name)
            rows, distinct = journal.counts()
            assert rows == distinct, f"duplicates after kill {round_} (seed {seed})"
    finally:
        feeder.join(timeout=60)
    assert kills_under_load >= 3, f"the entries ran out before the kills (seed {seed})"
    pipeline.start("writer-last", "writer")
    settle(pipeline, journal, count)
    assert journal.counts() == (count, count), f"seed {seed}"
    assert journal.ids() == {str(i) for i in range(count)}
    assert pipeline.dead_letters() == []


# -- two writers ------------------------------------------------------------------------------


def test_two_writers_on_one_queue_and_a_network_split_double_nothing(
    pg_journal: Journal, drop_ledger: list[Journal], pipeline_factory: Any, amqp_url: str
) -> None:
    """Writer A reaches the broker through the fault proxy, writer B directly. A's acks are
    held (a split: A commits, the broker never hears of it); then A's connection is cut, the
    broker gives A's entries to B, and B must skip every one of them. A reconnects and carries
    on; both stay up, and the table holds each entry once."""
    journal = pg_journal
    drop_ledger.append(journal)
    journal.create()
    count = 3000
    entries = make_entries(count, seed=6)
    with FaultProxy("127.0.0.1", AMQP_PORT) as proxy:
        proxied = amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
        pipeline = writer_pipeline(
            pipeline_factory, amqp_url, journal, batch_size=100, batch_ms=50, prefetch=300
        )
        pipeline.start("writer-a", "writer", env={"CTI_JOURNAL_BROKER__URLS": proxied})
        pipeline.start("writer-b", "writer")
        wait_for(lambda: consumers(pipeline, "write") == 2, 30, "two writers consuming")
        proxy.pause("to_upstream")
        publish(amqp_url, pipeline.prefix, entries)
        wait_for(lambda: journal.counts()[0] >= count, 60, "every entry committed once")
        assert pipeline.queue_depth("write") == 0
        assert proxy.cut() >= 1
        proxy.forward()
        # B now gets A's unacknowledged entries again: all already in the journal.
        wait_for(lambda: "skipped" in pipeline.log("writer-b"), 30, "B to skip A's entries")
        wait_for(lambda: consumers(pipeline, "write") == 2, 30, "A to reconnect")
        settle(pipeline, journal, count)
        pipeline.assert_running()
    assert journal.counts() == (count, count)
    assert journal.ids() == {str(i) for i in range(count)}
    assert pipeline.dead_letters() == []


# -- the database away ------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["postgresql", "mariadb"])
def test_database_unreachable_for_a_while_costs_only_delay(
    database: str,
    request: pytest.FixtureRequest,
    table_name: str,
    drop_ledger: list[Journal],
    pipeline_factory: Any,
    amqp_url: str,
) -> None:
    """The writer's DSN points at the fault proxy in front of the real database. While entries
    stream in, the connection is cut and the database refuses connections for 10 s; then it is
    back; then three more cuts, each while the writer waits for the database's answer to a
    statement. Every entry is in the table exactly once, nothing is dead-lettered, and the
    writer process never exited."""
    dsn: str = request.getfixturevalue("pg_dsn" if database == "postgresql" else "maria_dsn")
    journal = _journal(dsn, table_name)
    drop_ledger.append(journal)
    request.addfinalizer(journal.drop)
    journal.create()
    port = PG_PORT if database == "postgresql" else MARIA_PORT
    count = 2500
    with FaultProxy("127.0.0.1", port) as proxy:
        proxied = dsn.replace(f"Port={port}", f"Port={proxy.port}")
        assert proxied != dsn
        pipeline = writer_pipeline(
            pipeline_factory, amqp_url, journal, dsn=proxied, batch_size=100, batch_ms=50
        )
        pipeline.start("writer", "writer")
        writer_pid = pipeline.procs["writer"].pid
        wait_for(lambda: consumers(pipeline, "write") == 1, 30, "the writer to consume")
        feeder = threading.Thread(
            target=publish, args=(amqp_url, pipeline.prefix, make_entries(count, seed=7), 150)
        )
        feeder.start()
        try:
            wait_for(lambda: journal.counts()[0] >= 300, 30, "the first rows")
            proxy.refuse()  # cuts the open connection, in the middle of whatever it was doing
            time.sleep(10)
            stalled = journal.counts()[0]
            proxy.forward()
            wait_for(lambda: journal.counts()[0] > stalled + 200, 30, "writing to resume")
            # Cut while a statement is surely outstanding: the database's answers are held for
            # a second, so the writer waits on an INSERT or a COMMIT that may well have been
            # committed, and learns nothing of it before the connection is gone.
            for _ in range(3):
                proxy.pause("to_client")
                time.sleep(1.0)
                assert proxy.cut() == 1
                proxy.forward()
                time.sleep(0.5)
        finally:
            feeder.join(timeout=60)
        settle(pipeline, journal, count)
        assert proxy.rejected > 0  # the writer did try while the database was away
    assert journal.counts() == (count, count)
    assert journal.ids() == {str(i) for i in range(count)}
    assert pipeline.dead_letters() == []
    assert pipeline.procs["writer"].poll() is None and pipeline.procs["writer"].pid == writer_pid
    log = pipeline.log("writer")
    assert "unreachable" in log and "back after" in log
