"""What a gateway pair costs the writer: every entry arrives twice, the second copy is found in
the ledger and skipped. The writer's own sink (`OdbcJournalSink.write`), batches of 500:

* single: each entry once;
* pair: each entry twice, the second copy one batch later (both gateways publish the same line
  within milliseconds, and one writer's batches interleave them), so every batch meets the
  ledger's key violation, rolls back, reads which ids are known and writes the rest.

    .venv/bin/python -m bench.pair_cost --entries 20000 [--db postgresql|mariadb|sqlite|all]

Prints wall time per *unique* entry (what the journal gains) for both, and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence

from bench.common import DATABASES, database, discard, journal_entries
from cti_journal.shared.config import WriterSettings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.sink import OdbcJournalSink

BATCH = 500


def _batches(entries: Sequence[JournalEntry], pair: bool) -> list[list[JournalEntry]]:
    if not pair:
        return [list(entries[i : i + BATCH]) for i in range(0, len(entries), BATCH)]
    half = BATCH // 2
    out: list[list[JournalEntry]] = []
    for i in range(0, len(entries) + half, half):
        fresh = list(entries[i : i + half])  # gateway A's copies
        late = [e.evolve(gateway="b") for e in entries[max(0, i - half) : i]]  # B's, a batch on
        out.append(fresh + late)
    return out


def run(name: str, entries: Sequence[JournalEntry], pair: bool) -> float:
    table = f"paircost_{uuid.uuid4().hex[:8]}"
    db = database(name, table)
    sink = OdbcJournalSink(
        WriterSettings(dsn=db.dsn, table=table, create_table=True, batch_size=BATCH),
        make_metrics(),
    )
    sink.open()
    try:
        batches = _batches(entries, pair)
        started = time.perf_counter()
        for batch in batches:
            outcomes = sink.write(batch)
            assert all(o is None for o in outcomes), outcomes
        elapsed = time.perf_counter() - started
        rows = sink.metrics.registry.get_sample_value("cti_journal_rows_written_total")
        assert rows == len(entries), rows
    finally:
        sink.close()
        discard(db, f"{table}_ledger", table)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--db", choices=(*DATABASES, "all"), default="all")
    args = parser.parse_args(argv)
    entries = journal_entries(args.entries)
    for name in DATABASES if args.db == "all" else (args.db,):
        single = run(name, entries, pair=False)
        pair = run(name, entries, pair=True)
        n = len(entries)
        print(f"{name:10} single {single / n * 1e6:6.1f} µs/entry ({n / single:7.0f}/s)   "
              f"pair {pair / n * 1e6:6.1f} µs/entry ({n / pair:7.0f}/s)   "
              f"pair/single {pair / single:4.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
