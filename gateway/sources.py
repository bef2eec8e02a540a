"""Where CTI lines come from. Each source runs in its own thread and hands lines to the Intake.

* `TcpClientSource`: the gateway connects to the CTI server (reconnects with backoff + jitter).
* `TcpListenSource`: the gateway listens; CTI clients or servers push to it, several at once.
* `FileTailSource` (gateway/filetail.py): tails the server's Journal/day.log.

A TCP peer has no acknowledgement of its own: what it wrote is gone for it once `send` returned.
So every byte that reached this host is read and handed over before a connection is closed: at
end of stream (an unfinished last line becomes a dead letter) and at a stop, where the gateway
first half-closes (a FIN: a sender that watches for it, as `cti-journal simulate` does, stops at
its next line and keeps the rest for the next connection), then reads until the peer closes or
has been quiet for `STOP_QUIET_S` at a line boundary (at most `STOP_DRAIN_S`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from cti_journal.gateway.intake import Buffer
from cti_journal.gateway.lines import Line, LineSplitter
from cti_journal.gateway.prepare import Outgoing, Preparer
from cti_journal.shared.backoff import Backoff, retry
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.ratelog import RateLimitedLog
from cti_journal.shared.topology import DEAD
from cti_journal.shared.validation import listen_family

log = logging.getLogger(__name__)
READ_CHUNK = 64 * 1024
POLL_S = 0.5
STOP_QUIET_S = 0.3  # at a stop: no byte for this long at a line boundary = the peer is done
STOP_DRAIN_S = 5.0  # at a stop: read a peer that keeps sending for at most this long
REFUSAL_LOG_EVERY_S = 60.0


class EntrySource(Protocol):
    def run(self, buffer: Buffer, stop: threading.Event) -> None: ...


@dataclass(eq=False)  # compared and hashed by identity: one per connection
class Stream:
    """One connection's reading state: its splitter, when it began, whether it sent a line."""

    sock: socket.socket
    origin: str
    splitter: LineSplitter
    opened_at: float = field(default_factory=time.monotonic)
    # The deadlines count complete lines, not bytes: a peer that trickles one byte every few
    # seconds (slowloris) must not hold its place by that.
    last_line_at: float = field(default_factory=time.monotonic)  # last complete line (or open)
    line_started_at: float | None = None  # the first byte of the unfinished line, if any
    established: bool = False  # sent at least one line that parsed (not a dead letter)
    evicted: bool = False  # closed by the listener to make room (it had sent no valid line)
    authenticated: bool = False  # presented a client certificate the CA signed
    sender: str = ""  # the client's identity for explicit ids: certificate subject or address


def pump(
    stream: Stream,
    buffer: Buffer,
    stop: threading.Event,
    preparer: Preparer,
    *,
    handshake_timeout_s: float = 0.0,
    idle_timeout_s: float = 0.0,
    line_timeout_s: float = 0.0,
) -> str:
    """Read lines until end of stream, error, timeout or stop; returns why it ended.

    Everything read in one `recv` is prepared and handed over in one `put` (one fsync with a
    spool); `put` blocks while the buffer is full, and then nothing more is read."""
    stream.sock.settimeout(POLL_S)
    while not stop.is_set():
        try:
            data = stream.sock.recv(READ_CHUNK)
        except TimeoutError:
            why = _timed_out(stream, handshake_timeout_s, idle_timeout_s, line_timeout_s)
            if why:
                # Ended as at a stop: a line the peer sent just now is still read and handed
                # over (it has no acknowledgement: cut off here, it would be lost).
                return why if _drain_at_stop(stream, buffer, preparer) != "aborted" else "aborted"
            continue
        except OSError as exc:
            log.warning("%s: connection error: %s", stream.origin, exc)
            return "error"
        if not data:
            return "end" if _finish(stream, buffer, preparer) else "aborted"
        if not _hand_over(stream, data, buffer, preparer):
            return "aborted"
        # Checked after data too: a trickling peer never lets recv time out.
        why = _timed_out(stream, handshake_timeout_s, idle_timeout_s, line_timeout_s)
        if why:
            return why if _drain_at_stop(stream, buffer, preparer) != "aborted" else "aborted"
    return _drain_at_stop(stream, buffer, preparer)


