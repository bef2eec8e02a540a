"""Entries per message as the look-ups and writers receive them, for a benchmark run only.

Python imports `sitecustomize` at start-up from sys.path. With this folder on PYTHONPATH and
CTI_BUNDLE_PROBE=<dir>, every look-up and writer counts its deliveries by the number of entries
they carry (redeliveries apart) and writes the counts to <dir>/<role>-<pid>.txt every 2 s and at
exit. It changes no behaviour (each wrapper calls the original). Both paths must be absolute:
the pipeline's processes run in a folder of their own. Run as a script, it prints the counts:

    mkdir /tmp/b
    CTI_BUNDLE_PROBE=/tmp/b PYTHONPATH=$PWD/bench/bundle_probe .venv/bin/python -m bench.run ...
    .venv/bin/python bench/bundle_probe/sitecustomize.py /tmp/b

bench.run starts its shapes in order (2L×1W, then 2L×2W, ...), so within a role the lower pids
are the earlier shape. The 2L×1W processes also serve the latency phase (1,000 entries/s, which
arrive one by one and go on in small bundles), so their counts hold both; the share in messages
of 100 or more tells them apart.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

_DIR = os.environ.get("CTI_BUNDLE_PROBE", "")
_LARGE = 100  # entries: a message this full came from a backlog, not from a line at a time


def _install(folder: Path) -> None:
    from cti_journal.lookup.worker import LookupWorker
    from cti_journal.writer.worker import WriterWorker

    counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
    lock = threading.Lock()

    def save() -> None:
        with lock:
            rows = sorted(counts.items())
        by_role: dict[str, list[str]] = {}
        for (role, kind, size), n in rows:
            by_role.setdefault(role, []).append(f"{kind} {size} {n}\n")
        for role, lines in by_role.items():
            (folder / f"{role}-{os.getpid()}.txt").write_text("".join(lines))

    def wrap(cls: Any, role: str) -> None:
        original = cls._handle

        def handle(self: Any, delivery: Any) -> None:
            kind = "redelivered" if delivery.redelivered else "first"
            with lock:
                counts[role, kind, delivery.body.count(b'"event_id"')] += 1
            original(self, delivery)

        cls._handle = handle

    wrap(LookupWorker, "lookup")
    wrap(WriterWorker, "writer")

    def saver() -> None:
        while True:
            time.sleep(2.0)
            save()

    threading.Thread(target=saver, daemon=True).start()
    atexit.register(save)


def summary(folder: Path) -> int:
    files = sorted(
        folder.glob("*-*.txt"), key=lambda p: (p.stem.split("-")[0], int(p.stem.split("-")[1]))
    )
    if not files:
        print(f"no counts in {folder}: was CTI_BUNDLE_PROBE set to it (an absolute path)?")
        return 1
    for path in files:
        rows = [line.split() for line in path.read_text().splitlines()]
        first = [(int(size), int(n)) for kind, size, n in rows if kind == "first"]
        again = sum(int(n) for kind, _, n in rows if kind == "redelivered")
        messages = sum(n for _, n in first)
        entries = sum(size * n for size, n in first)
        large = sum(size * n for size, n in first if size >= _LARGE)
        print(
            f"{path.stem}: {entries:,} entries in {messages:,} messages "
            f"({entries / max(1, messages):.1f} a message), {100 * large / max(1, entries):.1f} % "
            f"in messages of {_LARGE} or more; {again:,} redeliveries"
        )
    return 0


if __name__ == "__main__":
    sys.exit(summary(Path(sys.argv[1])))
elif _DIR:
    if not os.path.isabs(_DIR) or not os.path.isdir(_DIR):
        print(f"bundle probe: CTI_BUNDLE_PROBE={_DIR} is not an absolute path to a folder: off",
              file=sys.stderr)  # fmt: skip
    else:
        _install(Path(_DIR))
