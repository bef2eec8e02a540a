"""The lookup's part of `cti-journal check`: every contact source can be read and indexed."""

from __future__ import annotations

import time

from cti_journal.lookup.sources import IndexHolder
from cti_journal.shared.config import Settings


def check(settings: Settings) -> list[str]:
    if not settings.lookup.sources:
        return ["no contact sources configured: entries pass on un-enriched"]
    lines: list[str] = []

    def report(source: str, ok: bool, records: int, seconds: float) -> None:
        state = "ok" if ok else "FAILED"
        lines.append(f"source {source}: {state}, {records} records in {seconds:.2f} s")

    started = time.perf_counter()
    holder = IndexHolder(settings.lookup, on_refresh=report)
    holder.refresh_now()
    lines.append(f"index: {len(holder.current)} numbers in {time.perf_counter() - started:.2f} s")
    return lines
