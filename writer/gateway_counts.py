"""Rows written and copies skipped, per gateway."""

from __future__ import annotations

from collections.abc import Callable

from cti_journal.shared.metrics import Metrics
from cti_journal.writer.claim import Row


def count_by_gateway(
    metrics: Metrics, rows: list[Row], todo: list[Row], label: Callable[[str], str] = str
) -> None:
    """Rows written and copies skipped per gateway: a pair's overlap, and a sign of a pair
    whose gateways disagree on `gateway.source_id` (both write, neither is ever skipped)."""
    written: dict[str, int] = {}
    for r in todo:
        name = label(r.gateway)  # bounded: the names come from messages (shared/labels.py)
        written[name] = written.get(name, 0) + 1
    skipped: dict[str, int] = {}
    if len(todo) != len(rows):
        kept = {id(r) for r in todo}
        for r in rows:
            if id(r) not in kept:
                name = label(r.gateway)
                skipped[name] = skipped.get(name, 0) + 1
    for gateway, n in written.items():
        metrics.rows_by_gateway.labels(gateway).inc(n)
    for gateway, n in skipped.items():
        metrics.skipped_by_gateway.labels(gateway).inc(n)
