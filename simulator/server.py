"""`cti-journal simulate`: a fake reventix CTI server that emits journal entries.

Three ways to deliver the lines of `calls.generate_calls` in our wire format (`LineFormat`):

* ``--listen HOST:PORT`` (default ``127.0.0.1:4711``): a TCP server. One client at a time
  receives the lines; further clients wait in the backlog. When a connection drops, the entries
  not yet sent stay queued and go to the next client, as a CTI server that buffers its journal.
  With ``--clients N`` (N > 1) up to N clients are served at once and **each connected client
  gets every line** (a gateway pair); a client that connects later gets the lines from then on.
  A line counts as sent once at least one client's `sendall` returned; while no client is
  connected, lines wait for the next one.
* ``--connect HOST:PORT``: push mode; connects to a listening gateway, reconnecting with backoff.
* ``--file PATH``: appends to a ``day.log`` (flushed per line); ``--rotate-every N`` moves its
  contents to ``journal.log`` beside it and truncates it, as the real server does at day change.

Delivery accounting: a line counts as **sent when `sendall` returned** for it (or when the file
write was flushed). Each line gets its own `sendall`, so a line whose `sendall` failed was never
complete at the client and is sent again, whole, to the next connection: no entry is sent twice.
The cost of that definition: lines that were in the kernel's buffers when the client died are
counted as sent but lost, exactly as with a real server. Before each line the simulator checks
whether the client has gone away, so a client that disconnects while nothing is in flight loses
nothing.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import logging
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

import orjson

from cti_journal.shared.backoff import Backoff, retry
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.record import FIELDS, LineFormat, canonical_field
from cti_journal.simulator.calls import TIME_FORMAT, generate_calls

log = logging.getLogger(__name__)

DEFAULT_LISTEN: Final = ("127.0.0.1", 4711)
_ACCEPT_POLL_S: Final = 0.2
_FINISH_TIMEOUT_S: Final = 2.0
_BACKOFF_START_S: Final = 0.1
_BACKOFF_MAX_S: Final = 5.0
LATE_S: Final = 0.005  # a line sent this long after it was due counts as late (`Simulator.late`)

Entry = Mapping[str, Any]


class _Schedule:
    """Deadlines for a rate: line i is due at t0 + i/rate, so sleep overshoot never accumulates.

    After a gap (no client connected) the lines that fell due are sent at once, as a buffering
    server flushes its backlog.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._t0: float | None = None
        self.late = 0  # lines sent LATE_S or more after they were due
        self.most_late_s = 0.0

    @property
    def started(self) -> float | None:
        return self._t0

    def start(self) -> None:
        if self._t0 is None:
            self._t0 = time.monotonic()

    def wait(self, index: int, stop: threading.Event) -> bool:
        """Wait until line `index` is due; False when stopped meanwhile."""
        if self._interval and self._t0 is not None:
            delay = self._t0 + index * self._interval - time.monotonic()
            if delay > 0:
                return not stop.wait(delay)
            # Behind: the sender did not get the CPU in time (a loaded machine), and the lines
            # that fell due go out in a burst. A latency measured meanwhile says so.
            self.most_late_s = max(self.most_late_s, -delay)
            if -delay >= LATE_S:
                self.late += 1
        return not stop.is_set()


