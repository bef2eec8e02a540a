"""How rows reach the database: the writer's sink with each `writer.strategy`, side by side on
one database, alternating rounds — the writer's CPU per entry (pyodbc and the driver included),
the CPU of *its own* server session per entry (the PostgreSQL backend, the MariaDB connection's
thread: other users of a shared server do not count), and entries/s.

    .venv/bin/python -m bench.transport --db postgresql [--entries 20000] [--rounds 3] \
        [--strategies values,json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from typing import Final

import pyodbc

from bench.common import cpu_seconds, database, drop_tables, journal_entries
from bench.raw_insert import create_journal
from cti_journal.shared.config import WriterSettings
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.sink import OdbcJournalSink

BATCH: Final = 500
_TICK: Final = os.sysconf("SC_CLK_TCK")


def _thread_seconds(pid: int, tid: int) -> float:
    with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _server_clock(db_name: str, conn: pyodbc.Connection) -> float:
    """CPU seconds so far of this connection's server session (0 for SQLite: in-process)."""
    cursor = conn.cursor()
    if db_name == "postgresql":
        pid = int(cursor.execute("SELECT pg_backend_pid()").fetchone()[0])
        conn.rollback()
        return cpu_seconds(pid)
    if db_name == "mariadb":
        tid = int(
            cursor.execute(
                "SELECT TID FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
            ).fetchone()[0]
        )
        conn.rollback()
        return _thread_seconds(_mariadbd_pid(tid), tid)
    return 0.0


def _mariadbd_pid(tid: int) -> int:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and os.path.exists(f"/proc/{entry.name}/task/{tid}"):
            return int(entry.name)
    raise RuntimeError(f"no process has thread {tid}")


def one_round(db_name: str, strategy: str, count: int) -> tuple[float, float, float]:
    """(writer µs/entry, server session µs/entry, entries/s) for one strategy."""
    tag = f"tr{os.getpid()}{strategy[:2]}"
    db = database(db_name, tag)
    entries = journal_entries(count)
    table, ledger = f"{tag}_journal", f"{tag}_ledger"
    create_journal(db, table)
    settings = WriterSettings(
        dsn=db.dsn,
        table=table,
        ledger_table=ledger,
        batch_size=BATCH,
        strategy=strategy,  # type: ignore[arg-type]
    )
    sink = OdbcJournalSink(settings, make_metrics())
    sink.open()
    try:
        conn = sink._connection()
        server0 = _server_clock(db_name, conn)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for at in range(0, count, BATCH):
            if any(o is not None for o in sink.write(entries[at : at + BATCH])):
                raise RuntimeError("the sink refused rows")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        server = _server_clock(db_name, conn) - server0
    finally:
        sink.close()
        drop_tables(db, table, ledger)
    return 1e6 * cpu / count, 1e6 * server / count, count / wall


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.transport", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("postgresql", "mariadb", "sqlite"), required=True)
    p.add_argument("--entries", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--strategies", default="values,json")
    args = p.parse_args(argv)
    strategies = args.strategies.split(",")
    got: dict[str, list[tuple[float, float, float]]] = {s: [] for s in strategies}
    for _ in range(args.rounds):
        for s in strategies:
            got[s].append(one_round(args.db, s, args.entries))
    load = os.getloadavg()
    print(f"{args.db}: load {load[0]:.1f}; {args.entries} entries × {args.rounds} rounds, "
          "medians: writer µs/entry + server session µs/entry = sum; entries/s")  # fmt: skip
    for s, runs in got.items():
        w, sv, rate = (statistics.median(r[k] for r in runs) for k in range(3))
        print(f"  {s:18s} {w:6.1f} + {sv:6.1f} = {w + sv:6.1f}   {rate:8.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
