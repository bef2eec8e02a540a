"""The journal table as the writer finds it: which table column gets which `Journal_*` value, and
how each value is made to fit the column's SQL type.

`load_plan` reads the table's columns through the ODBC catalog once at start and checks every
mapped column against its `Journal_*` type, so that a table that cannot work fails the start (as a
`ConfigError` naming the column) rather than every entry. `TablePlan.row` then turns an entry into
the parameters of one row; a value that cannot fit raises `PermanentError` naming the column.

Decisions:

* Mapping: `writer.columns` (table column → `Journal_*` type or `ID`) when given; otherwise every
  column whose name is a type's name (see `shared.columns.type_for_name`). A column named `ID` is
  taken for the event id by default only when it is a text column: an integer `id` is the usual
  auto-increment key and is left to its default.
* Missing values: an empty text or a missing number goes in as NULL when the column is nullable,
  and as the neutral value ("" or 0) when it is NOT NULL (or the driver cannot tell), so that an
  unanswered call without a duration is never refused by a NOT NULL column.
* Text longer than the column is cut to fit and `on_truncate(column)` is called; the declared
  size is honoured on SQLite as well, which does not enforce it, so that all databases hold the
  same data. A number is never cut: a number whose text does not fit is a `PermanentError`.
  The event id (`ID`) is never cut either: a cut id could collide with another entry's.
* Integers are checked against the column's range here, because MariaDB outside strict mode would
  silently store the nearest value. SQLite stores every integer in 64 bits whatever the declared
  type, so only that range applies there.
* `Journal_ZeitpunktNumerisch` (and `Journal_Zeitpunkt`, which carries the same value) goes into
  a date/time column as a naive `datetime` of the local wall-clock time; into a column with a time
  zone (PostgreSQL `timestamptz`, SQL Server `datetimeoffset`) as the UTC instant; into a floating
  point or decimal column as the OLE Automation date; into a text column as the text.
* Catalog names: the configured table and column names are matched exactly first and, failing
  that, case-insensitively (PostgreSQL folds unquoted names to lower case, MariaDB and SQLite
  compare them case-insensitively); the catalog's spelling is what the statements use. The look-up
  is restricted to the current schema (PostgreSQL, SQL Server) or database (MariaDB).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

import pyodbc

from cti_journal.shared.columns import SPECS, ColumnType, Kind, parse_type, type_for_name
from cti_journal.shared.errors import ConfigError, PermanentError
from cti_journal.shared.message import JournalEntry
from cti_journal.writer.dialect import (
    Dialect,
    detect_dialect,
    max_params,
    multi_row_values,
    quote_identifier,
)

SqlKind = Literal["text", "integer", "float", "datetime"]

MAX_ROWS_PER_STATEMENT: Final = 100  # measured: beyond ~100 rows per VALUES nothing is gained
OLE_EPOCH: Final = date(1899, 12, 30)

# ODBC SQL data types (sql.h, sqlext.h, msodbcsql.h).
_TEXT_TYPES: Final = frozenset({1, 12, -1, -8, -9, -10})
_INT_BITS: Final = {-6: 8, 5: 16, 4: 32, -5: 64}
_DOUBLE_TYPES: Final = frozenset({6, 8})  # SQL_FLOAT, SQL_DOUBLE
_SINGLE_TYPE: Final = 7  # SQL_REAL: 24-bit mantissa, minutes apart around 2026 as an OLE date
_DECIMAL_TYPES: Final = frozenset({2, 3})
_TIMESTAMP_TYPES: Final = frozenset({93, 11})  # SQL_TYPE_TIMESTAMP, ODBC 2's SQL_TIMESTAMP
_DATE_TIME_ONLY: Final = frozenset({91, 9, 92, 10})  # a date or a time of day alone
_SS_TIMESTAMPOFFSET: Final = -155

# psqlODBC reports json, uuid-as-text and (BoolsAsChar) bool as character types: on PostgreSQL
# only these type names are text.
_PG_TEXT_NAMES: Final = frozenset(
    {"varchar", "text", "bpchar", "char", "citext", "name", "character varying", "character"}
)
_MARIA_NOT_TEXT: Final = frozenset({"enum", "set"})
_OLE_MIN_SCALE: Final = 5  # 1 s is 0.0000116 days: five decimals keep the nearest second
_OLE_MIN_INT_DIGITS: Final = 5  # days up to 99999 reach the year 2173


@dataclass(frozen=True)
class MappedColumn:
    name: str  # as the catalog spells it
    type: ColumnType
    sql_kind: SqlKind
    size: int | None  # text: characters the column holds; None = unbounded
    nullable: bool
    low: int | None = None  # integer / decimal: the smallest and largest whole number it holds
    high: int | None = None
    scale: int | None = None  # decimal: digits after the point; None for binary floating point
    utc: bool = False  # date/time with a time zone: gets the UTC instant


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
        return tuple(convert(entry) for convert in self._converters)

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

    @functools.cached_property
    def _converters(self) -> tuple[Callable[[JournalEntry], Any], ...]:
        return tuple(_converter(c, self.on_truncate) for c in self.columns)


# ---------------------------------------------------------------------------------------------
# Values


def ole_date(moment: datetime) -> float:
    """*moment* as an OLE Automation date: days since 1899-12-30, the time of day as the fraction.

    Before the epoch the whole days count down while the fraction still counts up, as in Access.
    """
    days = (moment.date() - OLE_EPOCH).days
    fraction = (
        moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    ) / 86400
    return days + fraction if days >= 0 else days - fraction


def _converter(
    col: MappedColumn, on_truncate: Callable[[str], None]
) -> Callable[[JournalEntry], Any]:
    source = _source(col)
    if col.sql_kind == "text":
        return lambda entry: _text(col, source(entry), on_truncate)
    if col.sql_kind == "integer":
        return lambda entry: _integer(col, source(entry))
    if col.sql_kind == "float":
        return lambda entry: _float(col, source(entry))
    if col.utc:
        return lambda entry: entry.utc
    return lambda entry: _moment(col, entry.zeitpunkt)


def _source(col: MappedColumn) -> Callable[[JournalEntry], Any]:
    if (
        col.type in (ColumnType.ZEITPUNKT, ColumnType.ZEITPUNKT_NUMERISCH)
        and col.sql_kind == "float"
    ):
        return lambda entry: _moment(col, entry.zeitpunkt)
    attribute = SPECS[col.type].field
    return lambda entry: getattr(entry, attribute)


def _missing(col: MappedColumn) -> Any:
    if col.nullable:
        return None
    return "" if col.sql_kind == "text" else 0


def _text(col: MappedColumn, value: str | int | None, on_truncate: Callable[[str], None]) -> Any:
    if value is None or value == "":
        return _missing(col)
    text = str(value)
    if col.size is None or len(text) <= col.size:
        return text
    if isinstance(value, int) or col.type is ColumnType.ID:
        raise PermanentError(
            f"{text!r} does not fit into column {col.name} of {col.size} characters",
            column=col.name,
        )
    on_truncate(col.name)
    return text[: col.size]


_WHOLE_NUMBER: Final = re.compile(r"[+-]?[0-9]+")


def _integer(col: MappedColumn, value: str | int | None) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return _missing(col)
        if not _WHOLE_NUMBER.fullmatch(value):
            raise PermanentError(
                f"{value[:60]!r} is not a whole number for the integer column {col.name}",
                column=col.name,
            )
        value = int(value)
    if value is None:
        return _missing(col)
    _check_range(col, value)
    return value


def _check_range(col: MappedColumn, value: float) -> None:
    if (col.low is not None and value < col.low) or (col.high is not None and value > col.high):
        raise PermanentError(
            f"{value} does not fit into column {col.name} ({col.low}..{col.high})",
            column=col.name,
        )


def _float(col: MappedColumn, value: datetime | int | None) -> Any:
    if value is None:
        return _missing(col)
    number = ole_date(value) if isinstance(value, datetime) else value
    _check_range(col, number)
    if col.scale is not None and isinstance(number, float):
        return round(number, col.scale)
    return number


def _moment(col: MappedColumn, zeitpunkt: str) -> datetime:
    try:
        if len(zeitpunkt) != len("YYYY-MM-DD HH:MM:SS") or zeitpunkt[10] != " ":
            raise ValueError(zeitpunkt)
        return datetime.fromisoformat(zeitpunkt)  # ~10x cheaper than strptime, on every row
    except ValueError as exc:
        raise PermanentError(
            f"Zeitpunkt {zeitpunkt[:40]!r} is not YYYY-MM-DD HH:MM:SS", column=col.name
        ) from exc


# ---------------------------------------------------------------------------------------------
# The catalog


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


@dataclass(frozen=True)
class _SqlType:
    kind: SqlKind
    size: int | None = None
    low: int | None = None
    high: int | None = None
    scale: int | None = None
    utc: bool = False
    single: bool = False  # single-precision floating point


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
    types = {c.name: _sql_type(dialect, c) for c in columns}
    chosen = _explicit(columns, mapping) if mapping else _by_name(columns, types)
    if not chosen:
        raise ConfigError(
            "writer.columns",
            f"no column of table {name} is named after a Journal_* type; "
            "rename the columns or map them in [writer.columns]",
        )
    mapped: list[MappedColumn] = []
    for col in columns:  # in the table's order
        ctype = chosen.get(col.name)
        if ctype is None:
            if col.needs_value:
                raise ConfigError(
                    f"writer.columns.{col.name}",
                    f"column {col.name} of table {name} is NOT NULL without a default but no "
                    "Journal_* type is mapped to it: map it or give it a default",
                )
            continue
        mapped.append(_mapped(col, ctype, types[col.name]))
    return TablePlan(name, dialect, tuple(mapped), on_truncate)


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


# ---------------------------------------------------------------------------------------------
# Mapping and type checks


def _explicit(
    columns: Sequence[CatalogColumn], mapping: Mapping[str, str]
) -> dict[str, ColumnType]:
    chosen: dict[str, ColumnType] = {}
    for configured, type_name in mapping.items():
        setting = f"writer.columns.{configured}"
        try:
            ctype = parse_type(type_name)
        except ValueError as exc:
            raise ConfigError(setting, str(exc)) from exc
        col = _find(columns, configured)
        if col is None:
            names = ", ".join(c.name for c in columns)
            raise ConfigError(setting, f"the table has no column {configured!r}; it has {names}")
        if col.name in chosen:
            raise ConfigError(setting, f"column {col.name} is mapped twice")
        chosen[col.name] = ctype
    return chosen


def _find(columns: Sequence[CatalogColumn], name: str) -> CatalogColumn | None:
    for col in columns:
        if col.name == name:
            return col
    folded = [c for c in columns if c.name.casefold() == name.casefold()]
    if len(folded) > 1:
        raise ConfigError(
            f"writer.columns.{name}",
            f"matches the columns {[c.name for c in folded]}: give the exact spelling",
        )
    return folded[0] if folded else None


def _by_name(
    columns: Sequence[CatalogColumn], types: Mapping[str, _SqlType | str]
) -> dict[str, ColumnType]:
    chosen: dict[str, ColumnType] = {}
    for col in columns:
        ctype = type_for_name(col.name)
        if ctype is None:
            continue
        sql = types[col.name]
        if ctype is ColumnType.ID and not (isinstance(sql, _SqlType) and sql.kind == "text"):
            continue  # an integer `id` is an auto-increment key, not the event id
        twin = next((name for name, t in chosen.items() if t is ctype), None)
        if twin is not None:
            raise ConfigError(
                "writer.columns",
                f"columns {twin} and {col.name} both stand for {ctype.value}: map them explicitly",
            )
        chosen[col.name] = ctype
    return chosen


def _mapped(col: CatalogColumn, ctype: ColumnType, sql: _SqlType | str) -> MappedColumn:
    setting = f"writer.columns.{col.name}"
    if isinstance(sql, str):
        raise ConfigError(setting, f"column {col.name} is {col.type_name}: {sql}")
    problem = _cannot_hold(ctype, sql)
    if problem:
        raise ConfigError(
            setting, f"column {col.name} ({col.type_name}) cannot hold {ctype.value}: {problem}"
        )
    return MappedColumn(
        name=col.name,
        type=ctype,
        sql_kind=sql.kind,
        size=sql.size,
        nullable=col.nullable,
        low=sql.low,
        high=sql.high,
        scale=sql.scale,
        utc=sql.utc,
    )


def _sql_type(dialect: Dialect, col: CatalogColumn) -> _SqlType | str:
    """What the column can hold, or why the writer cannot use it at all."""
    dt, name = col.data_type, col.type_name.lower()
    if dt in _TEXT_TYPES:
        return _text_type(dialect, col)
    if dt in _INT_BITS:
        return _integer_type(dialect, dt, name)
    if dt in _DECIMAL_TYPES:
        return _decimal_type(col)
    if dt in _DOUBLE_TYPES or dt == _SINGLE_TYPE:
        return _SqlType("float", single=dt == _SINGLE_TYPE)
    if dt in _TIMESTAMP_TYPES or dt == _SS_TIMESTAMPOFFSET:
        return _SqlType("datetime", utc=dt == _SS_TIMESTAMPOFFSET or name == "timestamptz")
    return (
        "a date or a time of day alone, which cannot hold a point in time"
        if dt in _DATE_TIME_ONLY
        else "a type the writer does not write"
    )


def _text_type(dialect: Dialect, col: CatalogColumn) -> _SqlType | str:
    name = col.type_name.lower()
    if (dialect is Dialect.POSTGRESQL and name not in _PG_TEXT_NAMES) or (
        dialect is Dialect.MARIADB and name in _MARIA_NOT_TEXT
    ):
        return "a type the writer does not write"
    return _SqlType("text", size=col.size)


def _integer_type(dialect: Dialect, data_type: int, type_name: str) -> _SqlType:
    bits = 24 if "mediumint" in type_name else _INT_BITS[data_type]
    unsigned = "unsigned" in type_name or (
        data_type == -6 and dialect in (Dialect.MSSQL, Dialect.ACCESS)
    )
    if dialect is Dialect.SQLITE:
        bits, unsigned = 64, False  # SQLite stores every integer in up to 8 bytes
    if unsigned:
        return _SqlType("integer", low=0, high=2**bits - 1)
    return _SqlType("integer", low=-(2 ** (bits - 1)), high=2 ** (bits - 1) - 1)


def _decimal_type(col: CatalogColumn) -> _SqlType:
    precision, scale = col.size or 38, col.digits or 0
    bound = 10 ** (precision - scale) - 1
    if scale == 0:
        return _SqlType("integer", low=-bound, high=bound)
    return _SqlType("float", low=-bound, high=bound, scale=scale)


def _cannot_hold(ctype: ColumnType, sql: _SqlType) -> str | None:
    """Why a column of this SQL type cannot hold the type's values, or None if it can."""
    if ctype is ColumnType.ID:
        return _id_problem(sql)
    if ctype in (ColumnType.ZEITPUNKT, ColumnType.ZEITPUNKT_NUMERISCH):
        return _moment_problem(sql)
    if SPECS[ctype].kind is Kind.INTEGER:
        # A number keeps its value as text, integer or decimal; a date/time column cannot hold it.
        return (
            "a number needs an integer, decimal or text column" if sql.kind == "datetime" else None
        )
    allowed = ("text", "integer") if ctype is ColumnType.DATENSATZ_ID else ("text",)
    return None if sql.kind in allowed else "it is text"


def _id_problem(sql: _SqlType) -> str | None:
    if sql.kind != "text":
        return "the event id is text"
    if sql.size is not None and sql.size < SPECS[ColumnType.ID].size:
        return f"the event id needs {SPECS[ColumnType.ID].size} characters and is never cut"
    return None


def _moment_problem(sql: _SqlType) -> str | None:
    if sql.kind == "integer":
        return "an integer cannot hold the time of day"
    if sql.kind != "float":
        return None
    if sql.single:
        return "single precision holds a date-time only to some minutes; use DOUBLE PRECISION"
    if sql.scale is not None and (
        sql.scale < _OLE_MIN_SCALE or sql.high is None or sql.high < 10**_OLE_MIN_INT_DIGITS - 1
    ):
        return "an OLE date needs a decimal with at least 5 digits before and 5 after the point"
    return None
