"""Where an entry's milliseconds go, stage by stage, at a fixed offered rate.

    .venv/bin/python -m bench.latency_trace --db postgresql [--rate 1000] [--seconds 10]
        [--tree /work/wt/base] [--writer batch_ms=50]

The end-to-end histogram (`cti_journal_end_to_end_seconds`) says how long, not where, and its
buckets (10, 25, 50 ms) hide the shape. Here the pipeline's processes run with
bench/latency_probe/sitecustomize.py, which stamps every entry (by event id) at each hand-over:
the simulator's send, the gateway's spool write and fsync, its publish and confirm, the look-up's
delivery, publish and confirm, the writer's delivery, group-commit hand-over and committed write.
The report gives each step's p50/p90/p99/max over all entries, and the batch sizes. The probe
costs some CPU itself (it decodes every body once more): use it for the shape of the latency,
not for the CPU budget.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ab import _layout
from bench.common import (
    DATABASES,
    REPO,
    TIMEZONE,
    database,
    drop_tables,
    quantile,
    wait_until,
)
from bench.contacts import make_contacts
from bench.pipeline import BenchPipeline
from cti_journal.shared.metrics import _LATENCY_BUCKETS as LATENCY_BUCKETS
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.simulator.server import Simulator

PROBE = Path(__file__).resolve().parent / "latency_probe"
# (label, from stage, to stage): consecutive steps of one entry's way, then spans over several.
STEPS = (
    ("send → read+parsed", "sim_send", "put_start"),
    ("spool write+fsync", "put_start", "put_end"),
    ("fsync'd → gw publish", "put_end", "gateway_publish"),
    ("gw publish → look-up delivery", "gateway_publish", "lookup_deliver"),
    ("look-up handling", "lookup_deliver", "lookup_publish"),
    ("lu publish → writer delivery", "lookup_publish", "writer_deliver"),
    ("delivery → batch handed over", "writer_deliver", "w_submit"),
    ("handed over → write starts", "w_submit", "w_write_start"),
    ("write (insert + commit)", "w_write_start", "w_write_end"),
    ("gw publish → confirm", "gateway_publish", "gateway_confirm"),
    ("lu publish → confirm", "lookup_publish", "lookup_confirm"),
    ("END TO END (read → committed)", "put_start", "w_write_end"),
    ("END TO END (sent → committed)", "sim_send", "w_write_end"),
)


class _StampedSimulator(Simulator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[float] = []

    def _mark_sent(self) -> None:
        self.sent_at.append(time.time())
        super()._mark_sent()


Trace = tuple[dict[str, dict[str, float]], dict[str, list[int]], list[str], dict[str, list[float]]]
# the writer's database thread, in order: (label, from stamp, to stamp) within one write
WRITE_PARTS = (
    ("gw recv → parsed (prepare)", "gw_recv", "put_start"),
    ("convert + ledger claim", "w_write_start", "w_insert_start"),
    ("INSERT", "w_insert_start", "w_insert_end"),
    ("COMMIT (+ metrics)", "w_insert_end", "w_write_end"),
    ("committed → IOLoop settles", "w_write_end", "w_settle"),
)


def _write_parts(records: list[tuple[str, float]]) -> dict[str, list[float]]:
    parts: dict[str, list[float]] = defaultdict(list)
    last: dict[str, float] = {}
    for stage, t in records:
        if stage in ("w_write_start", "gw_recv"):
            last = {}
        last[stage] = t
        for label, a, b in WRITE_PARTS:
            if b == stage and a in last:
                parts[label].append(1000 * (t - last[a]))
    return parts


def _read(folder: Path, began: float) -> Trace:
    """event id -> stage -> first time; stage -> sizes of its records; event ids in read order;
    the parts of the writers' writes."""
    times: dict[str, dict[str, float]] = defaultdict(dict)
    sizes: dict[str, list[int]] = defaultdict(list)
    reads: list[tuple[float, list[str]]] = []
    parts: dict[str, list[float]] = defaultdict(list)
    for path in folder.glob("*.txt"):
        seq: list[tuple[str, float]] = []
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) < 2:
                continue
            stage, t, ids = words[0], float(words[1]), words[2:]
            if t < began:
                continue
            seq.append((stage, t))
            sizes[stage].append(len(ids))
            if stage == "put_start":
                reads.append((t, ids))
            for i in ids:
                times[i].setdefault(stage, t)
        for label, values in _write_parts(seq).items():
            parts[label] += values
    order = [i for _t, ids in sorted(reads, key=lambda r: r[0]) for i in ids]
    return times, sizes, order, parts


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(
    times: Mapping[str, Mapping[str, float]],
    sizes: Mapping[str, list[int]],
    parts: Mapping[str, list[float]],
) -> str:
    lines = [f"{'step':<32}{'n':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  ms"]
    rows = [(label, [1000 * (s[b] - s[a]) for s in times.values() if a in s and b in s])
            for label, a, b in STEPS]  # fmt: skip
    rows += [(f"  per batch: {label}", parts.get(label, [])) for label, _a, _b in WRITE_PARTS]
    for label, d in rows:
        if d:
            lines.append(f"{label:<32}{len(d):>7}{_pct(d, 0.5):>8.1f}{_pct(d, 0.9):>8.1f}"
                         f"{_pct(d, 0.99):>8.1f}{max(d):>8.1f}")  # fmt: skip
    e2e = [s["w_write_end"] - s["put_start"] for s in times.values()
           if "put_start" in s and "w_write_end" in s]  # fmt: skip
    if e2e:
        lines.append(f"{'  as the histogram has it':<32}{len(e2e):>7}"
                     + "".join(f"{1000 * quantile(_bucketed(e2e), q):>8.1f}"
                               for q in (0.5, 0.9, 0.99)))  # fmt: skip
    lines.append("")
    for stage in ("put_start", "gateway_publish", "lookup_deliver", "lookup_publish",
                  "writer_deliver", "w_write_start"):  # fmt: skip
        s = [n for n in sizes.get(stage, []) if n]
        if s:
            lines.append(f"entries per {stage:<16}: mean {statistics.mean(s):5.2f}, "
                         f"max {max(s)}, records {len(s)}")  # fmt: skip
    return "\n".join(lines)