def _timed_out(
    stream: Stream, handshake_timeout_s: float, idle_timeout_s: float, line_timeout_s: float = 0.0
) -> str:
    now = time.monotonic()
    if (
        not stream.established
        and handshake_timeout_s
        and now - stream.opened_at >= handshake_timeout_s
    ):
        log.debug("%s: no valid line within %.0f s", stream.origin, handshake_timeout_s)
        return "handshake_timeout"
    started = stream.line_started_at
    if line_timeout_s and started is not None and now - started >= line_timeout_s:
        log.warning("%s: a line unfinished after %.0f s, closing", stream.origin, now - started)
        return "line_timeout"
    if idle_timeout_s and now - stream.last_line_at >= idle_timeout_s:
        log.info("%s: no line for %.0f s, closing", stream.origin, now - stream.last_line_at)
        return "idle_timeout"
    return ""


def _hand_over(stream: Stream, data: bytes, buffer: Buffer, preparer: Preparer) -> bool:
    now = time.time()
    outs = preparer.prepare_lines(stream.splitter.feed(data), stream.origin, now, stream.sender)
    at = time.monotonic()
    if stream.splitter.at_boundary:
        stream.line_started_at = None
    elif outs or stream.line_started_at is None:
        stream.line_started_at = at  # the unfinished line began in this read
    if not outs:
        return True
    stream.last_line_at = at
    if any(out.routing_key != DEAD for out in outs):
        stream.established = True  # garbage lines (`x\n`) do not make a client a real one
    return buffer.put(outs)


def _finish(stream: Stream, buffer: Buffer, preparer: Preparer) -> bool:
    """End of stream: an unfinished last line is dead-lettered, not dropped."""
    line = stream.splitter.finish()
    if line is None or stream.evicted:
        return True
    log.warning("%s: closed in the middle of a line; %d bytes dead-lettered", stream.origin,
                len(line.raw))  # fmt: skip
    return buffer.put([_unfinished(line, stream.origin, preparer)])


def _unfinished(line: Line, origin: str, preparer: Preparer) -> Outgoing:
    if line.oversized:
        return preparer.prepare(line, origin, time.time())  # dead-lettered as too long
    return preparer.prepare_unfinished(line, origin, time.time())


def _drain_at_stop(stream: Stream, buffer: Buffer, preparer: Preparer) -> str:
    """Stopping: half-close so that the peer stops sending, then read what already arrived."""
    with contextlib.suppress(OSError):  # if already gone, its receive buffer can still be read
        stream.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + STOP_DRAIN_S
    stream.sock.settimeout(STOP_QUIET_S)
    while time.monotonic() < deadline:
        try:
            data = stream.sock.recv(READ_CHUNK)
        except TimeoutError:
            if stream.splitter.at_boundary:
                break
            continue
        except OSError:
            break
        if not data:
            break
        if not _hand_over(stream, data, buffer, preparer):
            return "aborted"
    return "stopped" if _finish(stream, buffer, preparer) else "aborted"


