"""The ledger belongs to its journal table: two tables get their rows; an emptied table warns."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import pyodbc
import pytest

from cti_journal.shared.config import WriterSettings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.dialect import detect_dialect
from cti_journal.writer.ledger import Ledger, call_day
from cti_journal.writer.sink import OdbcJournalSink
from tests.support.harness import count_rows
from tests.support.services import drop_table


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


def dated(calls: list[JournalEntry], day: date) -> list[JournalEntry]:
    """The calls on another day, their Zeitpunkt and UTC instant moved together."""
    return [
        e.evolve(
            zeitpunkt=f"{day.isoformat()}{e.zeitpunkt[10:]}", utc=f"{day.isoformat()}{e.utc[10:]}"
        )
        for e in calls
    ]


def test_a_re_import_forty_days_later_adds_no_row(any_dsn: str, table_name: str) -> None:
    """The ledger keeps an id as long as its journal row exists: calls of 40 days ago written,
    the writer's pruning run, the same entries again add nothing."""
    ledger = f"{table_name}_ledger"
    calls = dated(entries(300), date.today() - timedelta(days=40))
    try:
        first = sink(any_dsn, table_name)
        assert first.write(calls) == [None] * 300
        first.close()
        again = sink(any_dsn, table_name)  # a writer started later
        again._last_prune = float("-inf")  # its hourly pruning is due
        again._maybe_prune()
        assert again.write(calls) == [None] * 300
        again.close()
        assert count_rows(any_dsn, table_name) == 300
        assert count_rows(any_dsn, ledger) == 300
        skipped = again.metrics.registry.get_sample_value("cti_journal_duplicates_skipped_total")
        assert skipped == 300
    finally:
        drop_table(any_dsn, ledger)
        drop_table(any_dsn, table_name)


def test_prune_older_than_deletes_only_what_the_rows_retention_deletes(
    any_dsn: str, table_name: str
) -> None:
    """The retention pass's call: ids of calls older than the cutoff go (a day of margin for
    the time zone), younger ones stay; and with them gone, those calls are new again."""
    ledger_name = f"{table_name}_ledger"
    old = dated(entries(20), date(2026, 1, 10))
    young = dated([e.evolve(event_id=f"{i + 100:032x}") for i, e in enumerate(entries(30))],
                  date(2026, 3, 1))  # fmt: skip
    try:
        s = sink(any_dsn, table_name)
        assert s.write(old + young) == [None] * 50
        assert s._ledger is not None and s._ledger.layout == "dated"
        conn = pyodbc.connect(any_dsn)
        try:
            deleted = s._ledger.prune_older_than(conn.cursor(), datetime(2026, 2, 1))
            conn.commit()
        finally:
            conn.close()
        assert deleted == 20
        assert count_rows(any_dsn, ledger_name) == 30
        assert s.write(young) == [None] * 30  # still guarded
        assert count_rows(any_dsn, table_name) == 50
        s.close()
    finally:
        drop_table(any_dsn, ledger_name)
        drop_table(any_dsn, table_name)


def test_a_ledger_of_the_old_layout_is_used_as_it_is(sqlite_dsn: str) -> None:
    """A ledger created by an older version (hex text ids, commit times) keeps working."""
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute(
        "CREATE TABLE journal_ledger (event_id VARCHAR(40) NOT NULL PRIMARY KEY, "
        "committed_at TIMESTAMP NOT NULL)"
    )
    conn.close()
    s = sink(sqlite_dsn, "journal")
    assert s._ledger is not None and s._ledger.layout == "legacy"
    assert s.write(entries(40)) == [None] * 40
    assert s.write(entries(40)) == [None] * 40
    s.close()
    assert count_rows(sqlite_dsn, "journal") == 40
    rows = pyodbc.connect(sqlite_dsn).cursor().execute("SELECT event_id FROM journal_ledger")
    assert sorted(r[0] for r in rows.fetchall()) == [f"{i:032x}" for i in range(40)]


def test_a_pairs_interleaved_copies_make_one_row_each(any_dsn: str, table_name: str) -> None:
    """Batches as a gateway pair makes them: the other gateway's copies of the last batch ride
    in the next one. After the first such batch the writer reads the known ids first (not on
    SQLite); either way each call is one row and each second copy is counted as skipped."""
    calls = entries(1000)
    batches = [calls[i : i + 100] + [e.evolve(gateway="b") for e in calls[max(0, i - 100) : i]]
               for i in range(0, 1100, 100)]  # fmt: skip
    try:
        s = sink(any_dsn, table_name)
        for batch in batches:
            assert s.write(batch) == [None] * len(batch)
        s.close()
        assert count_rows(any_dsn, table_name) == 1000
        get = s.metrics.registry.get_sample_value
        assert get("cti_journal_duplicates_skipped_total") == 1000
        assert get("cti_journal_duplicates_skipped_by_gateway_total", {"gateway": "b"}) == 1000
        assert get("cti_journal_rows_written_by_gateway_total", {"gateway": ""}) == 1000
    finally:
        drop_table(any_dsn, f"{table_name}_ledger")
        drop_table(any_dsn, table_name)


