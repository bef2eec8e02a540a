"""shared/health.py and the metrics endpoint: healthy vs ready, the stall bound, the degraded
flag, the HTTP paths, sd_notify over a real datagram socket, each process's own metrics,
--version and the version in the first log line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from cti_journal.shared.health import LOOP_TIMEOUT_S, Health, SystemdNotifier
from cti_journal.shared.metrics import make_metrics, serve_metrics
from tests.support.clock import Clock
from tests.support.harness import free_port, wait_for


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _health(clock: Clock, notifier: SystemdNotifier | None = None) -> Health:
    return Health(CollectorRegistry(), clock=clock, notifier=notifier or SystemdNotifier(None))


def test_ready_needs_every_connection(clock: Clock) -> None:
    health = _health(clock)
    broker = [False]
    health.needs("broker", lambda: broker[0])
    status = health.check()
    assert status.healthy and not status.ready
    assert status.describe() == "not ready: broker not connected"
    broker[0] = True
    assert health.check().ready


def test_pending_work_without_progress_turns_not_ready_after_the_bound(clock: Clock) -> None:
    health = _health(clock)
    health.stall_s = 60.0
    pending, done = [0], [0]
    health.progress("publish", pending=lambda: pending[0], done=lambda: done[0])
    assert health.check().ready
    clock.now += 3600  # idle for an hour: nothing pending is no stall
    assert health.check().ready
    pending[0] = 5
    assert health.check().ready  # the stall clock starts when work appears, not at the last done
    clock.now += 59
    assert health.check().ready
    done[0] += 1  # progress (seen at the next tick, once a second) resets it
    assert health.check().ready
    clock.now += 60
    assert health.check().ready
    clock.now += 1
    status = health.check()
    assert status.healthy and not status.ready
    assert status.reasons == ("publish: 5 pending, no progress for 61 s",)
    done[0] += 1
    assert health.check().ready


def test_degraded_is_one_call_that_also_sets_a_gauge(clock: Clock) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("publish_degraded", "test", registry=registry)
    health = Health(registry, clock=clock, notifier=SystemdNotifier(None))
    health.set_degraded("publish", "12 nacks in a row", gauge)
    assert health.check().reasons == ("publish degraded: 12 nacks in a row",)
    assert registry.get_sample_value("publish_degraded") == 1
    assert registry.get_sample_value("cti_journal_ready") == 0
    health.set_degraded("publish", None, gauge)
    assert health.check().ready
    assert registry.get_sample_value("publish_degraded") == 0
    assert registry.get_sample_value("cti_journal_ready") == 1


def test_a_loop_that_stops_answering_is_not_healthy(clock: Clock) -> None:
    health = _health(clock)
    posted: list[Callable[[], None]] = []
    health.loop("amqp", posted.append)
    assert health.check().healthy
    posted.pop()()  # the loop ran the ping
    clock.now += LOOP_TIMEOUT_S + 1
    assert health.check().healthy  # a new ping, not yet overdue
    clock.now += LOOP_TIMEOUT_S + 1  # ... and this one is never answered
    status = health.check()
    assert not status.healthy and not status.ready
    assert status.reasons[0].startswith("amqp loop stuck for ")


def test_a_dead_thread_or_failing_check_is_not_healthy(clock: Clock) -> None:
    health = _health(clock)
    health.alive("db-thread", lambda: False)

    def broken() -> bool:
        raise RuntimeError("boom")

    health.needs("database", broken)
    assert health.check().reasons == ("db-thread not running", "database not connected")


# -- the endpoint -------------------------------------------------------------------------------
def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_endpoint_paths(clock: Clock) -> None:
    metrics = make_metrics(process="writer")
    object.__setattr__(metrics, "health", Health(CollectorRegistry(), clock=clock))
    db = [False]
    metrics.health.needs("database", lambda: db[0])
    metrics.health.check()
    port = free_port()
    server = serve_metrics(metrics, "127.0.0.1", port)
    assert server is not None
    try:
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/healthz") == (200, "ok\n")
        assert _get(f"{base}/readyz") == (503, "not ready: database not connected\n")
        db[0] = True
        metrics.health.check()
        assert _get(f"{base}/readyz") == (200, "ok\n")
        code, text = _get(f"{base}/metrics")
        assert code == 200 and "cti_journal_rows_written_total 0.0" in text
        assert _get(f"{base}/")[0] == 404
        assert _get(f"{base}/metricsx")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_each_process_exports_only_its_own_metrics() -> None:
    def names(process: str | None) -> set[str]:
        registry = CollectorRegistry()
        metrics = make_metrics(registry, process)  # type: ignore[arg-type]
        metrics.db_connected.set(1)  # code may still touch any metric
        metrics.received.labels("x").inc()
        return {f.name for f in registry.collect()}

    gateway, lookup, writer, every = names("gateway"), names("lookup"), names("writer"), names(None)
    assert "cti_journal_db_connected" not in gateway
    assert "cti_journal_db_connected" in writer
    assert (
        "cti_journal_entries_received" in gateway and "cti_journal_entries_received" not in writer
    )
    assert "cti_journal_contacts" in lookup and "cti_journal_contacts" not in gateway
    for own in (gateway, lookup, writer):
        assert {"cti_journal_build_info", "cti_journal_ready", "cti_journal_healthy"} <= own
        assert "cti_journal_broker_connected" in own
    assert gateway | lookup | writer == every


def test_build_info() -> None:
    registry = CollectorRegistry()
    make_metrics(registry, "gateway")
    labels = {"version": version("cti-journal"), "python": ".".join(map(str, sys.version_info[:3]))}
    assert registry.get_sample_value("cti_journal_build_info", labels) == 1


# -- systemd ------------------------------------------------------------------------------------
@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        sock.bind(address)
    else:
        address = f"@cti-journal-test-{os.getpid()}"
        sock.bind("\0" + address[1:])
    sock.settimeout(5)
    yield address, sock
    sock.close()


def _messages(sock: socket.socket) -> list[str]:
    out = []
    sock.settimeout(0.05)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    return out


def test_sd_notify_ready_only_when_ready_watchdog_only_while_healthy(
    notify_socket: tuple[str, socket.socket], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = SystemdNotifier.from_environment()
    assert notifier.watchdog
    health = _health(clock, notifier)
    broker, alive = [False], [True]
    health.needs("broker", lambda: broker[0])
    health.alive("worker", lambda: alive[0])

    def tick() -> list[str]:
        notifier.beat(health.check())
        return _messages(sock)

    first = tick()
    assert "READY=1" not in "\n".join(first)
    assert "STATUS=not ready: broker not connected" in first
    assert "WATCHDOG=1" in first and any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in first)
    broker[0] = True
    ready = tick()
    assert ready[0] == "READY=1\nSTATUS=ready"
    assert "WATCHDOG=1" in ready and not any("EXTEND" in m for m in ready)
    assert "READY=1" not in "\n".join(tick())  # once only
    alive[0] = False
    sick = tick()
    assert sick == ["STATUS=not healthy: worker not running"]  # and no WATCHDOG=1
    alive[0] = True
    assert tick() == ["STATUS=ready", "WATCHDOG=1"]


def test_sd_notify_does_nothing_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier.from_environment()
    assert notifier.send("READY=1") is False


def test_watchdog_meant_for_another_process_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "x"))
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert not SystemdNotifier.from_environment().watchdog


def test_the_monitor_thread_notifies(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    health = Health(CollectorRegistry())
    health.start(stall_s=5)
    try:
        sock.settimeout(10)
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=ready"
    finally:
        health.stop()
    wait_for(lambda: "STOPPING=1" in _messages(sock), 5, "STOPPING=1")


# -- the CLI ------------------------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti_journal.cli", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("CTI_JOURNAL_")} | (env or {}),
    )  # fmt: skip


def test_version_option() -> None:
    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"cti-journal {version('cti-journal')} (Python 3.")


def test_each_process_logs_its_version_first(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[writer]\ndsn = "Driver={nope}"\nmetrics_port = 0\n')
    result = _cli("writer", "-c", str(config))
    assert result.returncode == 2  # no such driver: a configuration problem
    first = result.stderr.splitlines()[0]
    assert f"cti-journal {version('cti-journal')} (Python {sys.version.split()[0]})" in first
    assert first.endswith(": writer starting")


def test_probe_finds_the_port_from_the_config_and_its_environment(clock: Clock) -> None:
    """The image's HEALTHCHECK: `cti-journal probe` asks the metrics port the config gives (with
    its CTI_JOURNAL_* overrides), so one command fits every container of the image."""
    metrics = make_metrics(process="writer")
    object.__setattr__(metrics, "health", Health(CollectorRegistry(), clock=clock))
    db = [False]
    metrics.health.needs("database", lambda: db[0])
    metrics.health.check()
    port = free_port()
    server = serve_metrics(metrics, "127.0.0.1", port)
    assert server is not None
    env = {"CTI_JOURNAL_GATEWAY__METRICS_PORT": "0", "CTI_JOURNAL_LOOKUP__METRICS_PORT": "0",
           "CTI_JOURNAL_WRITER__METRICS_PORT": str(port)}  # fmt: skip
    try:
        alive = _cli("probe", env=env)
        assert (alive.returncode, alive.stdout) == (0, f"http://127.0.0.1:{port}/healthz: ok\n")
        ready = _cli("probe", "--ready", env=env)
        assert ready.returncode == 1
        assert ready.stdout.endswith("/readyz: not ready: database not connected\n")
    finally:
        server.shutdown()
        server.server_close()
    gone = _cli("probe", env=env)
    assert gone.returncode == 1 and gone.stdout.startswith("no cti-journal process answers on")