class TcpClientSource:
    """Connects to the CTI server and reads its journal entries."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.preparer = Preparer(settings, metrics)

    def run(self, buffer: Buffer, stop: threading.Event) -> None:
        address = (self.settings.host, self.settings.port)
        origin = f"tcp {self.settings.host}:{self.settings.port}"
        backoff = Backoff(first_s=0.5, max_s=self.settings.reconnect_max_s)
        while not stop.is_set():
            sock = retry(
                lambda: socket.create_connection(address, timeout=5),
                failures=OSError,
                backoff=backoff,
                stop=stop,
                logger=log,
                what=f"CTI server {origin}",
                failing=f"CTI server {origin} unreachable",
            )
            if sock is None:
                return
            log.info("connected to CTI server %s", origin)
            self.metrics.source_connected.inc()
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                pump(Stream(sock, origin, self.preparer.splitter()), buffer, stop, self.preparer)
            finally:
                sock.close()
                self.metrics.source_connected.dec()
            if not stop.is_set():
                log.warning("CTI server %s closed the connection; reconnecting", origin)
                backoff.wait(stop)  # a server that closes at once again and again is not hammered


class TcpListenSource:
    """Accepts pushing clients: from `allowed_networks` only, at most `max_clients` at once and
    `max_clients_per_address` from one address. A connection that has not sent a complete line
    (within `handshake_timeout_s`) is only pending: it makes room for a new client when the
    limits are reached, so idle connections cannot lock the real clients out."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.preparer = Preparer(settings, metrics)
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks]
        self.tls = tls_context(settings)
        self.bound = threading.Event()
        self.port = settings.listen_port
        self._lock = threading.Lock()
        self._streams: dict[Stream, str] = {}  # open connections -> their client address
        self._threads: list[threading.Thread] = []
        # client address -> (when its last refusal was logged, refusals not logged since)
        self._refusals_logged: dict[str, tuple[float | None, int]] = {}
        self._accept_errors = RateLimitedLog(log)

    def run(self, buffer: Buffer, stop: threading.Event) -> None:
        address = self.settings.listen_address
        # `::` needs AF_INET6 (the default is IPv4 only) and means every address, IPv4 too.
        server = socket.create_server(
            (address, self.settings.listen_port),
            family=listen_family(address),
            reuse_port=False,
            dualstack_ipv6=address == "::" and socket.has_dualstack_ipv6(),
        )
        server.settimeout(POLL_S)
        self.port = server.getsockname()[1]
        self.bound.set()
        log.info("listening for CTI clients on %s:%d", self.settings.listen_address, self.port)
        # The clients' connections are told to stop only once the listening socket is closed: a
        # client that reconnects at once (as it should) is refused then, rather than accepted by
        # the kernel into the backlog and reset, with whatever it sent meanwhile, at the close.
        draining = threading.Event()
        try:
            while not stop.is_set():
                try:
                    conn, peer = server.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    self._accept_failed(exc, stop)
                    continue
                self._admit(conn, peer, buffer, draining)
            self._accept_backlog(server, buffer, draining)
        finally:
            server.close()  # new connections are refused from here on
            draining.set()
        for thread in self._threads:  # each reads what its client already sent, then closes
            thread.join(timeout=STOP_DRAIN_S + 5)

    def _accept_failed(self, exc: OSError, stop: threading.Event) -> None:
        """accept() failed (EMFILE: out of descriptors, ENOBUFS, ECONNABORTED): a fault of this
        one connection or a passing shortage, never a reason to stop listening. The pending
        connection stays in the backlog; wait a little so that a shortage is not a busy loop."""
        self.metrics.listen_refused.labels("accept_error").inc()
        self._accept_errors.warning(
            "accept", "accepting a CTI client failed: %s; the gateway keeps listening", exc
        )
        stop.wait(POLL_S)

    def _accept_backlog(
        self, server: socket.socket, buffer: Buffer, draining: threading.Event
    ) -> None:
        """Connections the kernel completed but nobody accepted yet: take them, so that what
        their clients sent is read, instead of being reset by the close."""
        server.setblocking(False)
        while True:
            try:
                conn, peer = server.accept()
            except OSError:  # BlockingIOError: none left; EMFILE and the like: give up at a stop
                return
            conn.setblocking(True)
            self._admit(conn, peer, buffer, draining)

    def _admit(
        self, conn: socket.socket, peer: tuple[str, int], buffer: Buffer, stop: threading.Event
    ) -> None:
        address = peer[0]
        if self.networks and not any(_client_ip(address) in n for n in self.networks):
            self._refuse(conn, address, "network", "not in gateway.allowed_networks")
            return
        stream = Stream(conn, f"client {address}:{peer[1]}", self.preparer.splitter())
        stream.sender = f"addr:{address}"  # replaced by the certificate subject after TLS
        with self._lock:
            refusal = self._make_room(address)
            if not refusal:
                self._streams[stream] = address
        if refusal:
            self._refuse(conn, address, *refusal)
            return
        thread = threading.Thread(
            target=self._serve, args=(stream, buffer, stop), name=stream.origin, daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _make_room(self, address: str) -> tuple[str, str] | None:
        """None if a new client from `address` may connect (after evicting a pending one if
        needed); else the refusal's reason and text. Called with the lock held."""
        same = [s for s, a in self._streams.items() if a == address]
        if len(same) >= self.settings.max_clients_per_address and not self._evict(same):
            limit = self.settings.max_clients_per_address
            return "per_address", f"gateway.max_clients_per_address ({limit}) reached"
        if len(self._streams) >= self.settings.max_clients and not self._evict(list(self._streams)):
            return "max_clients", f"gateway.max_clients ({self.settings.max_clients}) reached"
        return None

    def _evict(self, candidates: list[Stream]) -> bool:
        """Close the oldest of `candidates` that has sent no valid line yet and has not proven
        a client certificate; False if there is none. A new connection has proven nothing yet
        (TLS comes after accept), so it never pushes out a client that has."""
        pending = [s for s in candidates if not s.established and not s.authenticated]
        if not pending:
            return False
        oldest = min(pending, key=lambda s: s.opened_at)
        oldest.evicted = True
        del self._streams[oldest]
        with contextlib.suppress(OSError):  # its thread sees end of stream and closes
            oldest.sock.shutdown(socket.SHUT_RDWR)
        self._log_refusal(self._address_of(oldest), "evicted", "had sent no line; made room")
        return True

    @staticmethod
    def _address_of(stream: Stream) -> str:
        return stream.origin.removeprefix("client ").rsplit(":", 1)[0]

    def _refuse(self, conn: socket.socket, address: str, reason: str, text: str) -> None:
        conn.close()
        self._count_refusal(address, reason, text)

    def _count_refusal(self, address: str, reason: str, text: str) -> None:
        with self._lock:
            self._log_refusal(address, reason, text)

    def _log_refusal(self, address: str, reason: str, text: str) -> None:
        """Count every refusal; log at most one line per address and minute (a port scan or a
        client in a reconnect loop must not flood the log). Called with the lock held."""
        self.metrics.listen_refused.labels(reason).inc()
        now = time.monotonic()
        last, suppressed = self._refusals_logged.get(address, (None, 0))
        if last is not None and now - last < REFUSAL_LOG_EVERY_S:
            self._refusals_logged[address] = (last, suppressed + 1)
            return
        if len(self._refusals_logged) > 10_000:
            self._refusals_logged.clear()
        self._refusals_logged[address] = (now, 0)
        more = f" ({suppressed} more from it in the last minute)" if suppressed else ""
        log.warning("client %s refused: %s%s", address, text, more)

    def _serve(self, stream: Stream, buffer: Buffer, stop: threading.Event) -> None:
        try:
            if self.tls is not None and not self._tls_handshake(stream):
                return
            log.info("%s connected%s", stream.origin, " (TLS)" if self.tls is not None else "")
            self.metrics.source_connected.inc()
            try:
                why = pump(
                    stream, buffer, stop, self.preparer,
                    handshake_timeout_s=self.settings.handshake_timeout_s,
                    idle_timeout_s=self.settings.idle_timeout_s,
                    line_timeout_s=self.settings.line_timeout_s,
                )  # fmt: skip
            finally:
                self.metrics.source_connected.dec()
            if why == "handshake_timeout":
                limit = self.settings.handshake_timeout_s
                text = f"sent no valid line within gateway.handshake_timeout_s ({limit:g} s)"
                self._count_refusal(self._address_of(stream), "handshake_timeout", text)
            elif why == "line_timeout":
                limit = self.settings.line_timeout_s
                text = f"left a line unfinished for gateway.line_timeout_s ({limit:g} s)"
                self._count_refusal(self._address_of(stream), "line_timeout", text)
            log.info("%s disconnected (%s)", stream.origin, why)
        finally:
            stream.sock.close()
            with self._lock:
                self._streams.pop(stream, None)

    def _tls_handshake(self, stream: Stream) -> bool:
        assert self.tls is not None
        try:
            stream.sock.settimeout(self.settings.handshake_timeout_s or 10)
            stream.sock = self.tls.wrap_socket(stream.sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self._count_refusal(self._address_of(stream), "tls", f"TLS handshake failed: {exc}")
            return False
        assert isinstance(stream.sock, ssl.SSLSocket)
        subject = client_subject(stream.sock.getpeercert())
        if subject:
            stream.authenticated = True  # CERT_REQUIRED: the CA signed it
            stream.sender = f"cert:{subject}"
        return True


def client_subject(cert: Any) -> str:
    """A verified client certificate's subject as one stable text ("" without one)."""
    if not isinstance(cert, dict) or not cert.get("subject"):
        return ""
    parts = [f"{k}={v}" for rdn in cert["subject"] for (k, v) in rdn]
    return ",".join(parts)


def tls_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """The listener's TLS context (`gateway.tls_*`), or None for plain TCP."""
    if not settings.tls_cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file or None)
    if settings.tls_client_ca_file:
        context.load_verify_locations(settings.tls_client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A client's address as allowed_networks read it: on an IPv6 socket (`::`), an IPv4 client
    appears as `::ffff:10.1.2.3` and must match `10.1.0.0/16`."""
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped or ip
