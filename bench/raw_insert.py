"""The database's raw limits through ODBC, on the project's own journal table.

Each strategy inserts the same pre-converted rows (`TablePlan.row`, untimed) into a table made by
`create_table_sql`, `batch` rows per transaction:

* ``values``: multi-row `INSERT … VALUES (…),(…)` of `TablePlan.max_rows_per_statement()` rows;
* ``executemany``: pyodbc's plain executemany of the one-row INSERT;
* ``fast_executemany``: PostgreSQL only. It crashes the SQLite driver (SIGSEGV) and raises
  MemoryError with MariaDB Connector/ODBC (shared/measurements.md): never run there;
* ``sink``: the writer's own `OdbcJournalSink.write` (conversion + ledger look-up + rows + ledger
  rows in one transaction): the ceiling of one writer's database thread;
* ``naive``: one INSERT + COMMIT per row.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyodbc

from bench.common import Database, chunks, drop_tables
from cti_journal.shared.config import WriterSettings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.ddl import create_table_sql
from cti_journal.writer.dialect import Dialect
from cti_journal.writer.sink import OdbcJournalSink
from cti_journal.writer.table import TablePlan, load_plan

BATCHED: Final = ("values", "executemany", "fast_executemany")
FAST_EXECUTEMANY_SAFE: Final = frozenset({Dialect.POSTGRESQL})


def strategies(db: Database) -> tuple[str, ...]:
    return tuple(
        s for s in BATCHED if s != "fast_executemany" or db.dialect in FAST_EXECUTEMANY_SAFE
    )


@dataclass
class InsertResult:
    rows_per_s: dict[str, float]  # strategy -> rows/s
    rows: dict[str, int]

    @property
    def best(self) -> tuple[str, float]:
        batched = {k: v for k, v in self.rows_per_s.items() if k in BATCHED}
        name = max(batched, key=batched.__getitem__)
        return name, batched[name]


def create_journal(db: Database, table: str) -> None:
    drop_tables(db, table)
    conn = db.connect()
    try:
        conn.cursor().execute(create_table_sql(db.dialect, table))
        conn.commit()
    finally:
        conn.close()


def _clear(conn: pyodbc.Connection, db: Database, table: str) -> None:
    conn.cursor().execute(f"DELETE FROM {db.quote(table)}")
    conn.commit()


def _batched(strategy: str, plan: TablePlan) -> Callable[[pyodbc.Cursor, Sequence[Any]], None]:
    if strategy == "values":
        step = plan.max_rows_per_statement()
        sql = {n: plan.insert_sql(n) for n in range(1, step + 1)}

        def values(cursor: pyodbc.Cursor, rows: Sequence[Any]) -> None:
            for chunk in chunks(rows, step):
                cursor.execute(sql[len(chunk)], [v for row in chunk for v in row])

        return values
    one = plan.insert_sql(1)

    def many(cursor: pyodbc.Cursor, rows: Sequence[Any]) -> None:
        cursor.fast_executemany = strategy == "fast_executemany"
        cursor.executemany(one, rows)

    return many


def _time_batched(
    conn: pyodbc.Connection, insert: Callable[[pyodbc.Cursor, Sequence[Any]], None],
    rows: Sequence[Any], batch: int,
) -> float:  # fmt: skip
    cursor = conn.cursor()
    started = time.perf_counter()
    for part in chunks(rows, batch):
        insert(cursor, part)
        conn.commit()
    return len(rows) / (time.perf_counter() - started)


def _time_naive(conn: pyodbc.Connection, plan: TablePlan, rows: Sequence[Any]) -> float:
    cursor = conn.cursor()
    sql = plan.insert_sql(1)
    started = time.perf_counter()
    for row in rows:
        cursor.execute(sql, row)
        conn.commit()
    return len(rows) / (time.perf_counter() - started)


def _time_sink(
    db: Database, table: str, ledger: str, entries: Sequence[JournalEntry], batch: int
) -> float:
    settings = WriterSettings(dsn=db.dsn, table=table, ledger_table=ledger, batch_size=batch)
    sink = OdbcJournalSink(settings, make_metrics())
    sink.open()
    try:
        started = time.perf_counter()
        for part in chunks(entries, batch):
            outcomes = sink.write(part)
            if any(o is not None for o in outcomes):
                raise RuntimeError(f"the sink refused rows: {outcomes[:3]}")
        return len(entries) / (time.perf_counter() - started)
    finally:
        sink.close()


def measure(
    db: Database,
    table: str,
    entries: Sequence[JournalEntry],
    *,
    batch: int = 500,
    naive_rows: int = 2000,
) -> InsertResult:
    """Rows/s of every safe strategy on a fresh `table`, dropped afterwards."""
    ledger = f"{table}_ledger"
    create_journal(db, table)
    conn = db.connect()
    rates: dict[str, float] = {}
    counts: dict[str, int] = {}
    try:
        plan = load_plan(conn, table, {})
        conn.commit()
        rows = [plan.row(e) for e in entries]
        for strategy in strategies(db):
            _clear(conn, db, table)
            rates[strategy] = _time_batched(conn, _batched(strategy, plan), rows, batch)
            counts[strategy] = len(rows)
        _clear(conn, db, table)
        naive = random.Random(1).sample(rows, min(naive_rows, len(rows)))
        rates["naive"] = _time_naive(conn, plan, naive)
        counts["naive"] = len(naive)
        _clear(conn, db, table)
    finally:
        conn.close()
    try:
        rates["sink"] = _time_sink(db, table, ledger, entries, batch)
        counts["sink"] = len(entries)
    finally:
        drop_tables(db, table, ledger)
    return InsertResult(rates, counts)