class Simulator:
    """Delivers entries as lines; usable from a thread (`stop()` from another thread).

    `sent` counts lines delivered (see the module docstring for what that means);
    `connections` holds the count per TCP connection in order; `on_sent` is called with each
    entry once it counts as sent (the CLI writes ``--expect-out`` from it).
    """

    def __init__(
        self,
        entries: Iterable[Entry],
        line_format: LineFormat | None = None,
        *,
        rate: float = 0.0,
        on_sent: Callable[[Entry], None] | None = None,
    ) -> None:
        if rate < 0:
            raise ValueError(f"rate must not be negative, not {rate}")
        self._format = line_format or LineFormat()
        self._entries: Iterator[Entry] = iter(entries)
        self._pending: tuple[Entry, bytes] | None = None
        self._exhausted = False
        self._schedule = _Schedule(rate)
        self._on_sent = on_sent
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._conn: socket.socket | None = None
        self._clients: list[socket.socket] = []  # broadcast mode: the connected clients
        self._address: tuple[str, int] | None = None
        self._sent = 0
        self.connections: list[int] = []

    # -- state --------------------------------------------------------------------------------
    @property
    def sent(self) -> int:
        return self._sent

    @property
    def late(self) -> tuple[int, float]:
        """With a rate: (lines sent `LATE_S` or more behind their schedule, the most behind in
        seconds). Lines that fell due while no client was connected count too."""
        return self._schedule.late, self._schedule.most_late_s

    @property
    def active_seconds(self) -> float:
        """Seconds since the first client connected (or the file was opened); 0 before."""
        started = self._schedule.started
        return 0.0 if started is None else time.monotonic() - started

    @property
    def done(self) -> bool:
        """True when every entry was sent."""
        return self._peek() is None

    @property
    def clients(self) -> int:
        """Broadcast mode: clients connected now."""
        return len(self._clients)

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) in listen mode, e.g. to learn the port given port 0."""
        return self._address

    def wait_ready(self, timeout: float | None = None) -> tuple[str, int] | None:
        """Block until serving started (listening, connecting or writing); the bound address."""
        if not self._ready.wait(timeout):
            raise TimeoutError("the simulator did not start in time")
        return self._address

    def stop(self) -> None:
        """Stop at the next line boundary; a blocked `sendall` is interrupted."""
        self._stop.set()
        with self._lock:
            for conn in [self._conn, *self._clients]:
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)

    # -- modes --------------------------------------------------------------------------------
    def serve(
        self, host: str = DEFAULT_LISTEN[0], port: int = DEFAULT_LISTEN[1], clients: int = 1
    ) -> int:
        """Listen and feed each client in turn until all entries are sent; returns `sent`.
        With clients > 1, every connected client (up to that many) gets every line."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family) as server:
            server.settimeout(_ACCEPT_POLL_S)
            bound = server.getsockname()
            self._address = (str(bound[0]), int(bound[1]))
            log.info("listening on %s:%d", *self._address)
            self._ready.set()
            if clients > 1:
                self._broadcast(server, clients)
                return self._sent
            while not self._stop.is_set() and not self.done:
                try:
                    conn, peer = server.accept()
                except TimeoutError:
                    continue
                log.info("client %s:%d connected", peer[0], peer[1])
                with conn:
                    self._feed(conn)
        return self._sent

    def _broadcast(self, server: socket.socket, limit: int) -> None:
        try:
            while not self._stop.is_set() and not self.done:
                self._accept(server, limit, wait=not self._clients)
                if not self._clients:
                    continue
                self._schedule.start()
                line = self._next_due()
                if line is None:
                    break
                self._accept(server, limit, wait=False)  # one that came meanwhile gets it too
                if self._send_to_all(line):
                    self._mark_sent()
            if self.done:
                log.info("all %d entries sent", self._sent)
                for conn in self._clients:
                    _finish(conn)
        finally:
            with self._lock:
                clients, self._clients = self._clients, []
            for conn in clients:
                conn.close()

    def _accept(self, server: socket.socket, limit: int, *, wait: bool) -> None:
        server.settimeout(_ACCEPT_POLL_S if wait else 0.0)
        while len(self._clients) < limit:
            try:
                conn, peer = server.accept()
            except (TimeoutError, BlockingIOError):
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.append(conn)
            self.connections.append(0)
            log.info("client %s:%d connected (%d now)", peer[0], peer[1], len(self._clients))
            server.settimeout(0.0)

    def _send_to_all(self, line: bytes) -> bool:
        """Send to every client, dropping those gone; True if at least one got the line."""
        delivered = False
        for conn in list(self._clients):
            try:
                if _peer_gone(conn):
                    raise ConnectionResetError("closed by the client")
                conn.sendall(line)
                delivered = True
            except OSError as exc:
                log.warning("client lost after %d entries (%s)", self._sent, exc)
                with self._lock:
                    self._clients.remove(conn)
                conn.close()
        return delivered

    def push(self, host: str, port: int) -> int:
        """Connect to a listening gateway and send, reconnecting with backoff; returns `sent`."""
        self._ready.set()
        backoff = Backoff(first_s=_BACKOFF_START_S, max_s=_BACKOFF_MAX_S)
        while not self._stop.is_set() and not self.done:
            conn = retry(
                lambda: socket.create_connection((host, port), timeout=5),
                failures=OSError,
                backoff=backoff,
                stop=self._stop,
                logger=log,
                what=f"{host}:{port}",
                failing=f"cannot connect to {host}:{port}",
            )
            if conn is None:
                break
            log.info("connected to %s:%d", host, port)
            conn.settimeout(None)
            with conn:
                self._feed(conn)
        return self._sent

    def write_file(self, path: Path | str, rotate_every: int = 0) -> int:
        """Append to `path` (day.log), moving it to journal.log every `rotate_every` lines."""
        day = Path(path)
        journal = day.with_name("journal.log")
        self._schedule.start()
        self._ready.set()
        out: IO[bytes] = day.open("ab")
        try:
            while (line := self._next_due()) is not None:
                out.write(line)
                out.flush()
                self._mark_sent()
                if rotate_every and self._sent % rotate_every == 0:
                    out.close()
                    _rotate(day, journal)
                    out = day.open("ab")
        finally:
            out.close()
        return self._sent

    # -- internals ----------------------------------------------------------------------------
    def _peek(self) -> bytes | None:
        """The next line not yet sent (kept until it counts as sent), or None when all are."""
        if self._pending is None and not self._exhausted:
            entry = next(self._entries, None)
            if entry is None:
                self._exhausted = True
            else:
                self._pending = (entry, self._format.format(entry))
        return None if self._pending is None else self._pending[1]

    def _next_due(self) -> bytes | None:
        """The next line once it is due; None when all are sent or we were stopped."""
        line = self._peek()
        if line is None or not self._schedule.wait(self._sent, self._stop):
            return None
        return line

    def _mark_sent(self) -> None:
        assert self._pending is not None
        entry = self._pending[0]
        self._pending = None
        self._sent += 1
        if self.connections:
            self.connections[-1] += 1
        if self._on_sent is not None:
            self._on_sent(entry)

    def _feed(self, conn: socket.socket) -> None:
        # One segment per entry, as a CTI server writes each call when it ends.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conn = conn
        self.connections.append(0)
        self._schedule.start()
        try:
            if self._pump(conn):
                _finish(conn)
                log.info("all %d entries sent", self._sent)
            elif not self._stop.is_set():
                log.warning("connection lost after %d entries; keeping the rest", self._sent)
        finally:
            with self._lock:
                self._conn = None

    def _pump(self, conn: socket.socket) -> bool:
        """Send until done (True), the connection is lost or we are stopped (False)."""
        while (line := self._next_due()) is not None:
            # sendall into a socket the client already closed succeeds and the line is lost;
            # asking first costs one syscall per line, little next to formatting the line.
            if _peer_gone(conn):
                return False
            try:
                conn.sendall(line)
            except OSError:
                return False
            self._mark_sent()
        return self._pending is None and self._exhausted


