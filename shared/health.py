"""Is this process alive, and is it doing its job? One answer for every supervisor.

*Healthy* (alive): every main loop of the process still turns — the AMQP IOLoop answers a
callback posted to it, the threads that must run are running. A process that is not healthy
cannot repair itself: restart it.

*Ready*: healthy, connected to everything it needs, and making progress: while work is pending
(entries buffered or waiting for the broker's confirm, deliveries not yet acknowledged) some of it
completes at least every `health.stall_s` seconds (default 60), and nothing has flagged the
process as degraded. A process that is not ready may recover by itself (a broker that comes back,
a memory alarm that clears): alert on it, do not restart it for that alone.

The processes feed a `Health` with callables that it polls once a second on its own thread (so
the hot paths pay nothing): `needs()` a connection, `loop()` an event loop to ping, `alive()` a
thread, `progress()` a pending/done pair; `set_degraded()` is the one call for a component that
knows it is failing. The state is served as `/healthz` and `/readyz` (shared/metrics.py), as the
gauges `cti_journal_healthy` and `cti_journal_ready`, and to systemd (`Type=notify`): READY=1
once ready, WATCHDOG=1 only while healthy, STATUS= with the reasons.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)

NS = "cti_journal"
TICK_S = 1.0
LOOP_TIMEOUT_S = 10.0  # an event loop that has not run a posted callback for this long is hung
DEFAULT_STALL_S = 60.0


@dataclass(frozen=True)
class Status:
    healthy: bool
    ready: bool
    reasons: tuple[str, ...]  # why not healthy / not ready; empty when both hold

    def describe(self) -> str:
        if self.ready:
            return "ready"
        state = "not ready" if self.healthy else "not healthy"
        return f"{state}: {'; '.join(self.reasons)}"


STARTING = Status(healthy=True, ready=False, reasons=("starting",))


@dataclass
class _Loop:
    post: Callable[[Callable[[], None]], None]
    asked_at: float | None = None  # a ping is outstanding since then


@dataclass
class _Work:
    pending: Callable[[], int]
    done: Callable[[], int]
    last_done: int = -1
    progressed_at: float = 0.0
    waiting_since: float | None = None


@dataclass
class _Checks:
    needs: dict[str, Callable[[], bool]] = field(default_factory=dict)
    alive: dict[str, Callable[[], bool]] = field(default_factory=dict)
    loops: dict[str, _Loop] = field(default_factory=dict)
    work: dict[str, _Work] = field(default_factory=dict)
    degraded: dict[str, str] = field(default_factory=dict)


class Health:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.monotonic,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.stall_s = DEFAULT_STALL_S
        self._clock = clock
        self._checks = _Checks()
        self._lock = threading.Lock()
        self._status = STARTING
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notifier = notifier if notifier is not None else SystemdNotifier.from_environment()
        self._ready_gauge = Gauge(
            f"{NS}_ready",
            "1 while connected and making progress (the same as /readyz)",
            registry=registry,
        )
        self._healthy_gauge = Gauge(
            f"{NS}_healthy",
            "1 while the process's main loops run (the same as /healthz)",
            registry=registry,
        )

    # -- what the processes feed ------------------------------------------------------------------
    def needs(self, name: str, connected: Callable[[], bool]) -> None:
        """Not ready while `connected()` is false (e.g. the broker link, the database)."""
        self._checks.needs[name] = connected

    def alive(self, name: str, running: Callable[[], bool]) -> None:
        """Not healthy once `running()` is false (e.g. a thread that must never end)."""
        self._checks.alive[name] = running

    def loop(self, name: str, post: Callable[[Callable[[], None]], None]) -> None:
        """An event loop, pinged through `post` (thread-safe "run this on the loop"); not
        healthy while a ping stays unanswered for LOOP_TIMEOUT_S."""
        self._checks.loops[name] = _Loop(post)

    def progress(self, name: str, pending: Callable[[], int], done: Callable[[], int]) -> None:
        """Work that must move: while `pending()` is non-zero, the counter `done()` has to
        change at least every `stall_s` seconds, else not ready."""
        self._checks.work[name] = _Work(pending, done)

    def set_degraded(self, what: str, reason: str | None, gauge: Gauge | None = None) -> None:
        """Not ready while a reason is set (None clears it); also sets `gauge` to 1 / 0.
        Thread-safe, cheap: call it on every change of state."""
        with self._lock:
            if reason is None:
                self._checks.degraded.pop(what, None)
            else:
                self._checks.degraded[what] = reason
        if gauge is not None:
            gauge.set(0 if reason is None else 1)

    # -- the answer -------------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    def check(self) -> Status:
        """Evaluate now (the monitor thread does this every TICK_S)."""
        now = self._clock()
        sick = [f"{name} not running" for name, fn in self._checks.alive.items() if not _true(fn)]
        sick += self._ping_loops(now)
        unready = [
            f"{name} not connected" for name, fn in self._checks.needs.items() if not _true(fn)
        ]
        unready += self._stalls(now)
        with self._lock:
            unready += [f"{what} degraded: {why}" for what, why in self._checks.degraded.items()]
        status = Status(healthy=not sick, ready=not sick and not unready, reasons=(*sick, *unready))
        self._publish(status)
        return status

    def _ping_loops(self, now: float) -> list[str]:
        hung = []
        for name, item in self._checks.loops.items():
            if item.asked_at is None:
                item.asked_at = now
                try:
                    item.post(lambda item=item: setattr(item, "asked_at", None))  # type: ignore[misc]
                except Exception:  # a closed loop is a dead one
                    log.debug("cannot post to the %s loop", name, exc_info=True)
            elif now - item.asked_at > LOOP_TIMEOUT_S:
                hung.append(f"{name} loop stuck for {now - item.asked_at:.0f} s")
        return hung

    def _stalls(self, now: float) -> list[str]:
        stalled = []
        for name, work in self._checks.work.items():
            done = work.done()
            if done != work.last_done:
                work.last_done, work.progressed_at = done, now
            pending = work.pending()
            if not pending:
                work.waiting_since = None
                continue
            if work.waiting_since is None:
                work.waiting_since = now
            idle = now - max(work.progressed_at, work.waiting_since)
            if idle > self.stall_s:
                stalled.append(f"{name}: {pending} pending, no progress for {idle:.0f} s")
        return stalled

    def _publish(self, status: Status) -> None:
        previous, self._status = self._status, status
        self._ready_gauge.set(1 if status.ready else 0)
        self._healthy_gauge.set(1 if status.healthy else 0)
        if status.describe() != previous.describe():
            level = logging.INFO if status.ready or previous is STARTING else logging.WARNING
            log.log(level, "health: %s", status.describe())
            self._notifier.status(status)

    # -- the monitor thread -----------------------------------------------------------------------
    def start(self, stall_s: float = DEFAULT_STALL_S) -> None:
        self.stall_s = stall_s
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._notifier.send("STOPPING=1")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._notifier.beat(self.check())
            except Exception:  # a failing check must not end the watchdog's one thread
                log.exception("health check failed")
            self._stop.wait(TICK_S)


def _true(fn: Callable[[], bool]) -> bool:
    try:
        return bool(fn())
    except Exception:
        return False


class SystemdNotifier:
    """sd_notify(3) without libsystemd: one datagram per message to $NOTIFY_SOCKET (a path, or
    `@name` for the abstract namespace). Without $NOTIFY_SOCKET every call does nothing."""

    def __init__(self, address: str | None, watchdog: bool = False) -> None:
        self.address: str | None = None
        if address:
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog = watchdog and self.address is not None
        self._ready_sent = False

    @classmethod
    def from_environment(cls) -> SystemdNotifier:
        env = os.environ
        pid = env.get("WATCHDOG_PID")
        watchdog = bool(env.get("WATCHDOG_USEC")) and pid in (None, "", str(os.getpid()))
        return cls(env.get("NOTIFY_SOCKET"), watchdog)

    def send(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)
            return False
        return True

    def status(self, status: Status) -> None:
        """READY=1 the first time the process is ready; STATUS= always."""
        lines = [f"STATUS={status.describe()[:200]}"]
        if status.ready and not self._ready_sent:
            self._ready_sent = True
            lines.insert(0, "READY=1")
        self.send("\n".join(lines))

    def beat(self, status: Status) -> None:
        """WATCHDOG=1 only while healthy; while healthy but not yet ready, extend the start
        timeout (a start that waits for the broker is not a hung start)."""
        if not status.healthy:
            return
        if self.watchdog:
            self.send("WATCHDOG=1")
        if not self._ready_sent:
            self.send(f"EXTEND_TIMEOUT_USEC={int(3 * LOOP_TIMEOUT_S * 1_000_000)}")
