"""How the rows of a batch are inserted: the batch as one JSON parameter, multi-row VALUES,
executemany, or fast_executemany."""

from __future__ import annotations

import orjson
import pyodbc

from cti_journal.shared.errors import ConfigError
from cti_journal.writer import json_batch
from cti_journal.writer.dialect import Dialect, multi_row_values
from cti_journal.writer.table import TablePlan

# Measured (shared/measurements.md): fast_executemany crashes the SQLite driver and raises
# MemoryError with MariaDB Connector/ODBC. Only where it was shown to work may it be chosen.
FAST_EXECUTEMANY_SAFE = frozenset({Dialect.POSTGRESQL, Dialect.MSSQL})


def choose_strategy(wanted: str, dialect: Dialect) -> str:
    """The insert strategy for `writer.strategy` on this database; ConfigError if it cannot work.

    `auto` takes `json` where it is proven equal to VALUES (tests/integration/test_json_batch.py)
    and measured cheaper (docs/benchmarks.md), else multi-row VALUES where the database has it."""
    if wanted == "fast_executemany" and dialect not in FAST_EXECUTEMANY_SAFE:
        raise ConfigError(
            "writer.strategy",
            f"fast_executemany is known to crash or fail with the {dialect.value} ODBC "
            "driver; use values or executemany",
        )
    if wanted == "values" and not multi_row_values(dialect):
        raise ConfigError("writer.strategy", f"{dialect.value} has no multi-row VALUES")
    if wanted == "json" and dialect not in json_batch.JSON_DIALECTS:
        raise ConfigError("writer.strategy", f"no json strategy for {dialect.value}")
    if wanted == "auto":
        if dialect in json_batch.AUTO_DIALECTS:
            return "json"
        return "values" if multi_row_values(dialect) else "executemany"
    return wanted


def insert(
    cursor: pyodbc.Cursor, plan: TablePlan, strategy: str, rows: list[tuple[object, ...]]
) -> None:
    """The rows' INSERT statements on *cursor*, in the chosen strategy."""
    if strategy == "json":
        batch = json_batch.encode(rows) if json_batch.fits(plan, rows) else None
        if batch is None:
            strategy = "values"  # a value the JSON path would store otherwise: as before
        else:
            if len(rows) <= json_batch.JSON_ROWS_PER_STATEMENT:
                cursor.execute(json_batch.insert_sql(plan), batch)
                return
            step = json_batch.JSON_ROWS_PER_STATEMENT
            for start in range(0, len(rows), step):
                part = orjson.dumps(rows[start : start + step])
                cursor.execute(json_batch.insert_sql(plan), part)
            return
    if strategy == "values":
        step = plan.max_rows_per_statement()
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            params = [value for row in chunk for value in row]
            cursor.execute(plan.insert_sql(len(chunk)), params)
        return
    cursor.fast_executemany = strategy == "fast_executemany"
    cursor.executemany(plan.insert_sql(1), rows)
