"""An ODBC table or query as a contact source (`type = "odbc"`, the default).

With a `modified_column` it has a change feed: rows whose modified value is >= the highest seen
(`>=` re-reads rows that share the last timestamp, which is harmless, instead of missing rows
committed later with the same timestamp). Such a feed cannot see deleted rows, so the holder
reads the table fully every FULL_RELOAD_EVERY-th refresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pyodbc

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import (
    ChangeSet,
    Configured,
    SourceRefusedError,
    SourceUnavailableError,
    where,
)
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.odbc import describe, redact_dsn, refused_for_good

FETCH_ROWS: Final = 5000


class OdbcContactSource(Configured):
    def __init__(self, settings: ContactSourceSettings, *, timeout_s: int = 10) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        # The token handed out is str(value); the value itself (a datetime, an int) is what the
        # driver compares, so the last one is kept beside its text.
        self._mark: Any | None = None

    @property
    def incremental(self) -> bool:
        return bool(self._settings.modified_column)

    @property
    def deletions(self) -> bool:
        return False

    @property
    def token(self) -> str | None:
        return None if self._mark is None else str(self._mark)

    def full_load(self) -> Iterator[ContactRow]:
        return self._read(None)

    def changes(self, token: str | None) -> ChangeSet:
        since = self._mark if token is not None and token == self.token else None
        rows = list(self._read(since))
        return ChangeSet(upserts=rows, deletions=[], token=self.token)

    def _read(self, since: Any | None) -> Iterator[ContactRow]:
        place = where(self._settings, redact_dsn(self._settings.dsn))
        try:
            conn = pyodbc.connect(self._settings.dsn, timeout=self._timeout_s)
        except pyodbc.Error as exc:
            raise _error(exc)(f"{place}: cannot connect: {describe(exc)}") from exc
        mark = since
        try:
            quote = str(conn.getinfo(pyodbc.SQL_IDENTIFIER_QUOTE_CHAR)).strip()
            sql, params = select_statement(self._settings, quote, since)
            cursor = conn.cursor()
            cursor.execute(sql, *params)
            while batch := cursor.fetchmany(FETCH_ROWS):
                for raw in batch:
                    row = self._row(tuple(raw))
                    modified: Any = row.modified
                    if modified is not None and (mark is None or modified > mark):
                        mark = modified
                    yield row
        except pyodbc.Error as exc:
            raise _error(exc)(f"{place}: cannot read: {describe(exc)}") from exc
        finally:
            conn.close()
        # Only a read that got to its end moves the resume point.
        if mark is not None:
            self._mark = mark

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


def _error(exc: pyodbc.Error) -> type[SourceUnavailableError]:
    return SourceRefusedError if refused_for_good(exc) else SourceUnavailableError


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
