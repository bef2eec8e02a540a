"""Retention: journal rows older than `writer.retention_days` are deleted, and
`cti-journal purge --older-than 90d [--dry-run]` does the same once.

Rows are chosen by the mapped time column (`Journal_ZeitpunktNumerisch`, else `Journal_Zeitpunkt`:
the time of the call, not of the insert) and deleted in small batches, each its own short
transaction on a connection of its own, in a thread of its own: the insert path never waits for
it beyond one batch's row locks. After each batch the thread pauses as long as the batch took,
so that retention uses at most about half of the database's time while rows are due, and
nothing while none are. Each writer runs it (every `writer.retention_every_s`); with several
writers the deletes simply find less to do.

The ledger follows: its event ids older than the cut-off go too (`prune_ledger`).
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import pyodbc
from prometheus_client import CollectorRegistry, Counter, Gauge

from cti_journal.shared.arguments import DATABASE, add_config_argument, load_settings
from cti_journal.shared.columns import ColumnType
from cti_journal.shared.config import Settings
from cti_journal.shared.errors import ConfigError, ConnectionLostError
from cti_journal.shared.odbc import classify, connect
from cti_journal.writer.dialect import Dialect, quote_identifier
from cti_journal.writer.journal_db import open_journal
from cti_journal.writer.ledger import Ledger
from cti_journal.writer.mapping import MappedColumn
from cti_journal.writer.table import TablePlan, load_plan
from cti_journal.writer.values import ole_date

log = logging.getLogger(__name__)
BATCH_ROWS: Final = 1000
_DURATION: Final = re.compile(r"(\d+)\s*([dhw])")
_UNIT_DAYS: Final = {"d": 1.0, "h": 1 / 24, "w": 7.0}


@dataclass(frozen=True)
class RetentionMetrics:
    deleted: Counter
    last_run: Gauge
    duration: Gauge

    @classmethod
    def make(cls, registry: CollectorRegistry | None) -> RetentionMetrics:
        return cls(
            deleted=Counter(
                "cti_journal_retention_deleted_rows",
                "Journal rows deleted by retention (writer.retention_days)",
                registry=registry,
            ),
            last_run=Gauge(
                "cti_journal_retention_last_run_timestamp_seconds",
                "When the last retention run finished (unix time)",
                registry=registry,
            ),
            duration=Gauge(
                "cti_journal_retention_last_run_seconds",
                "How long the last retention run took",
                registry=registry,
            ),
        )


def time_column(plan: TablePlan, setting: str = "writer.retention_days") -> MappedColumn:
    """The column rows are aged by; ConfigError if the table has none mapped."""
    for wanted in (ColumnType.ZEITPUNKT_NUMERISCH, ColumnType.ZEITPUNKT):
        for column in plan.columns:
            if column.type is wanted:
                return column
    raise ConfigError(
        setting,
        f"rows are aged by the call's time, but table {plan.table} has no column mapped to "
        "Journal_ZeitpunktNumerisch or Journal_Zeitpunkt: map one in [writer.columns]",
    )


def cutoff_value(column: MappedColumn, cutoff_utc: datetime, timezone: str) -> Any:
    """The cut-off instant as the column stores times (see writer/table.py)."""
    if column.sql_kind == "datetime" and column.utc:
        return cutoff_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    zone = ZoneInfo(timezone) if timezone else None
    local = cutoff_utc.astimezone(zone).replace(tzinfo=None, microsecond=0)
    if column.sql_kind == "datetime":
        return local
    if column.sql_kind == "float":
        return ole_date(local)
    return local.strftime("%Y-%m-%d %H:%M:%S")  # text: sorts as it reads


class Purger:
    """Deletes rows of one table older than a cut-off, in batches."""

    def __init__(self, plan: TablePlan, timezone: str) -> None:
        self.plan = plan
        self.timezone = timezone
        self.column = time_column(plan)
        q = self._q
        table, col = q(plan.table), q(self.column.name)
        self.table = table
        self._where = f"{col} < ?"
        self._delete, self._limited = _batch_delete(plan.dialect, table, self._where)
        # A text time column compares as text: only rows in this writer's own format may be
        # aged by it, or '01.12.2026 10:00' of an older journal client would sort before 2026.
        self._foreign = (
            f"SELECT COUNT(*) FROM {table} WHERE {col} IS NOT NULL AND {col} NOT LIKE ?"
            if self.column.sql_kind not in ("datetime", "float")
            else ""
        )

    def check_format(self, conn: pyodbc.Connection) -> None:
        """ConfigError unless every time in a text column reads YYYY-MM-DD HH:MM:SS."""
        if not self._foreign:
            return
        foreign = int(conn.cursor().execute(self._foreign, TEXT_TIME_PATTERN).fetchone()[0])
        conn.rollback()
        if foreign:
            raise ConfigError(
                "writer.retention_days",
                f"{foreign} rows of {self.plan.table} have a {self.column.name} not written as "
                "YYYY-MM-DD HH:MM:SS (an older journal client?): a text column cannot age them "
                "safely; convert them, or map a date/time column",
            )

    def _q(self, name: str) -> str:
        return quote_identifier(name, self.plan.dialect)

    def count(self, conn: pyodbc.Connection, cutoff_utc: datetime) -> int:
        self.check_format(conn)
        value = cutoff_value(self.column, cutoff_utc, self.timezone)
        sql = f"SELECT COUNT(*) FROM {self.table} WHERE {self._where}"
        found = int(conn.cursor().execute(sql, value).fetchone()[0])
        conn.rollback()
        return found

    def delete_batch(self, conn: pyodbc.Connection, cutoff_utc: datetime) -> int:
        """One transaction: at most BATCH_ROWS rows (all of them where the database cannot limit
        a DELETE). Returns how many went."""
        value = cutoff_value(self.column, cutoff_utc, self.timezone)
        cursor = conn.cursor()
        cursor.execute(self._delete, value)
        deleted = max(0, int(cursor.rowcount))
        conn.commit()
        return deleted

    def run(
        self,
        conn: pyodbc.Connection,
        cutoff_utc: datetime,
        stop: threading.Event | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Batches until nothing older than the cut-off is left (or `stop`); rows deleted."""
        self.check_format(conn)
        total = 0
        while stop is None or not stop.is_set():
            started = time.monotonic()
            deleted = self.delete_batch(conn, cutoff_utc)
            total += deleted
            if on_batch is not None:
                on_batch(deleted)
            if deleted < BATCH_ROWS or not self._limited:
                break
            # A bounded slice: as long a pause as the batch took, so inserts get their turn.
            pause = max(0.01, time.monotonic() - started)
            if stop is not None and stop.wait(pause):
                break
            if stop is None:
                time.sleep(pause)
        return total


