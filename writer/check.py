"""The writer's part of `cti-journal check`: the journal table and its column mapping."""

from __future__ import annotations

from cti_journal.shared.config import Settings
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.odbc import redact_dsn
from cti_journal.writer.journal_db import journal_dsn
from cti_journal.writer.sink import OdbcJournalSink


def check(settings: Settings) -> list[str]:
    journal_dsn(settings.writer)
    sink = OdbcJournalSink(settings.writer, make_metrics())
    try:
        plan = sink.open()
    finally:
        sink.close()
    lines = [f"{redact_dsn(settings.writer.dsn)}: table {plan.table} ({plan.dialect.value})"]
    for col in plan.columns:
        size = f"({col.size})" if col.size else ""
        lines.append(f"  {col.name:<28} <- {col.type.value:<28} {col.sql_kind}{size}")
    return lines
