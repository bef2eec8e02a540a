"""Claiming a batch's event ids in the ledger, in the batch's transaction: which rows are new.

The ledger's primary key is the duplicate check, so the usual batch costs no extra query: only a
key violation (a redelivered batch, a gateway pair's second copy, or another writer racing us,
whose commit the database makes us wait for) leads to reading which ids are known. After a batch
that held known ids, the next one reads first (see `_claim_known_first`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pyodbc

from cti_journal.shared.metrics import Metrics
from cti_journal.shared.odbc import RowError, classify
from cti_journal.writer.dialect import Dialect
from cti_journal.writer.ledger import Ledger

log = logging.getLogger(__name__)
SKIPPED_LOG_EVERY_S = 60.0


@dataclass(slots=True)
class Row:
    index: int
    event_id: str
    values: tuple[object, ...]
    utc: str  # the call's instant and
    zeitpunkt: str  # its local time: the ledger keeps a day of them (`Ledger.day`)
    gateway: str  # which gateway sent this copy (a pair sends two)


class LedgerClaim:
    """The ledger side of a batch: claim its ids, count and log what was already written."""

    def __init__(self, ledger: Ledger, metrics: Metrics) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.batched = False  # the `json` strategy: the ledger rows in one statement too
        self._expect_known = False  # the last batch held entries already written
        self._skipped_unlogged = 0
        self._skipped_logged_at = float("-inf")

    def claim(self, conn: pyodbc.Connection, cursor: pyodbc.Cursor, rows: list[Row]) -> list[Row]:
        """Insert the batch's ledger rows; returns the rows not committed before."""
        if self._expect_known:
            claimed = self._claim_known_first(conn, cursor, rows)
            if claimed is not None:
                return claimed
        try:
            self._record(cursor, rows)
            return rows
        except pyodbc.Error as exc:
            if not isinstance(classify(exc), RowError):
                raise
            conn.rollback()
        known = self._existing(cursor, rows)
        todo = [r for r in rows if r.event_id not in known]
        if len(todo) == len(rows):
            raise RowError("the ledger refused event ids it does not hold")
        self._skipped(len(rows) - len(todo))
        # A gateway pair: the next batch very likely holds copies too. Reading first saves the
        # failed INSERT and its rollback; not on SQLite, where a read lock that must be upgraded
        # would make two writers deadlock (see OdbcJournalSink._commit, writer/sink.py).
        self._expect_known = self.ledger.dialect is not Dialect.SQLITE
        if todo:
            self._record(cursor, todo)
        return todo

    def _claim_known_first(
        self, conn: pyodbc.Connection, cursor: pyodbc.Cursor, rows: list[Row]
    ) -> list[Row] | None:
        """Read which ids are known, then insert the others; None if a racing writer got some
        of those first (the caller then takes the usual path)."""
        known = self._existing(cursor, rows)
        todo = [r for r in rows if r.event_id not in known]
        try:
            if todo:
                self._record(cursor, todo)
        except pyodbc.Error as exc:
            if not isinstance(classify(exc), RowError):
                raise
            conn.rollback()
            return None
        self._expect_known = bool(known)
        if known:
            self._skipped(len(rows) - len(todo))
        return todo

    def _existing(self, cursor: pyodbc.Cursor, rows: list[Row]) -> set[str]:
        day = self.ledger.day
        day_of = {r.event_id: day(r.utc, r.zeitpunkt) for r in rows}
        return self.ledger.existing(cursor, list(day_of), day_of)

    def _record(self, cursor: pyodbc.Cursor, rows: list[Row]) -> None:
        day = self.ledger.day
        pairs = [(r.event_id, day(r.utc, r.zeitpunkt)) for r in rows]
        if self.batched:
            self.ledger.record_batch(cursor, pairs)
        else:
            self.ledger.record(cursor, pairs)

    def _skipped(self, count: int) -> None:
        self.metrics.duplicates_skipped.inc(count)
        self._log_skipped(count)

    def _log_skipped(self, count: int) -> None:
        """With a gateway pair nearly every batch skips entries: one line a minute, not per
        batch (the metrics count each)."""
        self._skipped_unlogged += count
        now = time.monotonic()
        if now - self._skipped_logged_at >= SKIPPED_LOG_EVERY_S:
            log.info("skipped %d entries already in the journal (since the last such line)",
                     self._skipped_unlogged)  # fmt: skip
            self._skipped_unlogged, self._skipped_logged_at = 0, now

    def committed_elsewhere(self, conn: pyodbc.Connection, row: Row) -> bool:
        try:
            found = bool(self._existing(conn.cursor(), [row]))
            conn.rollback()
        except pyodbc.Error as exc:
            raise classify(exc) from exc
        return found