def _bucketed(values: Sequence[float]) -> dict[float, float]:
    """Cumulative counts per bucket bound of `cti_journal_end_to_end_seconds`, as scraped."""
    bounds = [*LATENCY_BUCKETS, math.inf]
    return {b: float(sum(1 for v in values if v <= b)) for b in bounds}


def _gaps(sent_at: Sequence[float], rate: float) -> str:
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(sent_at)]
    if not gaps:
        return ""
    late = [1000 * (t - sent_at[0]) - 1000 * i / rate for i, t in enumerate(sent_at)]
    return (
        f"simulator: gap between lines p50 {_pct(gaps, 0.5):.2f} ms, p99 {_pct(gaps, 0.99):.2f}, "
        f"max {max(gaps):.1f}; behind its schedule p50 {_pct(late, 0.5):.2f} ms, p99 "
        f"{_pct(late, 0.99):.2f}, max {max(late):.1f}"
    )


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.latency_trace", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=DATABASES, default="postgresql")
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--contacts", type=int, default=20_000)
    p.add_argument("--lookups", type=int, default=2)
    p.add_argument("--writers", type=int, default=1)
    p.add_argument("--tree", type=Path, default=REPO, help="the checkout to run (default: this)")
    p.add_argument("--writer", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--switch-interval", type=float, default=0.0,
                   help="an experiment: sys.setswitchinterval in every process (s)")  # fmt: skip
    args = p.parse_args(argv)
    tag = f"lt{os.getpid()}"
    db = database(args.db, tag)
    contacts = f"{tag}_contacts"
    numbers = make_contacts(db, contacts, args.contacts)
    count = int(args.rate * args.seconds)
    try:
        with tempfile.TemporaryDirectory() as top, tempfile.TemporaryDirectory() as stamps:
            code = _layout(args.tree.resolve(), Path(top))
            (code / "sitecustomize.py").symlink_to(PROBE / "sitecustomize.py")
            os.environ["CTI_LATENCY_PROBE"] = stamps
            if args.switch_interval:
                os.environ["CTI_PROBE_SWITCH_S"] = str(args.switch_interval)
            pipeline = BenchPipeline(
                db, contacts, lookups=args.lookups, writers=args.writers,
                writer_overrides=_overrides(args.writer), code=code,
            )  # fmt: skip
            with pipeline as pipe:
                warm = list(generate_calls(5, 200, numbers=numbers))
                _feed(pipe, warm, 0.0, pipe.rows_written() + len(warm))
                base = pipe.rows_written()
                began = time.time()  # the warm-up's stamps are left out
                calls = list(generate_calls(9, count, numbers=numbers))
                load = os.getloadavg()[0]
                sim = _feed(pipe, calls, args.rate, base + count)
                time.sleep(1.5)  # the probes' files are flushed every second
            times, sizes, order, parts = _read(Path(stamps), began)
    finally:
        os.environ.pop("CTI_LATENCY_PROBE", None)
        os.environ.pop("CTI_PROBE_SWITCH_S", None)
        drop_tables(db, contacts)
    for i, event in enumerate(order[: len(sim.sent_at)]):
        times[event]["sim_send"] = sim.sent_at[i]
    print(f"{args.db}, {args.lookups}L×{args.writers}W, {count} entries at {args.rate:.0f}/s, "
          f"tree {args.tree}, writer {args.writer or 'as shipped'}, switch interval "
          f"{args.switch_interval or 'as shipped'}, load {load:.1f}")  # fmt: skip
    print(_gaps(sim.sent_at, args.rate))
    print(report(times, sizes, parts))
    return 0


def _feed(pipe: BenchPipeline, calls: list[Any], rate: float, target: int) -> _StampedSimulator:
    sim = _StampedSimulator(calls, LineFormat(timezone=TIMEZONE), rate=rate)
    thread = threading.Thread(target=sim.serve, args=("127.0.0.1", pipe.cti_port), daemon=True)
    thread.start()
    sim.wait_ready(10)
    wait_until(lambda: pipe.rows_written() >= target, 60 + len(calls) / 200, "the rows", 0.1)
    sim.stop()
    thread.join(5)
    return sim


if __name__ == "__main__":
    raise SystemExit(main())
