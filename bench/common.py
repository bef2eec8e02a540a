"""What the benchmark's parts share: the databases, /proc readings, Prometheus scraping, entries.

Nothing here is timed; it only prepares and observes.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyodbc
from prometheus_client.parser import text_string_to_metric_families

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.writer.dialect import Dialect, quote_identifier

AMQP_URL: Final = "amqp://guest:guest@127.0.0.1:5672/%2F"
TIMEZONE: Final = "Europe/Berlin"
REPO: Final = Path(__file__).resolve().parent.parent
WORK: Final = REPO / "var" / "bench"
DATABASES: Final = ("postgresql", "mariadb", "sqlite")


@dataclass(frozen=True)
class Database:
    name: str
    dsn: str
    dialect: Dialect
    server_comm: tuple[str, ...]  # process names of the server, for its CPU time

    def connect(self) -> pyodbc.Connection:
        return pyodbc.connect(self.dsn, autocommit=False, timeout=10)

    def quote(self, name: str) -> str:
        return quote_identifier(name, self.dialect)


def database(name: str, tag: str) -> Database:
    if name == "postgresql":
        dsn = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;Uid=root;"
        return Database(name, dsn, Dialect.POSTGRESQL, ("postgres",))
    if name == "mariadb":
        dsn = "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;User=root;"
        return Database(name, dsn, Dialect.MARIADB, ("mariadbd", "mysqld"))
    if name == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        return Database(name, f"Driver=SQLite3;Database={WORK / f'{tag}.db'};", Dialect.SQLITE, ())
    raise ValueError(f"unknown database {name!r}")


def drop_tables(db: Database, *tables: str) -> None:
    conn = db.connect()
    try:
        cursor = conn.cursor()
        for table in tables:
            with contextlib.suppress(pyodbc.Error):
                cursor.execute(f"DROP TABLE {db.quote(table)}")
                conn.commit()
            conn.rollback()
    finally:
        conn.close()


def sqlite_file(db: Database) -> Path | None:
    if db.dialect is not Dialect.SQLITE:
        return None
    return Path(db.dsn.split("Database=", 1)[1].rstrip(";"))


def discard(db: Database, *tables: str) -> None:
    """A benchmark's tables dropped, and a SQLite database's file (one per tag) removed."""
    drop_tables(db, *tables)
    path = sqlite_file(db)
    if path is not None:
        path.unlink(missing_ok=True)


# -- entries ----------------------------------------------------------------------------------


def journal_entries(count: int, seed: int = 11) -> list[JournalEntry]:
    """Entries exactly as the gateway makes them from the simulator's lines."""
    fmt = LineFormat(timezone=TIMEZONE)
    ident = EventIdentifier("bench")
    now = time.time()
    out: list[JournalEntry] = []
    for values in generate_calls(seed, count, mean_gap_s=1.0):
        parsed = fmt.parse(fmt.format(values))
        event_id = ident.identify(parsed.values, parsed.explicit_id)
        out.append(
            JournalEntry(event_id=event_id, source="bench", received_at=now, **parsed.values)
        )
    return out


# -- /proc --------------------------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/<pid>/status in KiB; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


_TICK: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_by_command() -> dict[str, float]:
    """CPU seconds of every process on the machine, keyed `pid/command` (`cpu_delta` sums the
    differences by command: a sum taken before differencing would go down, and be dropped, when
    a process of that name ends during the run — another user's broker node or database
    session on a shared machine)."""
    totals: dict[str, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as fh:
                text = fh.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        totals[f"{entry.name}/{comm}"] = (int(fields[11]) + int(fields[12])) / _TICK
    return totals


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """What each key spent between two readings; `pid/command` keys summed by command (a
    process that started in between counts from zero, one that ended is left out)."""
    out: dict[str, float] = {}
    for key, value in after.items():
        spent = value - before.get(key, 0.0)
        pid, slash, comm = key.partition("/")
        name = comm if slash and pid.isdigit() else key
        if spent > 0:
            out[name] = out.get(name, 0.0) + spent
    return out


# -- Prometheus ---------------------------------------------------------------------------------


def scrape(port: int, timeout_s: float = 2.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from a process's /metrics; empty when it does not answer (yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as r:
            text = r.read().decode()
    except OSError:
        return {}
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def sample_sum(samples: Mapping[str, Sequence[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _labels, value in samples.get(name, ()))


def histogram_buckets(
    samples: Mapping[str, Sequence[tuple[dict[str, str], float]]], name: str
) -> dict[float, float]:
    """Cumulative counts by upper bound (`le`) of a histogram without labels."""
    out: dict[float, float] = {}
    for labels, value in samples.get(f"{name}_bucket", ()):
        out[float(labels["le"])] = out.get(float(labels["le"]), 0.0) + value
    return out


def quantile(buckets: Mapping[float, float], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return bounds[-1]


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
