"""The real pipeline processes (gateway, lookup ×L, writer ×W) fed by the simulator in this process.

Every process is `python -m cti_journal.cli.main <command> -c <config>`
(tests/support/harness.Pipeline), with its own Prometheus port. Throughput is counted by the
writers' `cti_journal_rows_written` counters, polled every 200 ms: from the first poll that sees a
row to the poll that sees the last one. Latency comes from the writers'
`cti_journal_end_to_end_seconds` histogram (gateway read the line → the row's transaction
committed), as the difference of two scrapes around the phase.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    AMQP_URL,
    TIMEZONE,
    WORK,
    Database,
    cpu_by_command,
    cpu_delta,
    cpu_seconds,
    histogram_buckets,
    proc_status_kb,
    quantile,
    sample_sum,
    scrape,
    wait_until,
)
from bench.raw_insert import create_journal
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.server import Simulator
from tests.support.harness import Pipeline, free_port


def _py_spy() -> str:
    """py-spy from the project's virtualenv (a dev dependency), else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: pip install -e '.[dev]'")
    return found


E2E = "cti_journal_end_to_end_seconds"
POLL_S = 0.2  # each poll scrapes every writer's /metrics, which costs the writer CPU
LATENCY_POLL_S = 1.0


@dataclass
class Throughput:
    entries: int
    seconds: float  # first row → last row
    rate: float  # entries/s over that span
    wall_seconds: float  # simulator start → last row
    cpu_s: dict[str, float]  # CPU seconds per process (ours by role, others by command)
    profile: dict[str, str] = field(default_factory=dict)  # role -> collapsed-stack file
    stalled: bool = False  # not every row arrived before the timeout


@dataclass
class Latency:
    offered_rate: float
    entries: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    within_150ms: float  # share of entries at or under 150 ms (a histogram bucket bound)
    # The simulator's pacing: share of lines sent ≥ 5 ms after they were due, and the most
    # behind (ms). Not 0: the benchmark's process was starved and offered bursts.
    late_share: float = 0.0
    most_late_ms: float = 0.0


@dataclass
class RssSample:
    t: float
    rss_mb: dict[str, float]


@dataclass
class RunResult:
    lookups: int
    writers: int
    throughput: Throughput | None = None
    latency: Latency | None = None
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    rss_over_time: list[RssSample] = field(default_factory=list)
    dead_letters: int = 0
    rows: int = 0
    loadavg: list[float] = field(default_factory=list)  # 1/5/15-min load when the run began
    cpu_us_per_entry: dict[str, float] = field(default_factory=dict)  # bench/budget.py
    profile_summary: dict[str, Any] = field(default_factory=dict)  # role -> profiles.summarize


