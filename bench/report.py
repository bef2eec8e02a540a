"""The benchmark table of docs/benchmarks.md, made from a stored `bench.run` result.

    .venv/bin/python -m bench.report                      # rewrite the table from the reference
    .venv/bin/python -m bench.report --check              # exit 1 if the docs are out of date
    .venv/bin/python -m bench.report --json bench/results/latest.json --stdout

The reference (bench/results/reference.json) is the run the docs quote; it is committed, and
replaced by hand (`cp bench/results/latest.json bench/results/reference.json`) after a full
`bench.run --db all --scale-out` that should be the new reference. The table sits between two
marker comments, so that nothing else on the page is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.budget import budget_of_run, raw_values_of

REPO: Final = Path(__file__).resolve().parent.parent
REFERENCE: Final = REPO / "bench" / "results" / "reference.json"
DOC: Final = REPO / "docs" / "benchmarks.md"
BEGIN: Final = "<!-- bench.report: begin (generated from bench/results/reference.json) -->"
END: Final = "<!-- bench.report: end -->"


def _shape(run: Mapping[str, Any]) -> str:
    return f"{run['lookups']}L×{run['writers']}W"


def _row(db: Mapping[str, Any]) -> str:
    name = {"postgresql": "PostgreSQL", "mariadb": "MariaDB", "sqlite": "SQLite"}[db["database"]]
    raw = raw_values_of(db)
    naive = db["naive"]["baseline"]
    e2e = db["end_to_end"]["rate"]
    main = db["runs"][0]
    lat = main.get("latency") or {}
    p99 = lat.get("p99_ms", math.nan)
    b = budget_of_run(main, db["database"])
    server = f"{b['db']:.0f}" if b["db"] else "– (in the writer)"
    ratio = f"{b['ours'] / b['db']:.2f}" if b["db"] else "–"
    load = main.get("loadavg") or [math.nan]
    return (
        f"| {name} | {raw:,.0f} | {naive:,.0f} | {e2e:,.0f} ({db['end_to_end']['shape']}) "
        f"| {e2e / raw:.2f} | {e2e / naive:.1f} | {p99:.0f} ms "
        f"| {b['gateway']:.0f} / {b['lookup']:.0f} / {b['writer']:.0f} = **{b['ours']:.0f}** "
        f"| {b['rabbitmq']:.0f} | {server} | {ratio} | {load[0]:.1f} |"
    )


def table(result: Mapping[str, Any]) -> str:
    """The generated block, markers included."""
    dbs = result["databases"]
    shape = _shape(dbs[0]["runs"][0])
    argv = " ".join(result.get("argv", []))
    start, end = result.get("loadavg_at_start", [0]), result.get("loadavg_at_end", [0])
    lines = [
        BEGIN,
        f"Run of {result['started']} on {result['cpus']} cores "
        f"(`bench.run {argv}`; 1-minute load {start[0]:.1f} at the start, {end[0]:.1f} at the "
        f"end). CPU µs per entry of the {shape} throughput phase, each stage's processes "
        "together; the load column is the machine's when that phase began.",
        "",
        "| db | raw VALUES rows/s | naive pipeline | best pipeline | × raw | × naive "
        "| p99 at 1,000/s | CPU µs/entry gateway / lookups / writer = ours | RabbitMQ "
        "| db server | ours / db | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(db) for db in dbs),
        *_extras(result),
        END,
    ]
    return "\n".join(lines)


def _extras(result: Mapping[str, Any]) -> list[str]:
    """The backfill and the contact index's build, when the result holds them (`bench.run
    --backfill N --index N`, merged in with `--also`)."""
    out: list[str] = []
    if "backfill" in result:
        b = result["backfill"]
        peak = max(b["peak_rss_mb"].values(), default=math.nan)
        rate = b["throughput"]["rate"]
        raw = b.get("raw_values")  # runs before 2026-12-03 did not measure it
        relative = f" ({rate / raw:.3f} × the raw VALUES insert's {raw:,.0f} rows/s)" if raw else ""
        out.append(
            f"Backfill of {b['throughput']['entries']:,} entries into {result['database']} "
            f"({_shape(b)}): {rate:,.0f} entries/s{relative}, the largest process "
            f"{peak:.0f} MB at its peak."
        )
    if "index" in result:
        i = result["index"]
        out.append(
            f"Contact index of {i['contacts']:,} contacts built in {i['build_s']:.1f} s "
            f"({i['build_cpu_s']:.1f} s CPU, load {i.get('load_average', math.nan):.1f}), "
            f"{i['rss_mb']:.0f} MB resident."
        )
    return ["", *out] if out else []


def render(doc: str, result: Mapping[str, Any]) -> str:
    """`doc` with the block between the markers replaced by a fresh one."""
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC}: the markers {BEGIN!r} … {END!r} are missing")
    head, rest = doc.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return head + table(result) + tail


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=REFERENCE)
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        metavar="JSON",
        help="a backfill/index result whose figures join the table's (e.g. latest-backfill.json)",
    )
    p.add_argument("--check", action="store_true", help="exit 1 if the doc is not up to date")
    p.add_argument("--stdout", action="store_true", help="print the table, change nothing")
    args = p.parse_args(argv)
    result = json.loads(args.json.read_text(encoding="utf-8"))
    for extra in args.also:
        more = json.loads(extra.read_text(encoding="utf-8"))
        result.update({k: more[k] for k in ("backfill", "database", "index") if k in more})
    if args.stdout:
        print(table(result))
        return 0
    doc = args.doc.read_text(encoding="utf-8")
    fresh = render(doc, result)
    if args.check:
        if fresh != doc:
            print(f"{args.doc} is not generated from {args.json}: run python -m bench.report")
            return 1
        return 0
    args.doc.write_text(fresh, encoding="utf-8")
    print(f"{args.doc}: table regenerated from {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
