"""Run the real pipeline processes for a test: config file, unique queue prefix, clean-up.

Each process is `python -m cti_journal.cli.main <command> -c <config>`, so tests exercise
exactly what an admin runs, and fault tests can SIGKILL any of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pika
import pika.exceptions
import pyodbc

from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.loader import build
from cti_journal.shared.topology import Topology

_HANDED_OUT: set[int] = set()

T = TypeVar("T")


def free_port() -> int:
    """A port nothing listens on now, and never one this test process handed out before: the
    kernel may give the same ephemeral port twice once it is closed, and a test that asks for a
    listen port and a metrics port before starting its processes would then start two on one
    (seen: a look-up's metrics port equal to the gateway's listen port, exit 2)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer: scalars, lists, tables, arrays of tables (what our config needs)."""
    lines: list[str] = []

    def table(prefix: str, body: Mapping[str, Any]) -> None:
        subtables = []
        for key, value in body.items():
            name = f'"{key}"' if not key.replace("_", "").isalnum() or not key.isascii() else key
            if isinstance(value, Mapping):
                subtables.append((f"{prefix}.{name}" if prefix else name, value, False))
            elif isinstance(value, list) and value and isinstance(value[0], Mapping):
                subtables.append((f"{prefix}.{name}" if prefix else name, value, True))
            else:
                lines.append(f"{name} = {_toml_value(value)}")
        for path, value, many in subtables:
            for item in value if many else [value]:
                lines.append(f"\n[[{path}]]" if many else f"\n[{path}]")
                table(path, item)

    table("", data)
    return "\n".join(lines) + "\n"


@dataclass
class Pipeline:
    """Processes of one pipeline under test, sharing one config and one queue prefix."""

    workdir: Path
    amqp_url: str
    settings: dict[str, Any]
    prefix: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        broker = self.settings.setdefault("broker", {})
        broker.setdefault("urls", [self.amqp_url])
        broker["prefix"] = self.prefix
        broker.setdefault("retry_delays_ms", [200, 500, 1000])
        for section in ("gateway", "lookup", "writer"):
            self.settings.setdefault(section, {}).setdefault("metrics_port", 0)
        self.config = self.workdir / f"{self.prefix}.toml"
        self.rundir = self.workdir / self.prefix
        self.rundir.mkdir(exist_ok=True)
        self.config.write_text(to_toml(self.settings), encoding="utf-8")

    @property
    def topology(self) -> Topology:
        # As the processes build it from the config (only its [broker] table is read here).
        return Topology.from_settings(build(BrokerSettings, self.settings["broker"], "broker"))

    def start(
        self, name: str, command: str, *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        full_env = {**os.environ, **(env or {})}
        # The child inherits the descriptor; the parent's copy is closed at once (an open file
        # object left to the garbage collector is a ResourceWarning, an error under pytest).
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cti_journal.cli",
                    command,
                    "-c",
                    str(self.config),
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=self.rundir,  # a gateway's default spool (./var) is this pipeline's own
            )

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=30)

    def assert_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}"
                )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- broker inspection --------------------------------------------------------------------
    @contextlib.contextmanager
    def channel(self) -> Iterator[Any]:
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            yield conn.channel()
        finally:
            if conn.is_open:  # a broker that closed it already said why; keep that error
                conn.close()

    def _read(self, read: Callable[[], T]) -> T:
        """Run one broker read, again while the broker answers 541 (its queue process is down).

        A quorum queue's process can be briefly absent on a loaded broker (rabbitmq-server
        #12461: `basic.get` → 541 "…: noproc"); the products' consumers reconnect on it, and
        these inspections do the same, four times over about 3 s, then raise what the broker said.
        """
        for pause in (0.2, 0.4, 0.8, 1.6):
            try:
                return read()
            except pika.exceptions.ConnectionClosedByBroker as exc:
                if exc.reply_code != 541:
                    raise
                time.sleep(pause)
        return read()

    def queue_depth(self, stage: str) -> int:
        """Messages ready in a stage's queue; 0 while no process has declared it yet."""
        return self._read(lambda: self._queue_depth(stage))

    def _queue_depth(self, stage: str) -> int:
        try:
            with self.channel() as ch:
                frame = ch.queue_declare(self.topology.queue(stage), passive=True)
                return int(frame.method.message_count)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return 0
            raise

    def entries(self, stage: str, *, remove: bool = False) -> list[dict[str, Any]]:
        """The entries waiting in a stage's queue, bundles opened (left there unless remove)."""
        return self._read(lambda: self._entries(stage, remove))

    def _entries(self, stage: str, remove: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            with self.channel() as ch:
                last = 0
                while True:
                    method, _props, body = ch.basic_get(self.topology.queue(stage), auto_ack=remove)
                    if method is None:
                        break
                    last = method.delivery_tag
                    data = orjson.loads(body)
                    out.extend(data if isinstance(data, list) else [data])
                if last and not remove:
                    ch.basic_nack(last, multiple=True, requeue=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
        return out

    def entry_count(self, stage: str) -> int:
        return len(self.entries(stage))

    def dead_letters(self) -> list[tuple[dict[str, Any], bytes]]:
        """Everything in the dead-letter queue (read and requeued, so it stays there)."""
        return self._read(self._dead_letters)

    def _dead_letters(self) -> list[tuple[dict[str, Any], bytes]]:
        out: list[tuple[dict[str, Any], bytes]] = []
        with self.channel() as ch:
            tags = []
            while True:
                method, props, body = ch.basic_get(self.topology.queue("dead"), auto_ack=False)
                if method is None:
                    break
                tags.append(method.delivery_tag)
                out.append((dict(props.headers or {}), body))
            if tags:
                ch.basic_nack(tags[-1], multiple=True, requeue=True)
        return out

    def delete_queues(self) -> None:
        with self.channel() as ch:
            for spec in self.topology.queues():
                ch.queue_delete(spec.name)
            ch.exchange_delete(self.topology.exchange)


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count_rows(dsn: str, table: str) -> int:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        return int(conn.cursor().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def fetch_rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        return [tuple(r) for r in conn.cursor().execute(sql).fetchall()]
    finally:
        conn.close()


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; (0, the error) when nothing answers: for probing /readyz."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)
