"""The writer's part of `cti-journal check`: the journal table and its column mapping.

A check only reads: it never creates the journal table (`create_table = true`) or the ledger,
as the writer would at start — an admin checking a config against production must be able to
trust that nothing changed. What the writer would create is reported instead.
"""

from __future__ import annotations

import pyodbc

from cti_journal.shared.config import Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.odbc import describe, redact_dsn
from cti_journal.writer.dialect import detect_dialect
from cti_journal.writer.journal_db import open_journal
from cti_journal.writer.table import load_plan


def check(settings: Settings) -> list[str]:
    w = settings.writer
    conn = open_journal(w)
    try:
        return _report(conn, settings)
    except pyodbc.Error as exc:
        raise ConfigError("writer.dsn", f"{redact_dsn(w.dsn)}: {describe(exc)}") from exc
    finally:
        conn.rollback()
        conn.close()


def _exists(conn: pyodbc.Connection, table: str) -> bool:
    # The same catalog question the writer asks before it creates a table (writer/sink.py).
    return any(True for _ in conn.cursor().tables(table=table))


def _report(conn: pyodbc.Connection, settings: Settings) -> list[str]:
    w = settings.writer
    where = redact_dsn(w.dsn)
    dialect = detect_dialect(conn)
    ledger = w.ledger_table or f"{w.table}_ledger"
    if not _exists(conn, w.table) and w.create_table:
        return [
            f"{where}: table {w.table} ({dialect.value}) does not exist; the writer will create "
            "it with all 16 Journal_* columns (create_table = true); check changed nothing",
            f"  ledger {ledger}: will be created by the writer",
        ]
    plan = load_plan(conn, w.table, w.columns)
    lines = [f"{where}: table {plan.table} ({plan.dialect.value})"]
    for col in plan.columns:
        size = f"({col.size})" if col.size else ""
        lines.append(f"  {col.name:<28} <- {col.type.value:<28} {col.sql_kind}{size}")
    state = "exists" if _exists(conn, ledger) else "does not exist; the writer will create it"
    lines.append(f"  ledger {ledger}: {state}")
    return lines
