"""A stage's own CPU per entry without broker or database, timed with process CPU time:

* ``gateway``: lines → `pump`'s hand-over (prepare, one spool put per 64 KiB read) → the
  publisher's side of the spool (read back, acknowledge); the fsyncs' wait is not CPU, their
  system time is;
* ``writer-<db>``: the writer's sink writing 500-entry batches (ledger included) into a fresh
  table: the writer's own CPU, the ODBC driver's included (``server-<db>``: the database
  server's CPU during the same writes; other users of a shared server count too);
* ``lookup``: bundles of 50 entries (the gateway's bundle_max until it became 200; kept, so that
  figures stay comparable) through `LookupWorker._handle`
  (decode, index look-up in 20,000 contacts, privacy rules if any, encode), the consumer's
  forward left out.

Old against new, side by side on a loaded machine: `--tree DIR` runs the same measurement on
another checkout (e.g. `git worktree add /tmp/old main`) in a subprocess, alternating with this
one, and prints both medians and their ratio.

    .venv/bin/python -m bench.stage_cost --stage lookup [--entries 20000] [--rounds 5] \
        [--tree /tmp/old]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
PACKAGES: Final = ("gateway", "lookup", "writer", "shared", "simulator", "cli")
STAGES: Final = (
    "gateway",
    "lookup",
    *(f"{w}-{db}" for w in ("writer", "server") for db in ("postgresql", "mariadb", "sqlite")),
)
CHUNK: Final = 64 * 1024  # gateway/sources.py READ_CHUNK


def generated_lines(count: int) -> bytes:
    from cti_journal.shared.record import LineFormat
    from cti_journal.simulator.calls import generate_calls

    fmt = LineFormat(timezone="Europe/Berlin")
    return b"".join(fmt.format(v) for v in generate_calls(5, count, mean_gap_s=1.0))


def measure(stage: str, count: int) -> float:
    if stage.startswith("server-"):
        return measure_writer(stage.split("-", 1)[1], count, server=True)
    if stage.startswith("writer-"):
        return measure_writer(stage.split("-", 1)[1], count)
    return {"gateway": measure_gateway, "lookup": measure_lookup}[stage](count)


def measure_gateway(count: int) -> float:
    """µs of CPU per entry (this process) through prepare, spool and read-back."""
    from cti_journal.gateway.prepare import Preparer
    from cti_journal.gateway.sources import Stream, _hand_over
    from cti_journal.gateway.spool import SpoolBuffer
    from cti_journal.shared.config import GatewaySettings
    from cti_journal.shared.metrics import make_metrics

    data = generated_lines(count)
    settings = GatewaySettings(timezone="Europe/Berlin", source_id="bench")
    preparer = Preparer(settings, make_metrics())
    with tempfile.TemporaryDirectory(dir=REPO / "var") as folder:
        spool = SpoolBuffer(Path(folder) / "spool", 1 << 30, lambda: None)
        stream = Stream(None, "bench", preparer.splitter())  # type: ignore[arg-type]
        started = time.process_time()
        for at in range(0, len(data), CHUNK):
            if not _hand_over(stream, data[at : at + CHUNK], spool, preparer):
                raise RuntimeError("the spool refused")
            spool.woken()
            while (item := spool.get_nowait()) is not None:
                if item.on_published is not None:
                    item.on_published()
        spent = time.process_time() - started
        spool.close()
    return 1e6 * spent / count


def _bodies(count: int, numbers: list[str]) -> list[bytes]:
    """Entry messages exactly as the gateway makes them, callers drawn from `numbers`."""
    from cti_journal.shared.record import LineFormat
    from cti_journal.simulator.calls import generate_calls

    fmt = LineFormat(timezone="Europe/Berlin")
    calls = generate_calls(5, count, mean_gap_s=1.0, numbers=numbers)
    return bodies_of([fmt.format(v) for v in calls])


def bodies_of(lines: list[bytes]) -> list[bytes]:
    """The gateway's message for each line (`Preparer.prepare`)."""
    from cti_journal.gateway.lines import Line
    from cti_journal.gateway.prepare import Preparer
    from cti_journal.shared.config import GatewaySettings
    from cti_journal.shared.metrics import make_metrics

    prep = Preparer(GatewaySettings(timezone="Europe/Berlin", source_id="b"), make_metrics())
    return [prep.prepare(Line(raw), "bench", 0.0).body for raw in lines]


