"""The ledger belongs to its journal table: two tables get their rows; an emptied table warns."""

from __future__ import annotations

import logging

import pyodbc
import pytest

from cti_journal.shared.config import WriterSettings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.sink import OdbcJournalSink
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