TEXT_TIME_PATTERN = "____-__-__ __:__:__"  # SQL LIKE: what cutoff_value writes for text


def _batch_delete(dialect: Dialect, table: str, where: str) -> tuple[str, bool]:
    """The DELETE of one batch, and whether it is limited to BATCH_ROWS rows."""
    n = BATCH_ROWS
    row_id = {Dialect.POSTGRESQL: "ctid", Dialect.SQLITE: "rowid"}.get(dialect)
    if row_id:
        inner = f"SELECT {row_id} FROM {table} WHERE {where} LIMIT {n}"
        return f"DELETE FROM {table} WHERE {row_id} IN ({inner})", True
    if dialect is Dialect.MARIADB:
        return f"DELETE FROM {table} WHERE {where} LIMIT {n}", True
    if dialect is Dialect.MSSQL:
        return f"DELETE TOP ({n}) FROM {table} WHERE {where}", True
    return f"DELETE FROM {table} WHERE {where}", False  # Access and others: one statement


def ledger_name(settings: Settings) -> str:
    return settings.writer.ledger_table or f"{settings.writer.table}_ledger"


def prune_ledger(conn: pyodbc.Connection, table: str, dialect: Dialect, cutoff: datetime) -> int:
    """Ledger ids of calls older than `cutoff` (UTC), committed: the ledger follows the rows
    (`Ledger.prune_older_than`: by the call's day, or by commit time in an old ledger)."""
    ledger = Ledger(table, dialect)
    try:
        ledger.detect(conn)
    except pyodbc.Error as exc:  # no writer has run on this table yet: no ledger to follow
        conn.rollback()
        log.warning("retention: ledger %s not readable (%s): nothing pruned there", table, exc)
        return 0
    deleted = ledger.prune_older_than(conn.cursor(), cutoff)
    conn.commit()
    return deleted


