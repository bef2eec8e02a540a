"""Contact sources (ODBC tables or queries) and the holder that keeps the index fresh.

Refresh: every `refresh_s` each source is read again, one source at a time, and a new index is
swapped in after each. A source with a `modified_column` is read incrementally (rows whose
modified value is >= the highest seen: `>=` re-reads rows that share the last timestamp, which is
harmless, instead of missing rows committed later with the same timestamp); every
`FULL_RELOAD_EVERY`-th refresh reads it fully, because an incremental read cannot see deleted
rows. A source without one is read fully every time. A source that fails keeps its last good
records: the holder reports it through `on_refresh`, logs the first failure of a streak and the
recovery, and carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, Protocol

import pyodbc

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.errors import CtiJournalError, TransientError
from cti_journal.shared.normalize import NumberNormalizer
from cti_journal.shared.odbc import describe, redact_dsn

log = logging.getLogger(__name__)

FULL_RELOAD_EVERY: Final = 12  # with refresh_s = 300: deletions show within an hour
FETCH_ROWS: Final = 5000

OnRefresh = Callable[[str, bool, int, float], None]  # source, ok, records, seconds


class SourceUnavailableError(TransientError):
    """A contact source could not be read."""


class ContactSource(Protocol):
    """One place contacts come from. `load(None)` reads everything; `load(since)` the records
    modified at or after `since` (only called when `incremental`)."""

    @property
    def settings(self) -> ContactSourceSettings: ...

    @property
    def incremental(self) -> bool: ...

    def load(self, since: Any | None) -> Iterable[ContactRow]: ...


class OdbcContactSource:
    def __init__(self, settings: ContactSourceSettings, *, timeout_s: int = 10) -> None:
        self._settings = settings
        self._timeout_s = timeout_s

    @property
    def settings(self) -> ContactSourceSettings:
        return self._settings

    @property
    def incremental(self) -> bool:
        return bool(self._settings.modified_column)

    def load(self, since: Any | None) -> Iterator[ContactRow]:
        where = f"source {self._settings.name} ({redact_dsn(self._settings.dsn)})"
        try:
            conn = pyodbc.connect(self._settings.dsn, timeout=self._timeout_s)
        except pyodbc.Error as exc:
            raise SourceUnavailableError(f"{where}: cannot connect: {describe(exc)}") from exc
        try:
            quote = str(conn.getinfo(pyodbc.SQL_IDENTIFIER_QUOTE_CHAR)).strip()
            sql, params = select_statement(self._settings, quote, since)
            cursor = conn.cursor()
            cursor.execute(sql, *params)
            while batch := cursor.fetchmany(FETCH_ROWS):
                for raw in batch:
                    yield self._row(tuple(raw))
        except pyodbc.Error as exc:
            raise SourceUnavailableError(f"{where}: cannot read: {describe(exc)}") from exc
        finally:
            conn.close()

    def _row(self, raw: tuple[Any, ...]) -> ContactRow:
        s = self._settings
        values = iter(raw)
        record_id = _text(next(values))
        if s.name_column:
            name = _text(next(values))
        else:
            first = _text(next(values)) if s.first_name_column else ""
            last = _text(next(values)) if s.last_name_column else ""
            name = f"{first} {last}".strip()
        company = _text(next(values)) if s.company_column else ""
        phones = tuple(_text(next(values)) for _ in s.phone_columns)
        modified = next(values) if s.modified_column else None
        return ContactRow(record_id, name, company, phones, s, modified)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def quote_identifier(name: str, quote: str) -> str:
    """`schema.table` quoted part by part; drivers without quoting (" ") get the name as is."""
    if not quote:
        return name
    return ".".join(f"{quote}{part.replace(quote, quote * 2)}{quote}" for part in name.split("."))


def select_statement(
    s: ContactSourceSettings, quote: str, since: Any | None
) -> tuple[str, tuple[Any, ...]]:
    """The SELECT for a source: its columns in a fixed order, optionally only modified rows."""
    names = [s.id_column]
    if s.name_column:
        names.append(s.name_column)
    else:
        names += [c for c in (s.first_name_column, s.last_name_column) if c]
    if s.company_column:
        names.append(s.company_column)
    names += list(s.phone_columns)
    if s.modified_column:
        names.append(s.modified_column)
    if s.query:
        # Columns of an arbitrary query are addressed through a derived table.
        columns = ", ".join(f"q.{quote_identifier(n, quote)}" for n in names)
        sql = f"SELECT {columns} FROM ({s.query}) q"
        modified = f"q.{quote_identifier(s.modified_column, quote)}"
    else:
        columns = ", ".join(quote_identifier(n, quote) for n in names)
        sql = f"SELECT {columns} FROM {quote_identifier(s.table, quote)}"
        modified = quote_identifier(s.modified_column, quote)
    if since is None or not s.modified_column:
        return sql, ()
    return f"{sql} WHERE {modified} >= ?", (since,)


class _Watermark:
    """Passes rows through and remembers the highest modified value."""

    def __init__(self, rows: Iterable[ContactRow], start: Any | None) -> None:
        self._rows = rows
        self.value = start
        self.count = 0

    def __iter__(self) -> Iterator[ContactRow]:
        for row in self._rows:
            self.count += 1
            modified: Any = row.modified
            if modified is not None and (self.value is None or modified > self.value):
                self.value = modified
            yield row


class IndexHolder:
    """The current index of all sources, refreshed in a daemon thread."""

    def __init__(
        self,
        settings: LookupSettings,
        on_refresh: OnRefresh | None = None,
        *,
        sources: Sequence[ContactSource] | None = None,
    ) -> None:
        self._settings = settings
        self._on_refresh = on_refresh
        self._sources: Sequence[ContactSource] = (
            sources if sources is not None else [OdbcContactSource(s) for s in settings.sources]
        )
        self._normalizer = NumberNormalizer.from_settings(settings)
        if self._normalizer.own_base:
            log.info(
                "lookup.own_number %r: in internal sources, +%s followed by 1 to %d digits is "
                "also an extension", settings.own_number, self._normalizer.own_base,
                settings.max_extension_digits,
            )  # fmt: skip
        self._index = ContactIndex.empty(self._normalizer, settings.tie_break)
        self._since: dict[str, Any] = {}
        self._failing: set[str] = set()
        self._refreshes = 0
        self._lock = threading.Lock()  # one refresh at a time: the thread's or refresh_now's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> ContactIndex:
        return self._index

    def start(self) -> None:
        """Read every source (blocking; raises SourceUnavailableError), then refresh in the
        background."""
        with self._lock:
            for source in self._sources:
                self._load(source, full=True)
        self._thread = threading.Thread(target=self._run, name="contact-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def refresh_now(self) -> None:
        with self._lock:
            self._refreshes += 1
            full = self._refreshes % FULL_RELOAD_EVERY == 0
            for source in self._sources:
                self._refresh_one(source, full=full or not source.incremental)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.refresh_s):
            try:
                self.refresh_now()
            except Exception:
                # The refresh thread must outlive anything a source or the index can throw;
                # the last good index stays in service.
                log.exception("contact refresh failed; keeping the last good index")

    def _refresh_one(self, source: ContactSource, *, full: bool) -> None:
        name = source.settings.name
        try:
            self._load(source, full=full)
        except CtiJournalError as exc:
            if name not in self._failing:
                log.warning("contact source %s failed, keeping its last good data: %s", name, exc)
            self._failing.add(name)
            self._report(name, ok=False, seconds=0.0)
            return
        if name in self._failing:
            self._failing.discard(name)
            log.info("contact source %s is readable again", name)

    def _load(self, source: ContactSource, *, full: bool) -> None:
        name = source.settings.name
        started = time.monotonic()
        since = None if full else self._since.get(name)
        rows = _Watermark(source.load(since), since)
        self._index = self._index.updated(
            source.settings, rows, replace="all" if since is None else "changed"
        )
        if rows.value is not None:
            self._since[name] = rows.value
        seconds = time.monotonic() - started
        log.info(
            "contact source %s: %s read, %d rows in %.1f s",
            name,
            "fully" if since is None else "incrementally",
            rows.count,
            seconds,
        )
        self._report(name, ok=True, seconds=seconds)

    def _report(self, name: str, *, ok: bool, seconds: float) -> None:
        if self._on_refresh is not None:
            self._on_refresh(name, ok, self._index.records_of(name), seconds)
