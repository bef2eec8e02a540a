"""Compare two `bench.run` results: each stage's CPU per entry, normalised by the database's.

    .venv/bin/python -m bench.compare bench/results/reference.json bench/results/latest.json
    .venv/bin/python -m bench.compare OLD.json NEW.json --fail-above 15   # exit 1 on creep

A shared machine's absolute figures move with its load, so each stage is divided by a yardstick
measured in the same run (bench/budget.py): the database server's CPU per entry (PostgreSQL,
MariaDB) or, for SQLite, the raw VALUES insert's time per row. The change is that of the ratio.
Also printed: throughput against raw and naive, p99, and the load each run was measured at.
Backfill results (`--backfill`) are compared by rate and peak memory, the contact index's build
(`--index N`) by its wall and CPU seconds; a file may hold any of the three.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.budget import STAGES, budget_of_run, raw_values_of, yardstick

_HEADER = f"  {'stage':<10}{'old µs':>8}{'old ×':>8}{'new µs':>8}{'new ×':>8}{'change':>9}"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _shape(run: Mapping[str, Any]) -> str:
    return f"{run['lookups']}L×{run['writers']}W"


def _change(old: float, new: float) -> float:
    return 100 * (new - old) / old if old and math.isfinite(old) and math.isfinite(new) else 0.0


def _load_text(run: Mapping[str, Any]) -> str:
    load = run.get("loadavg")
    return f"{load[0]:.1f}" if load else "?"


def compare_runs(db_old: Mapping[str, Any], db_new: Mapping[str, Any]) -> tuple[list[str], float]:
    """Lines for one database present in both files, and the largest change of a stage of ours
    (normalised, %)."""
    name = db_new["database"]
    lines = [f"== {name} =="]
    worst = -math.inf
    old_runs = {_shape(r): r for r in db_old["runs"]}
    for run in db_new["runs"]:
        shape = _shape(run)
        old = old_runs.get(shape)
        if old is None or old.get("throughput") is None or run.get("throughput") is None:
            continue
        b_old, b_new = budget_of_run(old, name), budget_of_run(run, name)
        server = b_old.get("db", 0.0) > 0 and b_new.get("db", 0.0) > 0
        y_old, what = yardstick(db_old, b_old, server=server)
        y_new, _ = yardstick(db_new, b_new, server=server)
        rate_old, rate_new = old["throughput"]["rate"], run["throughput"]["rate"]
        lines.append(
            f"{shape}: normalised by {what} ({y_old:.0f} → {y_new:.0f} µs/entry); "
            f"load {_load_text(old)} → {_load_text(run)}; entries/s {rate_old:,.0f} → "
            f"{rate_new:,.0f}"
        )
        lines.append(_HEADER)
        for stage in STAGES:
            if stage == "db" and what != "database server CPU":
                continue
            r_old, r_new = b_old[stage] / y_old, b_new[stage] / y_new
            change = _change(r_old, r_new)
            if stage in ("gateway", "lookup", "writer", "ours"):
                worst = max(worst, change)
            lines.append(
                f"  {stage:<10}{b_old[stage]:>8.0f}{r_old:>8.2f}{b_new[stage]:>8.0f}"
                f"{r_new:>8.2f}{change:>+8.0f}%"
            )
    lines += _headline(db_old, db_new)
    return lines, worst


def _headline(db_old: Mapping[str, Any], db_new: Mapping[str, Any]) -> list[str]:
    out = []
    for label, db in (("old", db_old), ("new", db_new)):
        raw = raw_values_of(db)
        e2e = db["end_to_end"]["rate"]
        lat = db["runs"][0].get("latency") or {}
        out.append(
            f"  {label}: best {e2e:,.0f}/s ({db['end_to_end']['shape']}) = "
            f"{e2e / raw:.2f} × raw VALUES ({raw:,.0f}), "
            f"{e2e / db['naive']['baseline']:.1f} × naive; p50 {lat.get('p50_ms', math.nan):.0f}"
            f" ms, p99 {lat.get('p99_ms', math.nan):.0f} ms at "
            f"{lat.get('offered_rate', 1000.0):,.0f}/s"
        )
    return out


def compare_backfill(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for label, data in (("old", old), ("new", new)):
        b = data["backfill"]
        peak = ", ".join(f"{k} {v:.0f}" for k, v in b["peak_rss_mb"].items())
        load = data.get("loadavg_at_start") or [math.nan]
        rate, raw = b["throughput"]["rate"], b.get("raw_values")
        relative = f", {rate / raw:.3f} × raw VALUES" if raw else ""
        out.append(
            f"{label}: {rate:,.0f} entries/s{relative} ({b['throughput']['entries']:,}"
            f" entries, load {load[0]:.1f}); peak RSS MB: {peak}"
        )
    return out


def compare_index(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The contact index's build (bench.run --index N): wall and CPU seconds, memory."""
    out = []
    for label, data in (("old", old), ("new", new)):
        i = data["index"]
        out.append(
            f"{label}: index of {i['contacts']:,} contacts built in {i['build_s']:.1f} s (CPU "
            f"{i['build_cpu_s']:.1f} s, load {i.get('load_average', math.nan):.1f}); RSS "
            f"{i['rss_mb']:.0f} MB, peak {i['peak_rss_mb']:.0f} MB; "
            f"{i['lookups_per_cpu_s']:,} look-ups per CPU second"
        )
    o, n = old["index"], new["index"]
    out.append(f"  build CPU seconds {_change(o['build_cpu_s'], n['build_cpu_s']):+.0f}%")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument(
        "--fail-above",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 if a stage of ours grew by more than PCT %% (normalised)",
    )
    args = p.parse_args(argv)
    old, new = _load(args.old), _load(args.new)
    # A file holds a full run (databases), a backfill, an index build, or several of them.
    if "backfill" in old and "backfill" in new:
        print("\n".join(compare_backfill(old, new)))
    if "index" in old and "index" in new:
        print("\n".join(compare_index(old, new)))
    worst = -math.inf
    olds = {d["database"]: d for d in old.get("databases", ())}
    for db in new.get("databases", ()):
        if db["database"] in olds:
            lines, w = compare_runs(olds[db["database"]], db)
            worst = max(worst, w)
            print("\n".join(lines))
    if args.fail_above is not None and worst > args.fail_above:
        print(f"a stage's CPU per entry grew by {worst:.0f} % (limit {args.fail_above:.0f} %)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