class BenchPipeline:
    """One pipeline for one database and one L×W shape; use as a context manager."""

    def __init__(
        self, db: Database, contacts_table: str, *, lookups: int, writers: int,
        writer_overrides: Mapping[str, Any] | None = None, code: Path | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.code = code  # the packages' import path for another checkout (bench/ab.py)
        self.tag = f"bench{uuid.uuid4().hex[:8]}"
        self.table = f"{self.tag}_journal"
        self.ledger = f"{self.tag}_ledger"
        self.cti_port = free_port()
        self.ports: dict[str, int] = {}
        self.lookups, self.writers = lookups, writers
        WORK.mkdir(parents=True, exist_ok=True)
        writer: dict[str, Any] = {
            "dsn": db.dsn, "table": self.table, "ledger_table": self.ledger,
            **(writer_overrides or {}),
        }  # fmt: skip
        settings: dict[str, Any] = {
            "metrics_address": "127.0.0.1",
            "gateway": {"source": "tcp", "host": "127.0.0.1", "port": self.cti_port,
                        "timezone": TIMEZONE, "reconnect_max_s": 0.5, "source_id": "bench"},
            "lookup": {"area_code": "89", "sources": [{
                "name": "crm", "dsn": db.dsn, "table": contacts_table, "id_column": "id",
                "name_column": "name", "company_column": "company",
                "phone_columns": ["phone", "mobile"],
            }]},
            "writer": writer,
        }  # fmt: skip
        self.workdir = WORK / self.tag
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pipe = Pipeline(self.workdir, AMQP_URL, settings, prefix=f"cti-journal-{self.tag}")

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> BenchPipeline:
        create_journal(self.db, self.table)
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self.pipe.stop()
        with contextlib.suppress(Exception):
            self.pipe.delete_queues()
        from bench.common import drop_tables

        drop_tables(self.db, self.table, self.ledger)
        if exc_type is None:  # the processes' logs and spools stay only when a run failed
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _spawn(self, role: str, command: str, section: str) -> None:
        port = free_port()
        self.ports[role] = port
        env = {f"CTI_JOURNAL_{section.upper()}__METRICS_PORT": str(port)}
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        self.pipe.start(role, command, env=env)

    def _start(self) -> None:
        for i in range(self.writers):
            self._spawn(f"writer-{i + 1}", "writer", "writer")
        for i in range(self.lookups):
            self._spawn(f"lookup-{i + 1}", "lookup", "lookup")
        self._spawn("gateway", "gateway", "gateway")

        def connected() -> bool:
            self.pipe.assert_running()
            return all(
                sample_sum(scrape(port), "cti_journal_broker_connected") == 1
                for port in self.ports.values()
            )

        wait_until(connected, 120, "every process connected to the broker (index loaded)")

    @property
    def pids(self) -> dict[str, int]:
        return {role: proc.pid for role, proc in self.pipe.procs.items()}

    def rows_written(self) -> int:
        return int(
            sum(
                sample_sum(scrape(self.ports[r]), "cti_journal_rows_written_total")
                for r in self.ports
                if r.startswith("writer")
            )
        )

    def e2e_buckets(self) -> dict[float, float]:
        total: dict[float, float] = {}
        for role, port in self.ports.items():
            if role.startswith("writer"):
                for bound, count in histogram_buckets(scrape(port), E2E).items():
                    total[bound] = total.get(bound, 0.0) + count
        return total

    def peak_rss_mb(self) -> dict[str, float]:
        return {role: proc_status_kb(pid, "VmHWM") / 1024 for role, pid in self.pids.items()}

    def rss_mb(self) -> dict[str, float]:
        return {role: proc_status_kb(pid, "VmRSS") / 1024 for role, pid in self.pids.items()}

    def dead_letters(self) -> int:
        return self.pipe.queue_depth("dead")

    # -- phases -------------------------------------------------------------------------------
    def feed(self, entries: Iterable[Mapping[str, Any]], rate: float = 0.0) -> Simulator:
        sim = Simulator(entries, LineFormat(timezone=TIMEZONE), rate=rate)
        thread = threading.Thread(
            target=sim.serve, args=("127.0.0.1", self.cti_port), name="simulator", daemon=True
        )
        thread.start()
        sim.wait_ready(10)
        return sim

    def throughput(
        self, entries: Iterable[Mapping[str, Any]], count: int, *, timeout_s: float,
        profile: bool = False, rss_every_s: float = 0.0, rss_log: list[RssSample] | None = None,
    ) -> Throughput:  # fmt: skip
        base = self.rows_written()
        target = base + count
        cpu_before = self._cpu()
        spies = self._start_profilers() if profile else {}
        started = time.monotonic()
        sim = self.feed(entries)
        first_t, first_n, last_t, rss_next = 0.0, 0, 0.0, started
        while time.monotonic() - started < timeout_s:
            now = time.monotonic()
            n = self.rows_written()
            if n > base and not first_t:
                first_t, first_n = now, n
            if n >= target:
                last_t = now
                break
            if rss_log is not None and rss_every_s and now >= rss_next:
                rss_log.append(RssSample(round(now - started, 1), self.rss_mb()))
                rss_next = now + rss_every_s
            self.pipe.assert_running()
            time.sleep(POLL_S)
        sim.stop()
        files = self._stop_profilers(spies)
        cpu = cpu_delta(cpu_before, self._cpu())
        if not last_t:  # stalled: report what did arrive
            done = self.rows_written() - base
            span = time.monotonic() - (first_t or started)
            return Throughput(done, span, done / span, span, cpu, files, stalled=True)
        span = last_t - first_t
        rate = (target - first_n) / span if span > 0 else float("nan")
        return Throughput(count, span, rate, last_t - started, cpu, files)

    def latency(
        self, entries: Sequence[Mapping[str, Any]], rate: float, timeout_s: float
    ) -> Latency:
        base = self.rows_written()
        before = self.e2e_buckets()
        sim = self.feed(entries, rate=rate)
        # Polled seldom: each poll scrapes and parses the writers' metrics in this process,
        # whose simulator thread then sends late and in a burst (bench.latency_trace).
        wait_until(lambda: self.rows_written() >= base + len(entries), timeout_s,
                   "the latency phase's rows", LATENCY_POLL_S)  # fmt: skip
        sim.stop()
        late, most_late_s = sim.late
        after = self.e2e_buckets()
        diff = {b: after[b] - before.get(b, 0.0) for b in after}
        total = diff.get(math.inf, 0.0)
        within = diff.get(0.15, 0.0) / total if total else float("nan")
        return Latency(
            rate, len(entries), quantile(diff, 0.5) * 1000, quantile(diff, 0.95) * 1000,
            quantile(diff, 0.99) * 1000, within, late / max(1, len(entries)), most_late_s * 1000,
        )  # fmt: skip

    # -- CPU and profiles ---------------------------------------------------------------------
    def _cpu(self) -> dict[str, float]:
        ours = {pid: role for role, pid in self.pids.items()}
        totals = cpu_by_command()
        for role, pid in self.pids.items():
            totals[role] = cpu_seconds(pid)
        totals["python (ours)"] = sum(cpu_seconds(p) for p in ours)
        totals["all"] = _machine_busy_s()
        return totals

    def _start_profilers(self) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
        spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for role, pid in self.pids.items():
            out = self.workdir / f"profile-{self.db.name}-{role}.txt"
            cmd = [_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                   "--nonblocking", "--output", str(out)]  # fmt: skip
            spies[role] = (
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                out,
            )
        time.sleep(0.5)
        return spies

    def _stop_profilers(
        self, spies: Mapping[str, tuple[subprocess.Popen[bytes], Path]]
    ) -> dict[str, str]:
        files: dict[str, str] = {}
        for role, (proc, out) in spies.items():
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if out.exists():
                files[role] = str(out)
        return files


def _machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
