"""`CREATE TABLE` for the journal table with the seed's types and sizes, per database, and the
`cti-journal schema` command that prints it.

The column names are the seed's (`Journal_Gebühren` included), always quoted, so that the default
mapping (column name = type name) finds every column. The optional `ID` column holds the event id;
it is the primary key, so that the database itself refuses a second row for the same call and an
Access front end can link the table as updatable (Access needs a unique index for that).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Final

import pyodbc

from cti_journal.shared.columns import JOURNAL_TYPES, SPECS, ColumnType, Kind, parse_type
from cti_journal.shared.errors import ConfigError
from cti_journal.writer.dialect import Dialect, quote_identifier

# Per dialect: text of n characters, a 32-bit integer, a date and time to the second.
_TYPES: Final[dict[Dialect, tuple[str, str, str]]] = {
    Dialect.POSTGRESQL: ("VARCHAR({n})", "INTEGER", "TIMESTAMP(0)"),
    Dialect.MARIADB: ("VARCHAR({n})", "INT", "DATETIME"),
    # sqliteodbc reports the declared type and size through the catalog, so they are declared
    # although SQLite itself enforces neither.
    Dialect.SQLITE: ("VARCHAR({n})", "INTEGER", "TIMESTAMP"),
    Dialect.MSSQL: ("NVARCHAR({n})", "INT", "DATETIME2(0)"),
    Dialect.ACCESS: ("TEXT({n})", "LONG", "DATETIME"),
}
# InnoDB: the writer commits rows and its ledger in one transaction, which MyISAM cannot.
_MARIADB_OPTIONS: Final = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
DIALECTS: Final = tuple(d.value for d in _TYPES)


def create_if_missing(conn: pyodbc.Connection, exists: Callable[[], bool], ddl: str) -> bool:
    """Run `ddl` unless `exists()`; True when this call created the table.

    Writers on several hosts start at the same moment and all find the table missing. One
    CREATE wins; PostgreSQL fails the others with a unique violation on its catalog (23505) or
    42P07, MariaDB with 42S01. A table that exists after the failure is what was wanted; any
    other failure is raised."""
    if exists():
        return False
    conn.rollback()  # end the read: SQLite writers holding shared locks would block each other
    try:
        conn.cursor().execute(ddl)
        conn.commit()
        return True
    except pyodbc.Error:
        conn.rollback()
        if exists():
            return False
        raise


def create_table_sql(
    dialect: Dialect,
    table: str = "journal",
    types: Sequence[ColumnType] | None = None,
    id_column: bool = False,
) -> str:
    """The CREATE TABLE statement (without a trailing semicolon) for *dialect*.

    *types* defaults to all 16 `Journal_*` types in the seed's order; `ID` among them, or
    *id_column*, adds the event id column as the first column and primary key.
    """
    if dialect not in _TYPES:
        raise ValueError(f"no DDL for {dialect.value}; one of {', '.join(DIALECTS)}")
    chosen = list(dict.fromkeys(JOURNAL_TYPES if types is None else types))
    with_id = id_column or ColumnType.ID in chosen
    chosen = [t for t in chosen if t is not ColumnType.ID]
    if not chosen and not with_id:
        raise ValueError("a table needs at least one column")
    lines = [_id_column(dialect, table)] if with_id else []
    lines += [f"{quote_identifier(t.value, dialect)} {_sql_type(dialect, t)}" for t in chosen]
    body = ",\n    ".join(lines)
    options = _MARIADB_OPTIONS if dialect is Dialect.MARIADB else ""
    return f"CREATE TABLE {quote_identifier(table, dialect)} (\n    {body}\n){options}"


def _sql_type(dialect: Dialect, ctype: ColumnType) -> str:
    text, integer, moment = _TYPES[dialect]
    spec = SPECS[ctype]
    if spec.kind is Kind.INTEGER:
        return integer
    if spec.kind is Kind.DATETIME:
        return moment
    return text.format(n=spec.size)


def _id_column(dialect: Dialect, table: str) -> str:
    name = quote_identifier(ColumnType.ID.value, dialect)
    kind = _sql_type(dialect, ColumnType.ID)
    if dialect is Dialect.ACCESS:
        # Jet SQL wants a named constraint; the name must be unique in the database file.
        constraint = quote_identifier(f"{table}_pk", dialect)
        return f"{name} {kind} NOT NULL CONSTRAINT {constraint} PRIMARY KEY"
    return f"{name} {kind} NOT NULL PRIMARY KEY"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dialect", required=True, choices=DIALECTS, help="the target database")
    parser.add_argument(
        "--types",
        default="",
        help="comma-separated column types, e.g. In_Out,Zeitpunkt,Rufnummer (default: all 16)",
    )
    parser.add_argument("--table", default="journal", help="the table's name (default journal)")
    parser.add_argument(
        "--with-id", action="store_true", help="add the event id column ID as primary key"
    )


def run(args: argparse.Namespace) -> int:
    types: list[ColumnType] | None = None
    if args.types.strip():
        try:
            types = [parse_type(part) for part in args.types.split(",") if part.strip()]
        except ValueError as exc:
            raise ConfigError("--types", str(exc)) from exc
        if not types:
            raise ConfigError("--types", "names no column type")
    try:
        sql = create_table_sql(Dialect(args.dialect), args.table, types, args.with_id)
    except ValueError as exc:
        raise ConfigError("--table", str(exc)) from exc
    print(sql + ";")
    return 0