def _peer_gone(conn: socket.socket) -> bool:
    """True when the client closed or reset the connection (it is not supposed to send)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        # Whatever a client sends is discarded; only end-of-stream matters.
        return bool(readable) and conn.recv(65536) == b""
    except ValueError:
        return False  # a descriptor select() cannot watch: let sendall tell
    except OSError:
        return True


def _finish(conn: socket.socket) -> None:
    """Half-close and wait briefly for the client to close: a plain close() with unread input
    would reset the connection and could cost the client its last lines."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(_FINISH_TIMEOUT_S)
        while conn.recv(65536):
            pass


def _rotate(day: Path, journal: Path) -> None:
    """Move day.log's contents to the end of journal.log, then empty day.log."""
    data = day.read_bytes()
    with journal.open("ab") as out:
        out.write(data)
        out.flush()
    day.write_bytes(b"")


# -- CLI --------------------------------------------------------------------------------------
def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, not {text!r}")
    return value


def _non_negative(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text!r}")
        return value

    return convert


def _start(text: str) -> datetime | None:
    if text == "now":
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected 'now' or YYYY-MM-DD HH:MM:SS: {exc}") from exc


def configure(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--listen",
        type=_address,
        metavar="HOST:PORT",
        help="serve clients on this address (the default, 127.0.0.1:4711; port 0 = any free)",
    )
    mode.add_argument(
        "--connect", type=_address, metavar="HOST:PORT", help="push to a listening gateway"
    )
    mode.add_argument("--file", type=Path, metavar="PATH", help="append to this day.log file")
    parser.add_argument(
        "--clients",
        type=_non_negative(int),
        default=1,
        metavar="N",
        help="with --listen: serve up to N clients at once, each getting every line (default 1)",
    )
    parser.add_argument(
        "--rotate-every",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="with --file: move day.log to journal.log every N entries (default 0 = never)",
    )
    parser.add_argument(
        "--count", type=_non_negative(int), default=1000, metavar="N", help="entries (1000)"
    )
    parser.add_argument(
        "--rate",
        type=_non_negative(float),
        default=0.0,
        metavar="R",
        help="entries per second (default 0 = as fast as possible)",
    )
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (1)")
    parser.add_argument(
        "--start",
        type=_start,
        default=None,
        metavar="'YYYY-MM-DD HH:MM:SS'|now",
        help="Zeitpunkt of the first entry (default now; give it to repeat a run exactly)",
    )
    parser.add_argument("--format", choices=("delimited", "json"), default="delimited")
    parser.add_argument("--encoding", default="utf-8", help="e.g. cp1252 (default utf-8)")
    parser.add_argument("--separator", default=";", help="delimited separator (default ;)")
    parser.add_argument(
        "--fields",
        metavar="NAME,...",
        help="delimited field order (default: " + ",".join(FIELDS) + ")",
    )
    parser.add_argument(
        "--preenriched-ratio",
        type=_ratio,
        metavar="0..1",
        default=0.0,
        help="share of calls that arrive with Name/Firma/DatensatzID filled (0)",
    )
    parser.add_argument(
        "--duplicate-ratio",
        type=_ratio,
        metavar="0..1",
        default=0.005,
        help="share of entries emitted twice, identical, back to back (0.005)",
    )
    parser.add_argument(
        "--contacts",
        type=Path,
        metavar="PATH",
        help="a text file of contact phone numbers, one per line, for calls that must hit",
    )
    parser.add_argument(
        "--hit-ratio",
        type=_ratio,
        metavar="0..1",
        default=0.6,
        help="with --contacts: share of calls to or from a contact's number (0.6)",
    )
    parser.add_argument(
        "--contact-forms",
        choices=("pbx", "verbatim"),
        default="pbx",
        help="send contact numbers as a PBX would (default) or exactly as in the file",
    )
    parser.add_argument(
        "--expect-out",
        type=Path,
        metavar="PATH",
        help="write every sent entry as a JSON line here, to compare rows with",
    )


