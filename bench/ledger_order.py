"""What the ledger's key order costs as it grows: the `dated` layout (key = call day, id) against
the `compact` one (key = id alone), each filled the way the writer fills it — one transaction
per batch of ids, through `Ledger.record_batch` — on PostgreSQL, MariaDB and SQLite.

    .venv/bin/python -m bench.ledger_order --entries 1000000 [--db sqlite]

The ids are the gateway's (SHA-256 prefixes, random); the calls come in time order, 7,200 a day
(the simulator's mean gap of 12 s), as a backfill or a live line brings them. For each layout it
prints the CPU per entry of this process (the whole of SQLite, which runs in it) and of the
database server's processes, and the wall time, per tenth of the run, so that the growth shows;
the last tenth is the figure that matters for a table that has grown. A benchmark: it prints.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import uuid
from datetime import date, timedelta

from bench.common import (
    DATABASES,
    Database,
    cpu_by_command,
    cpu_delta,
    database,
    discard,
)
from cti_journal.writer.ledger import Ledger

_BATCH = 500
_PER_DAY = 7200


def _ids(start: int, stop: int) -> list[tuple[str, date]]:
    first = date(2016, 1, 1)
    return [
        (hashlib.sha256(b"%d" % i).hexdigest()[:32], first + timedelta(days=i // _PER_DAY))
        for i in range(start, stop)
    ]


def _server_cpu(db: Database, before: dict[str, float]) -> float:
    spent = cpu_delta(before, cpu_by_command())
    return sum(spent.get(name, 0.0) for name in db.server_comm)


def measure(name: str, layout: str, entries: int) -> list[tuple[int, float, float, float]]:
    """(entries so far, own CPU µs/entry, server CPU µs/entry, wall µs/entry) per tenth."""
    tag = f"ledger_{layout}_{uuid.uuid4().hex[:8]}"
    db = database(name, tag)
    ledger = Ledger(tag, db.dialect)
    ledger.layout = layout
    tenths: list[tuple[int, float, float, float]] = []
    conn = db.connect()
    try:
        ledger.ensure(conn)
        cursor = conn.cursor()
        step = max(_BATCH, entries // 10)
        for part in range(0, entries, step):
            stop = min(entries, part + step)
            server, own, wall = cpu_by_command(), time.process_time(), time.perf_counter()
            for start in range(part, stop, _BATCH):
                ledger.record_batch(cursor, _ids(start, min(stop, start + _BATCH)))
                conn.commit()
            n = stop - part
            tenths.append((
                stop,
                (time.process_time() - own) / n * 1e6,
                _server_cpu(db, server) / n * 1e6,
                (time.perf_counter() - wall) / n * 1e6,
            ))  # fmt: skip
    finally:
        conn.close()
        discard(db, tag)
    return tenths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", choices=(*DATABASES, "all"), default="all")
    args = parser.parse_args(argv)
    names = DATABASES if args.db == "all" else (args.db,)
    print("µs per entry (own CPU incl. SQLite + server CPU; wall), per tenth of the fill")
    for name in names:
        last: dict[str, tuple[int, float, float, float]] = {}
        for layout in ("compact", "dated"):
            tenths = measure(name, layout, args.entries)
            for stop, own, server, wall in tenths:
                print(f"{name:10} {layout:8} {stop:>9,} entries: cpu {own:6.1f} + {server:6.1f}"
                      f"   wall {wall:6.1f}", flush=True)  # fmt: skip
            last[layout] = tenths[-1]
        old, new = last["compact"], last["dated"]
        cpu = (new[1] + new[2]) / (old[1] + old[2])
        print(f"{name:10} last tenth, dated ÷ compact: cpu {cpu:.2f}, wall {new[3] / old[3]:.2f}",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
