"""The ledger belongs to its journal table: two tables get their rows; an emptied table warns."""

from __future__ import annotations

import logging
import threading
import uuid

import pyodbc
import pytest

from cti_journal.shared.config import WriterSettings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.sink import OdbcJournalSink
from tests.conftest import drop_table
from tests.harness import count_rows

pytestmark = pytest.mark.integration


def entries(n: int) -> list[JournalEntry]:
    return [
        JournalEntry(
            event_id=f"{i:032x}",
            source="cti",
            received_at=0.0,
            in_out="i",
            zeitpunkt="2026-11-25 10:00:00",
            utc="2026-11-25T09:00:00Z",
            verb_zustand="CONN",
            rufnummer=f"089{i:07d}",
        )
        for i in range(n)
    ]


def sink(dsn: str, table: str) -> OdbcJournalSink:
    s = OdbcJournalSink(WriterSettings(dsn=dsn, table=table, create_table=True), make_metrics())
    s.open()
    return s


def test_each_journal_table_has_its_own_ledger(sqlite_dsn, caplog):
    first, second = sink(sqlite_dsn, "journal_a"), sink(sqlite_dsn, "journal_b")
    assert first.write(entries(50)) == [None] * 50
    assert second.write(entries(50)) == [None] * 50  # same ids, other table: written too
    assert first.write(entries(50)) == [None] * 50  # redelivered: nothing new
    assert count_rows(sqlite_dsn, "journal_a") == 50
    assert count_rows(sqlite_dsn, "journal_b") == 50
    first.close()
    second.close()

    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute("DELETE FROM journal_a")
    conn.close()
    with caplog.at_level(logging.WARNING, logger="cti_journal.writer.sink"):
        again = sink(sqlite_dsn, "journal_a")
    again.close()
    assert any("is empty but its ledger" in r.getMessage() for r in caplog.records)


def open_at_once(dsn: str, table: str, writers: int) -> list[Exception]:
    """Open `writers` sinks on `table` in threads released together; what each raised."""
    barrier = threading.Barrier(writers)
    failures: list[Exception] = []

    def start() -> None:
        s = OdbcJournalSink(WriterSettings(dsn=dsn, table=table, create_table=True), make_metrics())
        barrier.wait()
        try:
            s.open()
        except Exception as exc:
            failures.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=start) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return failures


@pytest.mark.parametrize("dsn_fixture", ["pg_dsn", "maria_dsn", "sqlite_dsn"])
def test_writers_starting_together_all_create_or_find_the_tables(
    dsn_fixture: str, request: pytest.FixtureRequest
) -> None:
    """Writers on several hosts start at the same moment; each finds the journal table and its
    ledger missing and creates them. All but one CREATE fail (PostgreSQL: a unique violation on
    its catalog; MariaDB: the table exists): every writer must still start."""
    dsn: str = request.getfixturevalue(dsn_fixture)
    for _ in range(6):
        table = f"t_{uuid.uuid4().hex[:12]}"
        try:
            assert open_at_once(dsn, table, writers=4) == []
            assert count_rows(dsn, table) == 0 and count_rows(dsn, f"{table}_ledger") == 0
        finally:
            drop_table(dsn, f"{table}_ledger")
            drop_table(dsn, table)
