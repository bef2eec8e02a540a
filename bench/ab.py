"""Two checkouts' pipelines side by side, in one run: CPU per entry of each stage, alternating.

    git worktree add --detach /tmp/old main
    .venv/bin/python -m bench.ab /tmp/old --db postgresql [--count 20000] [--rounds 2]

On a shared machine the load moves between minutes; figures of two separate runs do not
compare. Here each round runs the other checkout's pipeline and then this one's (same database,
contacts and shape, one after the other), and prints each stage's CPU µs per entry, the
database server's, and ours / db for both (bench/budget.py). The other checkout's packages are
laid out as `cti_journal` in a temporary folder first on PYTHONPATH (as deploy/check-code.sh
does for mypy), so its processes run its code with this virtualenv's libraries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.budget import STAGES, stage_budget
from bench.common import DATABASES, database, drop_tables
from bench.contacts import make_contacts
from bench.pipeline import BenchPipeline
from bench.stage_cost import PACKAGES, REPO
from cti_journal.simulator.calls import generate_calls


def _layout(tree: Path, top: Path) -> Path:
    pkg = top / "cti_journal"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in PACKAGES:
        if (tree / name).is_dir():
            (pkg / name).symlink_to(tree / name)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.ab", description=__doc__.split("\n\n")[0])
    p.add_argument("other", type=Path, help="the other checkout (e.g. main's)")
    p.add_argument("--db", choices=DATABASES, default="postgresql")
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--contacts", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--lookups", type=int, default=2)
    p.add_argument("--writers", type=int, default=1)
    args = p.parse_args(argv)
    tag = f"ab{os.getpid()}"
    db = database(args.db, tag)
    contacts = f"{tag}_contacts"
    numbers = make_contacts(db, contacts, args.contacts)
    budgets: dict[str, list[dict[str, float]]] = {"other": [], "this": []}
    rates: dict[str, list[float]] = {"other": [], "this": []}
    try:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            code = {
                "other": _layout(args.other.resolve(), Path(a)),
                "this": _layout(REPO, Path(b)),
            }
            for rnd in range(args.rounds):
                for name in ("other", "this"):
                    calls = list(generate_calls(100 + rnd, args.count, numbers=numbers))
                    load = os.getloadavg()[0]
                    with BenchPipeline(db, contacts, lookups=args.lookups, writers=args.writers,
                                       code=code[name]) as pipe:  # fmt: skip
                        t = pipe.throughput(calls, len(calls), timeout_s=max(60, args.count / 100))
                    budget = stage_budget(t.cpu_s, t.entries, db.name)
                    budgets[name].append(budget)
                    rates[name].append(t.rate)
                    ours_db = budget["ours"] / budget["db"] if budget["db"] else float("nan")
                    print(f"round {rnd + 1} {name:<5} load {load:4.1f}: {t.rate:7,.0f} entries/s"
                          f", ours {budget['ours']:.0f} µs/entry, db {budget['db']:.0f}, "
                          f"ours/db {ours_db:.2f}{' STALLED' if t.stalled else ''}",
                          flush=True)  # fmt: skip
                    time.sleep(1)
    finally:
        drop_tables(db, contacts)
    shape = f"{args.lookups}L×{args.writers}W"
    print(f"\n{args.db} {shape}, {args.count} entries × {args.rounds} rounds; medians, µs/entry")
    print(f"{'stage':<10}{'other':>8}{'this':>8}{'this/other':>12}")
    for stage in STAGES:
        old = statistics.median(b[stage] for b in budgets["other"])
        new = statistics.median(b[stage] for b in budgets["this"])
        print(f"{stage:<10}{old:>8.0f}{new:>8.0f}{new / old if old else float('nan'):>12.2f}")
    print(f"{'entries/s':<10}{statistics.median(rates['other']):>8,.0f}"
          f"{statistics.median(rates['this']):>8,.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
