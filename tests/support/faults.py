"""Fault-test helpers: an own RabbitMQ node, real pipeline processes, an SQLite journal.

The node (`cti-fault-<pid>@localhost`) has its own AMQP and distribution ports, data, logs, config,
enabled-plugins file and Erlang cookie in a temporary folder, so that stopping, restarting or
killing it never touches the machine's shared node (rabbit@<host> on 5672). It is started once per
session (a start costs ~8 s) and removed, data and all, when the session ends, also on failure.

`BrokerNode`, `FaultRun` and `compare_rows` are used by bench/soak.py too; the fixtures that build
them are in tests/fault/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyodbc

from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.simulator.server import Simulator
from tests.support.harness import Pipeline, free_port, wait_for

_BIN = Path("/usr/lib/rabbitmq/bin")
SQLITE_DRIVER = "SQLite3"
TIMEZONE = "Europe/Berlin"
START = datetime(2026, 11, 25, 8, 0, 0)
SHARED_PORTS = frozenset({5672, 25672, 15672, 15692, 4369})
# The simulator's values as the journal holds them (cli/demo.py compares the same way).
_KEYS = ("in_out", "zeitpunkt", "verb_zustand", "rufnummer", "lokale_rufnummer",
         "rufdauer_ms", "verbdauer_sec", "gebuehren")  # fmt: skip
_COLUMNS = ("Journal_In_Out", "Journal_Zeitpunkt", "Journal_VerbZustand", "Journal_Rufnummer",
            "Journal_LokaleRufnummer", "Journal_Rufdauer_ms", "Journal_VerbDauer_sec",
            "Journal_Gebühren")  # fmt: skip


def _rabbit_bin(name: str) -> str:
    path = _BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found (is RabbitMQ installed?)")
    return found


def _free_port_pair() -> tuple[int, int]:
    while True:
        port, dist = free_port(), free_port()
        if port != dist and not {port, dist} & SHARED_PORTS:
            return port, dist


class BrokerNode:
    """One RabbitMQ node of our own: start, stop (orderly), kill (SIGKILL), start again.

    The Debian wrappers in /usr/sbin switch to the rabbitmq user (and the shared node's cookie)
    when run as root; the scripts in /usr/lib/rabbitmq/bin run as the caller, with `env` below.
    """

    def __init__(self, base: Path, name: str | None = None) -> None:
        self.base = base
        self.name = name or f"cti-fault-{os.getpid()}@localhost"
        if self.name.startswith("rabbit@"):
            raise ValueError("rabbit@... is the shared node's name")
        self.port, self.dist_port = _free_port_pair()
        self.os_pid: int | None = None
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users.guest = true\n"
        )
        (base / "rabbitmq-env.conf").write_text("")
        (base / "advanced.config").write_text("[].\n")
        cookie = base / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(base),  # the CLI and the node read the cookie from $HOME
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_rabbit_bin("rabbitmqctl"), "-n", self.name, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 90) -> None:
        with open(self.base / "log" / "start.out", "ab") as out:
            subprocess.run(
                [_rabbit_bin("rabbitmq-server"), "-detached"],
                env=self.env, cwd=self.base, stdout=out, stderr=subprocess.STDOUT,
                check=True, timeout=30,
            )  # fmt: skip
        # The AMQP listener opens last in the boot; polling it is cheaper than the CLI (~3 s).
        wait_for(self.accepting, timeout, f"{self.name} to accept AMQP on {self.port}", 0.25)
        pid = (self.base / "pid").read_text().strip()
        self.os_pid = int(pid) if pid.isdigit() else None

    def stop(self) -> None:
        """An orderly stop of the whole node (the VM exits); its data stays for a restart."""
        result = self.ctl("stop", timeout=120)
        if result.returncode != 0 and self._alive():
            self.kill()
        wait_for(lambda: not self._alive(), 60, f"{self.name} to exit")

    def kill(self) -> None:
        """SIGKILL the node's VM: no orderly shutdown, as with a power cut of the broker host."""
        if self._alive():
            assert self.os_pid is not None
            os.kill(self.os_pid, signal.SIGKILL)
            wait_for(lambda: not self._alive(), 30, f"{self.name} to die")

    def _alive(self) -> bool:
        if self.os_pid is None:
            return False
        try:
            os.kill(self.os_pid, 0)
        except ProcessLookupError:
            return False
        # A zombie is dead for our purposes; the detached VM is not our child, so check /proc.
        with contextlib.suppress(OSError):
            if (Path("/proc") / str(self.os_pid) / "stat").read_text().split()[2] == "Z":
                return False
        return True

    def remove(self) -> None:
        """Stop (or kill) the node and delete everything it wrote."""
        with contextlib.suppress(Exception):
            if self._alive():
                self.ctl("stop", timeout=60)
        with contextlib.suppress(Exception):
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def own_node(name: str | None = None) -> Iterator[BrokerNode]:
    base = Path(tempfile.mkdtemp(prefix="cti-fault-"))
    node = BrokerNode(base, name)
    try:
        node.start()
        yield node
    finally:
        node.remove()


# -- the simulator as a CTI server ------------------------------------------------------------
@dataclass
class CtiServer:
    """The simulator serving on a thread; `sent` holds every entry that counts as sent."""

    count: int
    rate: float
    seed: int = 11
    duplicate_ratio: float = 0.005
    gate: threading.Event | None = None  # with gate_at: hold entry gate_at until it is set
    gate_at: int = -1
    overrides: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # index -> values
    clients: int = 1  # > 1: every connected client gets every line (a gateway pair)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sim = Simulator(
            self._entries(), LineFormat(timezone=TIMEZONE), rate=self.rate, on_sent=self._record
        )
        self.port = free_port()
        self._thread = threading.Thread(
            target=self.sim.serve,
            args=("127.0.0.1", self.port),
            kwargs={"clients": self.clients},
            name="cti-server",
            daemon=True,
        )

    def _entries(self) -> Iterable[dict[str, Any]]:
        calls = generate_calls(self.seed, self.count, START, duplicate_ratio=self.duplicate_ratio)
        for i, entry in enumerate(calls):
            if i == self.gate_at and self.gate is not None:
                self.gate.wait()
            yield {**entry, **self.overrides[i]} if i in self.overrides else entry

    def _record(self, entry: Mapping[str, Any]) -> None:
        self.sent.append(dict(entry))
        self.sent_at.append(time.monotonic())

    @property
    def done(self) -> bool:
        # Not `sim.done`: that peeks into the entries, which may be waiting at the gate.
        return len(self.sent) >= self.count

    def start(self) -> CtiServer:
        self._thread.start()
        self.sim.wait_ready(10)
        return self

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.sim.stop()
        self._thread.join(timeout=10)


