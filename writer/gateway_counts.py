"""Rows written and copies skipped, per gateway."""

from __future__ import annotations

from cti_journal.shared.metrics import Metrics
from cti_journal.writer.claim import Row


def count_by_gateway(metrics: Metrics, rows: list[Row], todo: list[Row]) -> None:
    """Rows written and copies skipped per gateway: a pair's overlap, and a sign of a pair
    whose gateways disagree on `gateway.source_id` (both write, neither is ever skipped)."""
    written: dict[str, int] = {}
    for r in todo:
        written[r.gateway] = written.get(r.gateway, 0) + 1
    skipped: dict[str, int] = {}
    if len(todo) != len(rows):
        kept = {id(r) for r in todo}
        for r in rows:
            if id(r) not in kept:
                skipped[r.gateway] = skipped.get(r.gateway, 0) + 1
    for gateway, n in written.items():
        metrics.rows_by_gateway.labels(gateway).inc(n)
    for gateway, n in skipped.items():
        metrics.skipped_by_gateway.labels(gateway).inc(n)
