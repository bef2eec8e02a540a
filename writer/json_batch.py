"""The `json` insert strategy: a batch's rows travel as ONE text parameter, a JSON array of
rows, which the database unpacks (PostgreSQL `jsonb_array_elements`, MariaDB `JSON_TABLE`,
SQLite `json_each`).

Why: with multi-row VALUES pyodbc binds and the driver converts every value of every row, one by
one (16 × 500 parameters a batch); here orjson encodes the batch in C and the driver passes one
string. The values are converted and cut to size in Python exactly as before
(`writer/values.py`): only the transport changes, and every supported column type is proven to
round-trip equal to VALUES by `tests/integration/test_json_batch.py`.

Each column is read from its JSON value with the type the catalog reported (`MappedColumn`), so
that the database converts the text the way it converts a bound parameter: PostgreSQL and SQLite
get an explicit cast only where the value is not text; MariaDB's `JSON_TABLE` declares a type
per column. Datetimes leave orjson as ISO 8601 (`2026-12-01T10:00:05`), which all three read;
SQLite stores what `sqliteodbc` stores for a bound timestamp (`2026-12-01 10:00:05.000`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import orjson

from cti_journal.writer.dialect import Dialect, quote_identifier
from cti_journal.writer.mapping import MappedColumn
from cti_journal.writer.table import TablePlan

JSON_DIALECTS: Final = frozenset({Dialect.POSTGRESQL, Dialect.MARIADB, Dialect.SQLITE})
# Where `writer.strategy = "auto"` takes it: proven equal and measured cheaper (ours + server).
AUTO_DIALECTS: Final = frozenset({Dialect.POSTGRESQL, Dialect.MARIADB, Dialect.SQLITE})
# Rows per statement: one parameter whatever the count; bounded so that a statement's text stays
# well under every server's packet limit (MariaDB max_allowed_packet defaults to 16 MiB) even with
# wide rows, and so that bisection halves something of a sensible size.
JSON_ROWS_PER_STATEMENT: Final = 1000
_MARIA_BIGINT_UNSIGNED_ABOVE: Final = 2**63 - 1
_MARIA_VARCHAR_MAX: Final = 16383


# The parameter is bound as UTF-8 bytes and read as text by the database: no UTF-16 round trip
# through pyodbc and the driver (PostgreSQL: a third of the client's cost of a str), and MariaDB
# Connector/ODBC 3.1 fails long str parameters bound as UTF-16 (HY001 from SQLPutData; the
# writer's connections bind str as UTF-8 there since, shared/odbc.py `utf8_parameters`) while
# bytes of any length arrive whole.
PARAMETER: Final = {
    Dialect.POSTGRESQL: "CAST(convert_from(?, 'UTF8') AS jsonb)",
    Dialect.MARIADB: "CONVERT(? USING utf8mb4)",
    Dialect.SQLITE: "CAST(? AS TEXT)",
}


def encode(rows: Sequence[Sequence[object]]) -> bytes | None:
    """The rows as one JSON array of arrays (str, int, float, None, naive datetime), UTF-8; None
    when a value must go the VALUES way to be stored as it is today: what JSON cannot carry
    (a lone surrogate) and NUL characters (psqlODBC cuts a bound text at a NUL, MariaDB keeps it,
    while `\\u0000` is refused by PostgreSQL's jsonb). The NUL check is one scan of the
    encoded batch (a text holding a backslash and `u0000` is a harmless false alarm)."""
    try:
        batch = orjson.dumps(rows)
    except orjson.JSONEncodeError:
        return None
    return None if b"\\u0000" in batch else batch


def fits(plan: TablePlan, rows: Sequence[Sequence[object]]) -> bool:
    """False when a text is longer in UTF-8 than a column whose size counts bytes (MariaDB's
    TINYTEXT/TEXT/MEDIUMTEXT; the writer cuts by characters). A bound parameter is refused for
    it ("Data too long": the row is dead-lettered), but `INSERT … SELECT FROM JSON_TABLE` stores
    it with its length wrapped, silently. Such a batch goes the VALUES way."""
    checks = [(i, c.size) for i, c in enumerate(plan.columns) if c.byte_size and c.size]
    for i, size in checks:
        shortest = size // 4 + 1  # a text this short fits whatever its characters
        for row in rows:
            value = row[i]
            if isinstance(value, str) and len(value) >= shortest and len(value.encode()) > size:
                return False
    return True


def insert_sql(plan: TablePlan) -> str:
    """`INSERT INTO t (c, …) SELECT … FROM <the JSON parameter unpacked>` for this table."""
    d = plan.dialect
    table = quote_identifier(plan.table, d)
    names = ", ".join(quote_identifier(c.name, d) for c in plan.columns)
    if d is Dialect.POSTGRESQL:
        picks = ", ".join(_pg_pick(c, i) for i, c in enumerate(plan.columns))
        return (
            f"INSERT INTO {table} ({names}) SELECT {picks} "
            f"FROM jsonb_array_elements({PARAMETER[d]}) AS r(v)"
        )
    if d is Dialect.MARIADB:
        cols = ", ".join(
            f"{quote_identifier(f'c{i}', d)} {_maria_type(c)} PATH '$[{i}]'"
            for i, c in enumerate(plan.columns)
        )
        picks = ", ".join(f"j.`c{i}`" for i in range(len(plan.columns)))
        return (
            f"INSERT INTO {table} ({names}) SELECT {picks} "
            f"FROM JSON_TABLE({PARAMETER[d]}, '$[*]' COLUMNS ({cols})) AS j"
        )
    if d is Dialect.SQLITE:
        picks = ", ".join(_sqlite_pick(c, i) for i, c in enumerate(plan.columns))
        return f"INSERT INTO {table} ({names}) SELECT {picks} FROM json_each({PARAMETER[d]})"
    raise ValueError(f"no json strategy for {d.value}")


def _pg_pick(col: MappedColumn, i: int) -> str:
    value = f"(v->>{i})"
    if col.sql_kind == "text":
        return value  # assigned to varchar(n)/text as a bound text parameter would be
    if col.sql_kind == "integer":
        within = (col.low is None or col.low >= -(2**63)) and (col.high is None or col.high < 2**63)
        return f"CAST({value} AS {'bigint' if within else 'numeric'})"  # range: the column's
    if col.sql_kind == "float":
        return f"CAST({value} AS numeric)" if col.scale is not None else f"CAST({value} AS float8)"
    return f"CAST({value} AS {'timestamptz' if col.utc else 'timestamp'})"


def _maria_type(col: MappedColumn) -> str:
    if col.sql_kind == "text":
        # the widest VARCHAR of utf8mb4 is 16383 characters (TEXT reports 65535 bytes)
        wide = col.size is None or col.size > _MARIA_VARCHAR_MAX
        size = "LONGTEXT" if wide else f"VARCHAR({col.size})"
        return f"{size} CHARACTER SET utf8mb4"
    if col.sql_kind == "integer":
        # The column's range decides, both ends: JSON_TABLE turns a negative value read as
        # BIGINT UNSIGNED into 0 without an error (DECIMAL(20, 0) and wider are signed).
        signed = (col.low is None or col.low >= -(2**63)) and (
            col.high is None or col.high <= _MARIA_BIGINT_UNSIGNED_ABOVE
        )
        if signed:
            return "BIGINT"
        if col.low is not None and col.low >= 0 and col.high is not None and col.high < 2**64:
            return "BIGINT UNSIGNED"
        return "DECIMAL(65, 0)"
    if col.sql_kind == "float":
        return "DOUBLE" if col.scale is None else f"DECIMAL(65, {min(col.scale, 38)})"
    return "DATETIME"


def _sqlite_pick(col: MappedColumn, i: int) -> str:
    value = f"(value->>{i})"
    if col.sql_kind == "datetime":
        # what sqliteodbc stores for a bound SQL_TIMESTAMP: text with milliseconds
        return f"strftime('%Y-%m-%d %H:%M:%f', {value})"
    return value
