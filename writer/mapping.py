"""Which table column gets which `Journal_*` value, and whether the column's SQL type can hold it.

Mapping: `writer.columns` (table column → `Journal_*` type or `ID`) when given; otherwise every
column whose name is a type's name (see `shared.columns.type_for_name`). A column named `ID` is
taken for the event id by default only when it is a text column: an integer `id` is the usual
auto-increment key and is left to its default. Every mapped column is checked against its
`Journal_*` type here, so that a table that cannot work fails the start (as a `ConfigError`
naming the column) rather than every entry. SQLite stores every integer in 64 bits whatever the
declared type, so only that range applies there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cti_journal.shared.columns import SPECS, ColumnType, Kind, parse_type, type_for_name
from cti_journal.shared.errors import ConfigError
from cti_journal.writer.catalog import CatalogColumn
from cti_journal.writer.dialect import Dialect

SqlKind = Literal["text", "integer", "float", "datetime"]

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
    # text whose catalog size counts bytes, not characters (MariaDB's TINYTEXT/TEXT/MEDIUMTEXT:
    # 255/65535/16777215 bytes): a text within `size` characters may still not fit
    byte_size: bool = False


@dataclass(frozen=True)
class _SqlType:
    kind: SqlKind
    size: int | None = None
    low: int | None = None
    high: int | None = None
    scale: int | None = None
    utc: bool = False
    single: bool = False  # single-precision floating point
    byte_size: bool = False  # text: the size counts bytes (MappedColumn.byte_size)


def map_columns(
    dialect: Dialect, name: str, columns: Sequence[CatalogColumn], mapping: Mapping[str, str]
) -> tuple[MappedColumn, ...]:
    """The mapped columns of table *name* in its order; `ConfigError` naming the column if the
    table cannot work."""
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
    return tuple(mapped)


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
        byte_size=sql.byte_size,
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
    byte_size = dialect is Dialect.MARIADB and name.endswith("text")
    return _SqlType("text", size=col.size, byte_size=byte_size)


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