def measure_lookup(count: int) -> float:
    """µs of CPU per entry through the look-up worker's handler (bundles of 50)."""
    from cti_journal.lookup.index import ContactIndex
    from cti_journal.lookup.worker import LookupWorker
    from cti_journal.shared.config import BrokerSettings
    from cti_journal.shared.consumer import Delivery
    from cti_journal.shared.message import encode_bundle
    from cti_journal.shared.metrics import make_metrics
    from cti_journal.shared.normalize import NumberNormalizer
    from tests.support.lookup_dataset import SETTINGS, iter_rows

    rows = list(iter_rows(20_000))
    index = ContactIndex.build(rows, NumberNormalizer.from_settings(SETTINGS))
    numbers = [r.phones[0] for r in rows[:5000]]
    bodies = _bodies(count, numbers)
    bundles = [encode_bundle(bodies[i : i + 50]) for i in range(0, len(bodies), 50)]
    deliveries = [Delivery(b, {}, False, i, 0) for i, b in enumerate(bundles)]
    worker = LookupWorker(BrokerSettings(), SETTINGS, lambda: index, make_metrics())
    out: list[bytes] = []

    class Sink:
        def forward(self, _delivery: object, _key: str, body: bytes) -> None:
            out.append(body)

        def complete(self, _delivery: object) -> None:
            pass

        def entries(self, delivery: Delivery) -> list[Any]:  # the Consumer's, for older code
            from cti_journal.shared.message import decode_bundle

            return decode_bundle(delivery.body)

        def fail(self, _delivery: object, error: BaseException) -> None:
            raise error

    worker.consumer = Sink()  # type: ignore[assignment]
    started = time.process_time()
    for delivery in deliveries:
        worker._handle(delivery)
    spent = time.process_time() - started
    if len(out) != len(bundles):
        raise RuntimeError(f"{len(out)} bundles out of {len(bundles)}")
    return 1e6 * spent / count


def measure_writer(db_name: str, count: int, *, server: bool = False) -> float:
    """µs of CPU per entry of the writer's sink (this process, the ODBC driver included) writing
    500-entry batches, ledger included, into a fresh table of `db_name`; with `server`, of the
    database server's processes during the same writes instead."""
    from bench.common import cpu_by_command, cpu_delta, database, drop_tables, journal_entries
    from bench.raw_insert import create_journal
    from cti_journal.shared.config import WriterSettings
    from cti_journal.shared.metrics import make_metrics
    from cti_journal.writer.sink import OdbcJournalSink

    tag = f"cost{os.getpid()}"
    db = database(db_name, tag)
    entries = journal_entries(count)
    table, ledger = f"{tag}_journal", f"{tag}_ledger"
    create_journal(db, table)
    settings = WriterSettings(dsn=db.dsn, table=table, ledger_table=ledger, batch_size=500)
    sink = OdbcJournalSink(settings, make_metrics())
    sink.open()
    try:
        before = cpu_by_command()
        started = time.process_time()
        for at in range(0, count, 500):
            if any(o is not None for o in sink.write(entries[at : at + 500])):
                raise RuntimeError("the sink refused rows")
        spent = time.process_time() - started
        if server:
            spent_by = cpu_delta(before, cpu_by_command())
            spent = sum(spent_by.get(c, 0.0) for c in db.server_comm)
    finally:
        sink.close()
        drop_tables(db, table, ledger)
    return 1e6 * spent / count


def _in_tree(tree: Path, stage: str, count: int) -> float:
    """`measure` on another checkout: its packages laid out as cti_journal (as check-code.sh
    does for mypy), first on sys.path, ahead of this virtualenv's editable install."""
    with tempfile.TemporaryDirectory() as top:
        pkg = Path(top) / "cti_journal"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        for name in PACKAGES:
            if (tree / name).is_dir():
                (pkg / name).symlink_to(tree / name)
        code = (
            f"import sys; sys.path[:0] = [{top!r}, {str(REPO)!r}]; "
            "import os, cti_journal.gateway.prepare as p; "
            f"assert os.path.realpath(p.__file__).startswith({str(tree)!r}), p.__file__; "
            f"from bench.stage_cost import measure; print(measure({stage!r}, {count}))"
        )
        env = {**os.environ, "PYTHONPATH": ""}
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
        )
        return float(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.stage_cost", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--stage",
        choices=STAGES,
        default="gateway",
    )
    p.add_argument("--entries", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tree", type=Path, default=None, help="another checkout, measured alike")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    (REPO / "var").mkdir(exist_ok=True)
    here: list[float] = []
    there: list[float] = []
    for _ in range(args.rounds):
        if args.tree is not None:
            there.append(_in_tree(args.tree.resolve(), args.stage, args.entries))
        here.append(_in_tree(REPO, args.stage, args.entries))
    load = os.getloadavg()
    print(f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {args.entries} entries × "
          f"{args.rounds} rounds, {args.stage}: µs CPU per entry (median, all rounds)")  # fmt: skip
    print(f"  this tree {REPO}: {statistics.median(here):.1f}  {[round(v, 1) for v in here]}")
    if there:
        old = statistics.median(there)
        print(f"  other tree {args.tree}: {old:.1f}  {[round(v, 1) for v in there]}")
        print(f"  this / other: {statistics.median(here) / old:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"this": here, "other": there, "load": load}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
