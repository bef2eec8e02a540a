"""The journal table as a sink: a batch of entries in one transaction, ledger included.

`write` returns one outcome per entry — None (committed now, or already committed before) or
the error for that entry — and retries what is not the entries' fault:

* connection lost → reconnect with capped backoff, as long as it takes (the broker keeps the
  entries unacknowledged meanwhile; a database that is down for minutes costs only delay);
* lock conflicts, timeouts → the batch again, three times, then each entry's own retry path;
* a row the database rejects → the batch is split in halves until that row stands alone; it
  gets its error (dead-lettered with the database's message), the others commit.

Which of a batch's rows are new is claimed in the ledger (`writer/claim.py`); the rows go in by
the strategy of `writer/insert.py` and are counted per gateway (`writer/gateway_counts.py`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence

import pyodbc

from cti_journal.shared.backoff import Backoff
from cti_journal.shared.columns import ColumnType
from cti_journal.shared.config import WriterSettings
from cti_journal.shared.errors import (
    ConfigError,
    ConnectionLostError,
    CtiJournalError,
    PermanentError,
    TransientError,
)
from cti_journal.shared.labels import BoundedLabels
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import Metrics, observe_many
from cti_journal.shared.odbc import (
    RowError,
    SchemaError,
    UnknownDatabaseError,
    classify,
    connect,
)
from cti_journal.writer.claim import LedgerClaim, Row
from cti_journal.writer.ddl import create_if_missing, create_table_sql
from cti_journal.writer.dialect import Dialect, detect_dialect
from cti_journal.writer.gateway_counts import count_by_gateway
from cti_journal.writer.insert import choose_strategy, insert
from cti_journal.writer.journal_db import open_journal
from cti_journal.writer.ledger import Ledger
from cti_journal.writer.pairs import PairCheck
from cti_journal.writer.table import TablePlan, load_plan
from cti_journal.writer.values import (
    EVENT_ID,
    GATEWAY,
    RECEIVED_AT,
    UTC,
    ZEITPUNKT,
    EntryValues,
    values_of,
)

log = logging.getLogger(__name__)
Outcome = BaseException | None
BATCH_ATTEMPTS = 3
PRUNE_EVERY_S = 3600.0


class StoppingError(CtiJournalError):
    """The writer is shutting down while the database is away: settle nothing."""


class OdbcJournalSink:
    def __init__(self, settings: WriterSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stopping = threading.Event()
        self._conn: pyodbc.Connection | None = None
        self._plan: TablePlan | None = None
        self._ledger: Ledger | None = None
        self._claim: LedgerClaim | None = None
        self._strategy: str = settings.strategy
        self._truncation_logged: set[str] = set()
        self._last_prune = float("-inf")  # the first prune is due at once
        self._replan = False  # read the table's catalog again before the next batch
        self._pairs = PairCheck()
        # `gateway` comes from messages: its metric series are bounded by writer.gateways
        self._gateway_label = BoundedLabels(settings.gateways, settings.max_gateway_series)

    # -- set-up -------------------------------------------------------------------------------
    def open(self) -> TablePlan:
        """Connect, read the table through the catalog, prepare the ledger. Raises ConfigError
        naming the setting when the database, the table or a column is not as configured."""
        conn = self._connection(opening=True)  # ConnectionLostError: the caller waits, retries
        dialect = detect_dialect(conn)
        if self.settings.create_table:
            self._create_table_if_missing(conn, dialect)
        plan = load_plan(conn, self.settings.table, self.settings.columns, self._truncated)
        self._zero_truncations(plan)
        ledger_name = self.settings.ledger_table or f"{self.settings.table}_ledger"
        ledger = Ledger(ledger_name, dialect)
        try:
            ledger.ensure(conn)
            self._warn_if_journal_was_emptied(conn, plan, ledger)
        except pyodbc.Error as exc:
            raise ConfigError("writer.ledger_table", f"cannot use {ledger_name}: {exc}") from exc
        self._strategy = choose_strategy(self.settings.strategy, dialect)
        self._plan, self._ledger = plan, ledger
        self._claim = LedgerClaim(ledger, self.metrics)
        log.info(
            "journal table %s on %s: %d mapped columns (%s), strategy %s",
            plan.table, dialect.value, len(plan.columns),
            ", ".join(f"{c.name}={c.type.value}" for c in plan.columns), self._strategy,
        )  # fmt: skip
        return plan

    def _warn_if_journal_was_emptied(
        self, conn: pyodbc.Connection, plan: TablePlan, ledger: Ledger
    ) -> None:
        """An empty journal with a non-empty ledger means the table was re-created or emptied:
        entries already in the ledger would be skipped as duplicates if they came again."""
        cursor = conn.cursor()
        journal_rows = cursor.execute(f"SELECT COUNT(*) FROM {plan.table}").fetchone()[0]
        ledger_rows = cursor.execute(f"SELECT COUNT(*) FROM {ledger.table}").fetchone()[0]
        conn.rollback()
        if journal_rows == 0 and ledger_rows:
            log.warning(
                "the journal table %s is empty but its ledger %s holds %d event ids: entries "
                "with those ids (a replay, an import) will be skipped as already written. If "
                "the table was re-created on purpose, empty the ledger too: DELETE FROM %s",
                plan.table, ledger.table, ledger_rows, ledger.table,
            )  # fmt: skip

    def _create_table_if_missing(self, conn: pyodbc.Connection, dialect: Dialect) -> None:
        def exists() -> bool:
            return any(True for _ in conn.cursor().tables(table=self.settings.table))

        if create_if_missing(conn, exists, create_table_sql(dialect, self.settings.table)):
            log.info("created journal table %s", self.settings.table)

    def _zero_truncations(self, plan: TablePlan) -> None:
        """A series at 0 for every column a value can be cut to fit (bounded text that is not
        an id), so the dashboard's truncation panel shows 0 rather than no data."""
        for col in plan.columns:
            if col.sql_kind == "text" and col.size is not None and col.type is not ColumnType.ID:
                self.metrics.truncated.labels(col.name)

    def _truncated(self, column: str) -> None:
        self.metrics.truncated.labels(column).inc()
        if column not in self._truncation_logged:
            self._truncation_logged.add(column)
            log.warning("values for column %s are cut to fit its size (logged once)", column)

    def _connection(self, *, opening: bool = False) -> pyodbc.Connection:
        if self._conn is None:
            # A database that refuses us for good is a configuration error when the writer
            # starts (exit 2); a later reconnect waits out whatever it meets, as the broker
            # keeps the entries meanwhile.
            self._conn = (
                open_journal(self.settings, unreachable_is_transient=True)
                if opening
                else connect(self.settings.dsn)
            )
            self.metrics.db_connected.set(1)
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self.metrics.db_connected.set(0)
        if conn is not None:
            with contextlib.suppress(pyodbc.Error):
                conn.close()

    def close(self) -> None:
        self._drop_connection()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # -- writing ------------------------------------------------------------------------------
    def write(self, entries: Sequence[JournalEntry]) -> list[Outcome]:
        """`write_values` for entry objects."""
        return self.write_values([values_of(entry) for entry in entries])

    def write_values(self, batch: Sequence[EntryValues]) -> list[Outcome]:
        link = Backoff(first_s=0.2, max_s=self.settings.db_retry_max_s)
        retry = Backoff(first_s=0.2, max_s=self.settings.db_retry_max_s)
        attempts = 0
        while True:
            try:
                outcomes = self._write_once(batch)
            except ConnectionLostError as exc:
                self._drop_connection()
                self._replan = True
                link.failed(log, "journal database", f"unreachable ({exc})")
                waiting = link
            except TransientError as exc:
                self._rollback()
                attempts += 1
                if attempts >= BATCH_ATTEMPTS:
                    return [exc] * len(batch)
                log.info("batch of %d: %s; trying again", len(batch), exc)
                waiting = retry
            else:
                link.succeeded(log, "journal database")
                self._maybe_prune()
                return outcomes
            if waiting.wait(self.stopping):
                raise StoppingError("shutting down")

    def _write_once(self, batch: Sequence[EntryValues]) -> list[Outcome]:
        assert self._plan is not None, "open() first"
        conn = self._connection()
        if self._replan:
            self._reload_plan(conn)
        self._pairs.observe_values(batch)
        outcomes: list[Outcome] = [None] * len(batch)
        rows = self._rows(batch, outcomes)
        started = time.perf_counter()
        written = self._isolating(conn, rows, outcomes)
        elapsed = time.perf_counter() - started
        self.metrics.insert_seconds.observe(elapsed)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.written.inc(written)
        now = time.time()
        observe_many(
            self.metrics.end_to_end_seconds,
            [max(0.0, now - values[RECEIVED_AT])
             for values, outcome in zip(batch, outcomes, strict=True) if outcome is None],
        )  # fmt: skip
        return outcomes

    def _rows(self, batch: Sequence[EntryValues], outcomes: list[Outcome]) -> list[Row]:
        """The batch's rows, one per event id; a value that cannot be converted is that
        entry's outcome (its dead letter), the others go on."""
        assert self._plan is not None
        row_of = self._plan.row_of
        rows: list[Row] = []
        seen: set[str] = set()
        copies: list[str] = []  # gateways of entries that came twice in this batch
        for i, values in enumerate(batch):
            event_id = values[EVENT_ID]
            if event_id in seen:  # the same entry twice in one batch: one row
                copies.append(values[GATEWAY])
                continue
            seen.add(event_id)
            try:
                rows.append(
                    Row(
                        i, event_id, row_of(values), values[UTC], values[ZEITPUNKT], values[GATEWAY]
                    )
                )
            except PermanentError as exc:
                outcomes[i] = exc
            except Exception as exc:
                # Conversion is pure: whatever it raises is about this entry's values, so it is
                # this entry's dead letter, never the batch's retry (issue 20, finding 7).
                log.exception("event %s: converting its values failed", event_id)
                outcomes[i] = PermanentError(f"converting the entry failed: {type(exc).__name__}")
        if copies:
            self.metrics.duplicates_skipped.inc(len(copies))
            for gateway, count in Counter(map(self._gateway_label, copies)).items():
                self.metrics.skipped_by_gateway.labels(gateway).inc(count)
        return rows

    def _reload_plan(self, conn: pyodbc.Connection) -> None:
        """After a reconnect: the table may have been repaired, altered or re-created."""
        try:
            self._plan = load_plan(
                conn, self.settings.table, self.settings.columns, self._truncated
            )
            self._zero_truncations(self._plan)
        except ConfigError as exc:
            raise SchemaError(f"journal table not usable: {exc}") from exc
        except pyodbc.Error as exc:
            raise classify(exc) from exc
        self._replan = False

    def _isolating(self, conn: pyodbc.Connection, rows: list[Row], outcomes: list[Outcome]) -> int:
        """Commit rows; bisect around rows the database rejects. Returns rows written."""
        if not rows:
            return 0
        try:
            return self._commit(conn, rows)
        except (RowError, UnknownDatabaseError) as exc:
            self._rollback()
            if len(rows) > 1:
                mid = len(rows) // 2
                return self._isolating(conn, rows[:mid], outcomes) + self._isolating(
                    conn, rows[mid:], outcomes
                )
            row = rows[0]
            assert self._claim is not None
            if self._claim.committed_elsewhere(conn, row):
                self.metrics.duplicates_skipped.inc()
                self.metrics.skipped_by_gateway.labels(row.gateway).inc()
                return 0  # another writer won the race for this entry
            log.warning("event %s rejected by the database: %s", row.event_id, exc)
            outcomes[row.index] = exc
            return 0

    def _commit(self, conn: pyodbc.Connection, rows: list[Row]) -> int:
        """One transaction: ledger rows first, then journal rows, then commit.

        Writing the ledger first does two things. Its primary key is the duplicate check, so the
        usual batch costs no extra query: only a key violation (a redelivered batch, or another
        writer racing us, whose commit the database makes us wait for) leads to reading which
        ids are known. And the transaction takes the write lock at its first statement, so two
        writers on SQLite queue up instead of deadlocking on a read lock each wants to upgrade."""
        assert self._plan is not None and self._claim is not None
        self._claim.batched = self._strategy == "json"
        try:
            cursor = conn.cursor()
            todo = self._claim.claim(conn, cursor, rows)
            if todo:
                insert(cursor, self._plan, self._strategy, [r.values for r in todo])
            conn.commit()
        except pyodbc.Error as exc:
            raise classify(exc) from exc
        count_by_gateway(self.metrics, rows, todo, self._gateway_label)
        return len(todo)

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except pyodbc.Error:
                self._drop_connection()

    def _maybe_prune(self) -> None:
        # 0 (the default): the ledger is pruned only with the journal rows it guards.
        days = self.settings.ledger_retention_days
        if days <= 0 or self._ledger is None:
            return
        if time.monotonic() - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = time.monotonic()
        try:
            pruned = self._ledger.prune(self._connection(), days)
        except (pyodbc.Error, ConnectionLostError) as exc:
            log.warning("could not prune the ledger: %s", exc)
            self._rollback()
            return
        if pruned:
            log.info("pruned %d ledger rows older than %d days", pruned, days)