class RetentionThread:
    """`writer.retention_days` in a writer process: a daemon thread with its own connection."""

    def __init__(self, settings: Settings, plan: TablePlan, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.days = settings.writer.retention_days
        self.purger = Purger(plan, settings.gateway.timezone)
        self.metrics = RetentionMetrics.make(registry)
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="writer-retention", daemon=True)

    def start(self) -> None:
        log.info(
            "retention: rows of %s older than %d days are deleted (by %s), every %.0f s",
            self.purger.plan.table, self.days, self.purger.column.name,
            self.settings.writer.retention_every_s,
        )  # fmt: skip
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except ConfigError as exc:
                log.error("retention: %s; retention stops until the writer is restarted", exc)
                return
            except Exception:  # the thread must not end unseen: the next run tries again
                log.exception("retention: this run failed; next run later")
            if self.stop.wait(self.settings.writer.retention_every_s):
                return

    def run_once(self) -> int:
        started = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(days=self.days)
        try:
            conn = connect(self.settings.writer.dsn)
        except ConnectionLostError as exc:
            log.warning("retention: journal database unreachable (%s); next run later", exc)
            return 0
        try:
            deleted = self.purger.run(conn, cutoff, self.stop, self.metrics.deleted.inc)
            prune_ledger(conn, ledger_name(self.settings), self.purger.plan.dialect, cutoff)
        except pyodbc.Error as exc:
            log.warning("retention: stopped this run: %s; next run later", classify(exc))
            return 0
        finally:
            conn.close()
        elapsed = time.monotonic() - started
        self.metrics.last_run.set(time.time())
        self.metrics.duration.set(elapsed)
        if deleted:
            log.info("retention: deleted %d rows older than %d days in %.1f s",
                     deleted, self.days, elapsed)  # fmt: skip
        return deleted


def start_retention(
    settings: Settings, plan: TablePlan, registry: CollectorRegistry
) -> RetentionThread | None:
    if not settings.writer.retention_days:
        return None
    thread = RetentionThread(settings, plan, registry)
    thread.start()
    return thread


# -- cti-journal purge ---------------------------------------------------------------------------


def parse_age(text: str) -> timedelta:
    """`90d`, `12w`, `36h` (and sums such as `1w2d`) → a timedelta; ValueError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not an age such as 90d, 12w or 36h")
    days = sum(int(n) * _UNIT_DAYS[u] for n, u in parts)
    if days <= 0:
        raise ValueError(f"{text!r} must be longer than 0")
    return timedelta(days=days)


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--older-than", required=True, metavar="AGE", help="e.g. 90d, 12w, 36h (call time)"
    )
    parser.add_argument("--dry-run", action="store_true", help="only count what would go")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, DATABASE)
    try:
        age = parse_age(args.older_than)
    except ValueError as exc:
        raise ConfigError("--older-than", str(exc)) from exc
    w = settings.writer
    conn = open_journal(w)
    try:
        plan = load_plan(conn, w.table, w.columns)
        purger = Purger(plan, settings.gateway.timezone)
        cutoff = datetime.now(UTC) - age
        due = purger.count(conn, cutoff)
        shown = cutoff_value(purger.column, cutoff, settings.gateway.timezone)
        if args.dry_run:
            print(f"purge: {due} rows of {plan.table} have {purger.column.name} < {shown} "
                  "(dry run: nothing deleted)")  # fmt: skip
            return 0
        deleted = purger.run(conn, cutoff)
        pruned = prune_ledger(conn, ledger_name(settings), plan.dialect, cutoff)
    except pyodbc.Error as exc:
        print(f"cti-journal: purge stopped: {classify(exc)}")
        return 1
    finally:
        conn.close()
    print(f"purge: deleted {deleted} rows of {plan.table} with {purger.column.name} < {shown}; "
          f"{pruned} ledger ids")  # fmt: skip
    return 0