def test_each_bounded_text_column_has_a_truncation_series_at_zero(
    pg_dsn: str, table_name: str
) -> None:
    """The dashboard's truncation panel shows 0 per column rather than no data (the container
    tier evaluates every panel on a running stack)."""
    s = sink(pg_dsn, table_name)
    try:
        samples = {
            sample.labels["column"]: sample.value
            for family in s.metrics.registry.collect()
            if family.name == "cti_journal_truncated"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        assert "Journal_Rufnummer" in samples and "Journal_Name" in samples, samples
        assert set(samples.values()) == {0.0}
    finally:
        s.close()
        drop_table(pg_dsn, f"{table_name}_ledger")
        drop_table(pg_dsn, table_name)


def test_a_new_ledger_is_keyed_by_the_calls_day_then_its_id(any_dsn: str, table_name: str) -> None:
    """Random ids alone as the key put every id of a batch on a page of its own; the day first
    keeps a batch on its days' pages (bench/ledger_order.py). The day is the Zeitpunkt's date,
    which the id hashes: a pair's gateways set to different zones (one UTC instant a day apart)
    still make one row, and the same id on the same day is refused by the key."""
    ledger = f"{table_name}_ledger"
    calls = entries(60)
    elsewhere = [e.evolve(utc="2026-11-24T23:00:00Z", gateway="b") for e in calls]
    try:
        s = sink(any_dsn, table_name)
        assert s._ledger is not None and s._ledger.layout == "dated"
        assert s.write(calls[:30]) == [None] * 30
        assert s.write(elsewhere + calls[30:]) == [None] * 90
        s.close()
        assert count_rows(any_dsn, table_name) == 60
        assert count_rows(any_dsn, ledger) == 60
        conn = pyodbc.connect(any_dsn)
        try:
            cursor = conn.cursor().execute(f"SELECT * FROM {ledger} WHERE 1 = 0")
            assert [d[0].lower() for d in cursor.description] == ["call_date", "event_id"]
            days = {
                str(r[0])[:10] for r in conn.cursor().execute(f"SELECT call_date FROM {ledger}")
            }
        finally:
            conn.close()
        assert days == {"2026-11-25"}  # the Zeitpunkt's date, not the UTC instant's
        get = s.metrics.registry.get_sample_value
        assert get("cti_journal_duplicates_skipped_total") == 60
        # b's copies of the first 30 met the ledger; of the last 30, b's came first in the batch
        assert get("cti_journal_duplicates_skipped_by_gateway_total", {"gateway": "b"}) == 30
    finally:
        drop_table(any_dsn, ledger)
        drop_table(any_dsn, table_name)


@pytest.mark.parametrize("dsn_fixture", ["pg_dsn", "maria_dsn", "sqlite_dsn"])
def test_a_ledger_keyed_by_id_alone_is_used_as_it_is(
    dsn_fixture: str, table_name: str, request: pytest.FixtureRequest
) -> None:
    """A ledger the previous version created (`compact`: the id alone is the key, the UTC day
    beside it) keeps guarding the rows written before the upgrade and takes the new ones."""
    dsn: str = request.getfixturevalue(dsn_fixture)
    name = f"{table_name}_ledger"
    calls = entries(80)
    try:
        conn = pyodbc.connect(dsn)
        try:
            old = Ledger(name, detect_dialect(conn))
            old.layout = "compact"
            conn.cursor().execute(old.create_sql())
            conn.commit()
            old.record(conn.cursor(), [(e.event_id, call_day(e.utc)) for e in calls[:40]])
            conn.commit()
        finally:
            conn.close()
        s = sink(dsn, table_name)
        assert s._ledger is not None and s._ledger.layout == "compact"
        assert s.write(calls) == [None] * 80  # 40 already in the ledger: skipped
        assert s.write(calls) == [None] * 80  # all 80 now: nothing new
        s.close()
        assert count_rows(dsn, table_name) == 40
        assert count_rows(dsn, name) == 80
    finally:
        drop_table(dsn, name)
        drop_table(dsn, table_name)


@pytest.mark.parametrize("strategies", [("json", "json"), ("json", "values"), ("values", "json")])
def test_sqlite_dates_as_julian_days_meet_the_same_keys(
    tmp_path: Path, strategies: tuple[str, str]
) -> None:
    """The SQLite driver's `JDConv=1` stores a bound date as a Julian day number; the `json`
    strategy writes the day as a literal. A redelivered batch must still find every key,
    whichever strategy wrote it and whichever reads it."""
    dsn = f"Driver=SQLite3;Database={tmp_path / 'jd.db'};JDConv=1;"
    calls = entries(3)
    for i, strategy in enumerate(strategies):
        s = OdbcJournalSink(
            WriterSettings(dsn=dsn, table="journal", create_table=True, strategy=strategy),
            make_metrics(),
        )
        s.open()
        assert s.write(calls[: 2 + i]) == [None] * (2 + i)  # the second: a redelivery and one new
        s.close()
    assert count_rows(dsn, "journal") == 3
    assert count_rows(dsn, "journal_ledger") == 3


@pytest.mark.parametrize("known_companion", [False, True])
def test_a_senders_own_id_on_another_day_is_decided_by_its_own_key(
    any_dsn: str, table_name: str, known_companion: bool
) -> None:
    """An id the sender chose (JSON `id`), sent again for another call day, is another key:
    it is written again whether the rest of its batch is new or already written."""
    first = entries(2)
    again = dated(first[:1], date(2026, 11, 26))
    companion = first[1:] if known_companion else [first[1].evolve(event_id=f"{99:032x}")]
    try:
        s = sink(any_dsn, table_name)
        assert s.write(first) == [None] * 2
        assert s.write(again + companion) == [None] * 2
        s.close()
        assert count_rows(any_dsn, table_name) == (3 if known_companion else 4)
    finally:
        drop_table(any_dsn, f"{table_name}_ledger")
        drop_table(any_dsn, table_name)