def write_day_log(path: Path, entries: Iterable[Mapping[str, Any]]) -> None:
    fmt = LineFormat(timezone=TIMEZONE)
    with open(path, "ab") as fh:
        for entry in entries:
            fh.write(fmt.format(entry))
            fh.flush()


# -- comparing ---------------------------------------------------------------------------------
def _key(values: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(None if values.get(k) == "" else values.get(k) for k in _KEYS)


class DayLog:
    """The simulator appending to day.log at `rate` entries/s, rotating into journal.log every
    `rotate_every` entries, on a thread; `sent` is what it wrote."""

    def __init__(self, path: Path, count: int, rate: float, rotate_every: int, seed: int) -> None:
        self.count = count
        self.sent: list[dict[str, Any]] = []
        self.sim = Simulator(generate_calls(seed, count, START), LineFormat(timezone=TIMEZONE),
                             rate=rate, on_sent=lambda e: self.sent.append(dict(e)))  # fmt: skip
        self._thread = threading.Thread(
            target=self.sim.write_file, args=(path, rotate_every), daemon=True
        )

    @property
    def done(self) -> bool:
        return len(self.sent) >= self.count

    def start(self) -> DayLog:
        self._thread.start()
        return self

    def close(self) -> None:
        self.sim.stop()
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class Comparison:
    expected: int
    rows: int
    missing: Counter[tuple[Any, ...]]
    extra: Counter[tuple[Any, ...]]  # rows beyond what was sent: duplicates

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra

    def __str__(self) -> str:
        return (
            f"sent {self.expected}, rows {self.rows}, missing {sum(self.missing.values())}, "
            f"duplicates {sum(self.extra.values())}"
        )


def compare_rows(sent: Iterable[Mapping[str, Any]], dsn: str, table: str) -> Comparison:
    """What was sent against what the journal holds, as multisets of the compared values."""
    expected = Counter(_key(e) for e in sent)
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        columns = ", ".join(f'"{c}"' for c in _COLUMNS)
        rows = conn.cursor().execute(f"SELECT {columns} FROM {table}").fetchall()
    finally:
        conn.close()
    got = Counter(tuple(None if v == "" else v for v in row) for row in rows)
    return Comparison(sum(expected.values()), len(rows), expected - got, got - expected)


def row_count(dsn: str, table: str) -> int:
    try:
        conn = pyodbc.connect(dsn, autocommit=True)
    except pyodbc.Error:
        return 0
    try:
        return int(conn.cursor().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except pyodbc.Error:
        return 0  # the table does not exist yet
    finally:
        conn.close()


# -- the pipeline on our node ------------------------------------------------------------------
class FaultRun:
    """A pipeline (gateway, lookups, writers) on `node`, writing to an SQLite journal in `work`."""

    def __init__(
        self,
        node: BrokerNode,
        work: Path,
        gateway: Mapping[str, Any],
        *,
        broker: Mapping[str, Any] | None = None,
        writer: Mapping[str, Any] | None = None,
    ) -> None:
        self.node = node
        self.work = work
        self.dsn = f"Driver={SQLITE_DRIVER};Database={work / 'j.db'};"
        self.table = "journal"
        settings: dict[str, Any] = {
            "broker": {"urls": [node.url], "reconnect_max_s": 2.0, "heartbeat_s": 10,
                       **(broker or {})},
            "gateway": {"timezone": TIMEZONE, "reconnect_max_s": 1.0, **gateway},
            "lookup": {"area_code": "89"},
            "writer": {"dsn": self.dsn, "table": self.table, "create_table": True,
                       "batch_size": 200, "batch_ms": 100, "db_retry_max_s": 2.0,
                       **(writer or {})},
        }  # fmt: skip
        self.pipeline = Pipeline(work, node.url, settings)
        self.restarts: Counter[str] = Counter()
        self.env: dict[str, dict[str, str]] = {}  # per process name, e.g. a pair's gateway.name

    def start(self, name: str) -> None:
        """Start `gateway`, `lookup-<n>` or `writer-<n>` (again, after a kill); a gateway pair's
        members are `gateway-a`, `gateway-b` (with `env` giving each its own name)."""
        if name in self.pipeline.procs:
            self.restarts[name] += 1
        self.pipeline.start(name, name.split("-", maxsplit=1)[0], env=self.env.get(name))

    def start_all(self, lookups: int = 1, writers: int = 1) -> None:
        # the writers start together and race to create the journal table and its ledger
        for i in range(1, writers + 1):
            self.start(f"writer-{i}")
        for i in range(1, lookups + 1):
            self.start(f"lookup-{i}")
        self.start("gateway")

    def kill(self, name: str) -> None:
        self.pipeline.kill(name, signal.SIGKILL)

    def rows(self) -> int:
        return row_count(self.dsn, self.table)

    def wait_rows(self, n: int, timeout: float) -> None:
        try:
            wait_for(lambda: self.rows() >= n, timeout, f"{n} rows", 0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; have {self.rows()}; {self.diagnose()}") from None

    def diagnose(self) -> str:
        """Ready messages per queue, for a failure message."""
        try:
            depths = {s: self.pipeline.queue_depth(s) for s in ("lookup", "write", "dead")}
        except Exception as exc:  # the broker is down
            return f"queues unknown: {exc}"
        return f"ready in queues {depths}"

    def settle(self, quiet_s: float = 2.0, timeout: float = 60) -> None:
        """Until the row count has not changed for `quiet_s` and the work queues are empty."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = self.rows()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s and self.queues_empty():
                return
            time.sleep(0.25)
        raise AssertionError(f"rows still changing or queues not empty after {timeout} s")

    def queues_empty(self) -> bool:
        try:
            return self.pipeline.queue_depth("lookup") == 0 and (
                self.pipeline.queue_depth("write") == 0
            )
        except Exception:  # the broker is down: not settled
            return False

    def compare(self, sent: Iterable[Mapping[str, Any]]) -> Comparison:
        return compare_rows(sent, self.dsn, self.table)

    def finish(
        self, sender: Any, count: int | None, rows_timeout: float = 90
    ) -> tuple[Comparison, list[tuple[dict[str, Any], bytes]]]:
        """The end of a fault test: the simulator done, `count` rows in (None when a loss is
        allowed), the pipeline quiet, every process still up; then what the journal holds
        against what was sent, and the dead letters."""
        wait_for(lambda: sender.done, 60, "the simulator to send everything")
        if count is not None:
            self.wait_rows(count, rows_timeout)
        self.settle()
        result = self.compare(sender.sent)
        self.pipeline.assert_running()
        return result, self.dead_letters()

    def dead_letters(self) -> list[tuple[dict[str, Any], bytes]]:
        return self.pipeline.dead_letters()

    def log(self, name: str) -> str:
        return self.pipeline.log(name)

    def close(self) -> None:
        self.pipeline.stop()
        with contextlib.suppress(Exception):
            if self.node.accepting():
                self.pipeline.delete_queues()


def entry_json(entry: Mapping[str, Any]) -> bytes:
    return orjson.dumps(entry)
