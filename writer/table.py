"""The journal table as the writer finds it: the plan of which table column gets which
`Journal_*` value (`writer/mapping.py`), read from the ODBC catalog (`writer/catalog.py`), and the
row an entry becomes (`writer/values.py`).

`load_plan` reads the table's columns through the ODBC catalog once at start and checks every
mapped column against its `Journal_*` type, so that a table that cannot work fails the start (as a
`ConfigError` naming the column) rather than every entry. `TablePlan.row` then turns an entry into
the parameters of one row; a value that cannot fit raises `PermanentError` naming the column.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pyodbc

from cti_journal.shared.message import JournalEntry
from cti_journal.writer.catalog import read_catalog
from cti_journal.writer.dialect import (
    Dialect,
    detect_dialect,
    max_params,
    multi_row_values,
    quote_identifier,
)
from cti_journal.writer.mapping import MappedColumn, map_columns
from cti_journal.writer.values import RowBuilder, row_builder, values_of

MAX_ROWS_PER_STATEMENT: Final = 100  # measured: beyond ~100 rows per VALUES nothing is gained


def _ignore(_column: str) -> None:
    return None


@dataclass(frozen=True)
class TablePlan:
    table: str  # as the catalog spells it
    dialect: Dialect
    columns: tuple[MappedColumn, ...]
    on_truncate: Callable[[str], None] = field(default=_ignore, compare=False, repr=False)

    def row(self, entry: JournalEntry) -> tuple[Any, ...]:
        """The parameters of one row for *entry*, in the order of `columns`."""
        return self.row_of(values_of(entry))

    @functools.cached_property
    def row_of(self) -> RowBuilder:
        """The parameters of one row for an entry's values (`writer/values.py` EntryValues),
        in the order of `columns`: the writer's per-entry path, built once per plan."""
        return row_builder(self.columns, self.on_truncate)

    def insert_sql(self, rows: int) -> str:
        """`INSERT INTO t (c, …) VALUES (?, …), …` for *rows* rows (1 for executemany)."""
        if not 1 <= rows <= self.max_rows_per_statement():
            raise ValueError(f"rows must be 1..{self.max_rows_per_statement()}, not {rows}")
        names = ", ".join(quote_identifier(c.name, self.dialect) for c in self.columns)
        one = "(" + ", ".join("?" * len(self.columns)) + ")"
        table = quote_identifier(self.table, self.dialect)
        return f"INSERT INTO {table} ({names}) VALUES " + ", ".join([one] * rows)

    def max_rows_per_statement(self) -> int:
        if not multi_row_values(self.dialect):
            return 1
        return max(1, min(MAX_ROWS_PER_STATEMENT, max_params(self.dialect) // len(self.columns)))


def load_plan(
    conn: pyodbc.Connection,
    table: str,
    mapping: Mapping[str, str],
    on_truncate: Callable[[str], None] = _ignore,
) -> TablePlan:
    """Read *table* from the catalog and map its columns; `ConfigError` if the table cannot work.

    Call it before anything is written on *conn*: on a connection without autocommit it ends with
    a rollback, because the catalog reads opened a transaction that would otherwise stay open
    until the first batch commits (PostgreSQL: idle in transaction; SQLite: a shared lock that
    keeps every other writer out).
    """
    dialect = detect_dialect(conn)
    try:
        name, columns = read_catalog(conn, dialect, table)
    finally:
        if not conn.autocommit:
            conn.rollback()
    mapped = map_columns(dialect, name, columns, mapping)
    return TablePlan(name, dialect, mapped, on_truncate)
