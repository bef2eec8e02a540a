"""Entries per message as the look-ups and writers receive them, for a benchmark run only.

Python imports `sitecustomize` at start-up from sys.path. With this folder on PYTHONPATH and
CTI_BUNDLE_PROBE=<dir>, every look-up and writer counts its deliveries by the number of entries
they carry and writes the counts to <dir>/<role>-<pid>.txt every 2 s and at exit. It changes no
behaviour (each wrapper calls the original). Run as a script, it prints the counts by size:

    CTI_BUNDLE_PROBE=/tmp/b PYTHONPATH=$PWD/bench/bundle_probe .venv/bin/python -m bench.run ...
    .venv/bin/python bench/bundle_probe/sitecustomize.py /tmp/b

A process of the 2L×1W shape also serves the latency phase (1,000 entries/s, which arrive one
by one and go on in small bundles), so its counts hold both; the size buckets tell them apart.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

_DIR = os.environ.get("CTI_BUNDLE_PROBE", "")
_BUCKETS = ((1, 1), (2, 9), (10, 99), (100, 10_000))


def _install() -> None:
    from cti_journal.lookup.worker import LookupWorker
    from cti_journal.writer.worker import WriterWorker

    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    lock = threading.Lock()

    def save() -> None:
        with lock:
            lines = [f"{role} {size} {n}\n" for (role, size), n in sorted(counts.items())]
        for role in {role for role, _ in counts}:
            path = Path(_DIR) / f"{role}-{os.getpid()}.txt"
            path.write_text("".join(line for line in lines if line.startswith(role + " ")))

    def wrap(cls: Any, role: str) -> None:
        original = cls._handle

        def handle(self: Any, delivery: Any) -> None:
            with lock:
                counts[role, delivery.body.count(b'"event_id"')] += 1
            original(self, delivery)

        cls._handle = handle

    wrap(LookupWorker, "lookup")
    wrap(WriterWorker, "writer")

    def saver() -> None:
        while True:
            time.sleep(2.0)
            save()

    threading.Thread(target=saver, daemon=True).start()
    import atexit

    atexit.register(save)


def summary(folder: Path) -> None:
    for path in sorted(folder.glob("*.txt")):
        rows = [tuple(map(int, line.split()[1:])) for line in path.read_text().splitlines()]
        parts = []
        for low, high in _BUCKETS:
            messages = sum(n for size, n in rows if low <= size <= high)
            entries = sum(size * n for size, n in rows if low <= size <= high)
            if messages:
                parts.append(f"{low}-{high}: {entries:,} entries in {messages:,} messages")
        print(f"{path.stem}: " + "; ".join(parts))


if __name__ == "__main__":
    summary(Path(sys.argv[1]))
elif _DIR:
    _install()
