"""The journal table's columns as the ODBC catalog (SQLColumns) describes them.

Catalog names: the configured table and column names are matched exactly first and, failing
that, case-insensitively (PostgreSQL folds unquoted names to lower case, MariaDB and SQLite
compare them case-insensitively); the catalog's spelling is what the statements use. The look-up
is restricted to the current schema (PostgreSQL, SQL Server) or database (MariaDB).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyodbc

from cti_journal.shared.errors import ConfigError
from cti_journal.writer.dialect import Dialect


@dataclass(frozen=True)
class CatalogColumn:
    """One column as the ODBC catalog (SQLColumns) describes it."""

    name: str
    data_type: int
    type_name: str
    size: int | None
    digits: int | None
    nullable: bool  # False when NOT NULL or when the driver cannot tell
    needs_value: bool  # NOT NULL, no default, not filled by the database itself


def read_catalog(
    conn: pyodbc.Connection, dialect: Dialect, table: str
) -> tuple[str, list[CatalogColumn]]:
    """The table's name as the catalog spells it and its columns in order."""
    scope = _scope(conn, dialect)
    cursor = conn.cursor()
    try:
        rows = _columns(cursor, table, scope)
        if not rows:
            spelled = _spelling(cursor, table, scope)
            rows = _columns(cursor, spelled, scope)
        name: str = rows[0].table_name
        keys = _rowid_alias(cursor, name) if dialect is Dialect.SQLITE else set()
        return name, [_catalog_column(dialect, row, keys) for row in rows]
    finally:
        cursor.close()


def _scope(conn: pyodbc.Connection, dialect: Dialect) -> dict[str, str]:
    # Without a scope, psqlODBC lists same-named tables of every schema on the search path.
    query = {
        Dialect.POSTGRESQL: ("schema", "SELECT current_schema()"),
        Dialect.MSSQL: ("schema", "SELECT SCHEMA_NAME()"),
        Dialect.MARIADB: ("catalog", "SELECT DATABASE()"),
    }.get(dialect)
    if query is None:
        return {}
    cursor = conn.cursor()
    try:
        row = cursor.execute(query[1]).fetchone()
    finally:
        cursor.close()
    if row is None or not row[0]:
        raise ConfigError("writer.dsn", f"the connection has no current {query[0]}")
    return {query[0]: str(row[0])}


def _columns(cursor: pyodbc.Cursor, table: str, scope: Mapping[str, str]) -> list[Any]:
    # The table argument is a LIKE pattern (`_` matches any character): keep exact names only.
    rows = cursor.columns(table=table, **scope).fetchall()
    return [r for r in rows if r.table_name == table]


def _spelling(cursor: pyodbc.Cursor, table: str, scope: Mapping[str, str]) -> str:
    folded = table.casefold()
    found: list[str] = sorted(
        {
            str(t.table_name)
            for t in cursor.tables(**scope).fetchall()
            if t.table_name.casefold() == folded
        }
    )
    where = f" in {next(iter(scope.values()))}" if scope else ""
    if not found:
        raise ConfigError("writer.table", f"table {table!r} does not exist{where}")
    if len(found) > 1:
        raise ConfigError(
            "writer.table", f"{table!r} matches the tables {found}{where}: give the exact spelling"
        )
    return found[0]


def _rowid_alias(cursor: pyodbc.Cursor, table: str) -> set[str]:
    # An INTEGER PRIMARY KEY is SQLite's rowid: NOT NULL, yet filled by SQLite itself.
    keys = [r.column_name for r in cursor.primaryKeys(table=table).fetchall()]
    return set(keys) if len(keys) == 1 else set()


def _catalog_column(dialect: Dialect, row: Any, rowid: set[str]) -> CatalogColumn:
    type_name = str(row.type_name or "")
    default = row.column_def
    # MariaDB and SQLite report "no default" as the text NULL.
    has_default = default is not None and str(default).strip().upper() != "NULL"
    filled = (
        bool(getattr(row, "auto_increment", 0))  # psqlODBC: serial and identity
        or any(w in type_name.lower() for w in ("identity", "counter", "autoincrement"))
        or (dialect is Dialect.MSSQL and type_name.lower() in ("timestamp", "rowversion"))
        or (row.column_name in rowid and type_name.upper() == "INTEGER")
    )
    size = row.column_size
    if dialect is Dialect.POSTGRESQL and getattr(row, "typmod", None) == -1:
        size = None  # text or varchar without a length: psqlODBC reports its buffer size
    return CatalogColumn(
        name=row.column_name,
        data_type=int(row.data_type),
        type_name=type_name,
        size=size if size is not None and size > 0 else None,
        digits=row.decimal_digits,
        nullable=row.nullable == 1,
        needs_value=row.nullable == 0 and not has_default and not filled,
    )