def _line_format(args: argparse.Namespace) -> LineFormat:
    try:
        codecs.lookup(args.encoding)
    except LookupError as exc:
        raise ConfigError("--encoding", f"unknown encoding {args.encoding!r}") from exc
    if args.preenriched_ratio > 0:
        try:
            "Jürgen Groß, Renée, Café".encode(args.encoding)
        except UnicodeEncodeError as exc:
            raise ConfigError(
                "--encoding", f"{args.encoding} cannot encode the names of pre-enriched entries"
            ) from exc
    fields: tuple[str, ...] = FIELDS
    if args.fields:
        fields = tuple(canonical_field(f) or f.strip() for f in args.fields.split(","))
    try:
        return LineFormat(args.format, args.separator, fields, args.encoding)
    except ValueError as exc:
        raise ConfigError("--fields/--separator", str(exc)) from exc


def _contact_numbers(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError("--contacts", f"cannot read {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def _open_expect(path: Path) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as exc:
        raise ConfigError("--expect-out", f"cannot write {path}: {exc}") from exc


def _deliver(sim: Simulator, args: argparse.Namespace) -> None:
    if args.file is not None:
        if not args.file.parent.is_dir():
            raise ConfigError("--file", f"no directory {args.file.parent}")
        sim.write_file(args.file, args.rotate_every)
    elif args.connect is not None:
        sim.push(*args.connect)
    else:
        host, port = args.listen or DEFAULT_LISTEN
        sim.serve(host, port, clients=max(1, args.clients))


def run(args: argparse.Namespace) -> int:
    line_format = _line_format(args)
    calls = generate_calls(
        args.seed,
        args.count,
        args.start or datetime.now(),
        preenriched_ratio=args.preenriched_ratio,
        duplicate_ratio=args.duplicate_ratio,
        numbers=_contact_numbers(args.contacts),
        hit_ratio=args.hit_ratio,
        contact_forms=args.contact_forms,
    )
    with contextlib.ExitStack() as stack:
        expect = stack.enter_context(_open_expect(args.expect_out)) if args.expect_out else None

        def record(entry: Entry) -> None:
            if expect is not None:
                expect.write(orjson.dumps(entry) + b"\n")

        sim = Simulator(calls, line_format, rate=args.rate, on_sent=record)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            sim.stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(signum, on_signal)
            stack.callback(signal.signal, signum, previous)
        began = time.monotonic()
        _deliver(sim, args)
        elapsed, active = time.monotonic() - began, sim.active_seconds
    # The rate counts from the first client on, so time spent waiting for one does not dilute it.
    rate = sim.sent / active if active > 0 else 0.0
    via = "" if args.file else f", {len(sim.connections)} connection(s)"
    print(
        f"simulate: sent {sim.sent} of {args.count} entries in {elapsed:.2f} s ({rate:.0f}/s{via})",
        file=sys.stderr,
    )
    return 0 if sim.sent == args.count else 1
