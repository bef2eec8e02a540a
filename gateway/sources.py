"""Where CTI lines come from. Each source runs in its own thread and hands lines to the Intake.

* `TcpClientSource`: the gateway connects to the CTI server (reconnects with backoff + jitter).
* `TcpListenSource`: the gateway listens; CTI clients or servers push to it, several at once.
* `FileTailSource` (gateway/filetail.py): tails the server's Journal/day.log.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import ssl
import threading
import time
from typing import Protocol

from cti_journal.gateway.intake import Buffer
from cti_journal.gateway.lines import LineSplitter
from cti_journal.gateway.prepare import Preparer
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.metrics import Metrics

log = logging.getLogger(__name__)
READ_CHUNK = 64 * 1024


class EntrySource(Protocol):
    def run(self, buffer: Buffer, stop: threading.Event) -> None: ...


def pump(
    sock: socket.socket,
    origin: str,
    buffer: Buffer,
    stop: threading.Event,
    preparer: Preparer,
    idle_timeout_s: float = 0.0,
) -> None:
    """Read lines from a connected socket until EOF, error, idle timeout or stop.

    Everything read in one `recv` is prepared and handed over in one `put` (one fsync with a
    spool); `put` blocks while the buffer is full, and then nothing more is read."""
    splitter = LineSplitter(preparer.settings.max_line_bytes)
    sock.settimeout(0.5)
    idle = 0.0
    while not stop.is_set():
        try:
            data = sock.recv(READ_CHUNK)
        except TimeoutError:
            idle += 0.5
            if idle_timeout_s and idle >= idle_timeout_s:
                log.warning("%s: silent for %.0f s, closing", origin, idle)
                return
            continue
        except OSError as exc:
            log.warning("%s: connection error: %s", origin, exc)
            return
        if not data:
            break
        idle = 0.0
        now = time.time()
        outs = [preparer.prepare(line, origin, now) for line in splitter.feed(data)]
        if outs and not buffer.put(outs):
            return
    if splitter.partial.strip():
        log.warning("%s: closed in the middle of a line; %d bytes dropped", origin,
                    len(splitter.partial))  # fmt: skip


class TcpClientSource:
    """Connects to the CTI server and reads its journal entries."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.preparer = Preparer(settings, metrics)

    def run(self, buffer: Buffer, stop: threading.Event) -> None:
        address = (self.settings.host, self.settings.port)
        origin = f"tcp {self.settings.host}:{self.settings.port}"
        delay, failing = 0.5, False
        while not stop.is_set():
            try:
                sock = socket.create_connection(address, timeout=5)
            except OSError as exc:
                if not failing:
                    log.warning("CTI server %s unreachable: %s; retrying with backoff", origin, exc)
                    failing = True
                stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(self.settings.reconnect_max_s, delay * 2)
                continue
            log.info("connected to CTI server %s", origin)
            delay, failing = 0.5, False
            self.metrics.source_connected.inc()
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                pump(sock, origin, buffer, stop, self.preparer)
            finally:
                sock.close()
                self.metrics.source_connected.dec()
            if not stop.is_set():
                log.warning("CTI server %s closed the connection; reconnecting", origin)
                stop.wait(delay * random.uniform(0.5, 1.0))


class TcpListenSource:
    """Accepts pushing clients (at most `max_clients` at once, from `allowed_networks`)."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.preparer = Preparer(settings, metrics)
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks]
        self._clients = threading.BoundedSemaphore(settings.max_clients)
        self.tls = tls_context(settings)
        self.bound = threading.Event()
        self.port = settings.listen_port

    def run(self, buffer: Buffer, stop: threading.Event) -> None:
        server = socket.create_server(
            (self.settings.listen_address, self.settings.listen_port), reuse_port=False
        )
        server.settimeout(0.5)
        self.port = server.getsockname()[1]
        self.bound.set()
        log.info("listening for CTI clients on %s:%d", self.settings.listen_address, self.port)
        try:
            while not stop.is_set():
                try:
                    conn, peer = server.accept()
                except TimeoutError:
                    continue
                self._admit(conn, peer, buffer, stop)
        finally:
            server.close()

    def _admit(
        self, conn: socket.socket, peer: tuple[str, int], buffer: Buffer, stop: threading.Event
    ) -> None:
        origin = f"client {peer[0]}:{peer[1]}"
        if self.networks and not any(ipaddress.ip_address(peer[0]) in n for n in self.networks):
            log.warning("%s refused: not in gateway.allowed_networks", origin)
            conn.close()
            return
        if not self._clients.acquire(blocking=False):
            log.warning("%s refused: gateway.max_clients (%d) reached", origin,
                        self.settings.max_clients)  # fmt: skip
            conn.close()
            return
        thread = threading.Thread(
            target=self._serve, args=(conn, origin, buffer, stop), name=origin, daemon=True
        )
        thread.start()

    def _serve(
        self, conn: socket.socket, origin: str, buffer: Buffer, stop: threading.Event
    ) -> None:
        if self.tls is not None:
            try:
                conn.settimeout(10)
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.warning("%s refused: TLS handshake failed: %s", origin, exc)
                conn.close()
                self._clients.release()
                return
        log.info("%s connected%s", origin, " (TLS)" if self.tls is not None else "")
        self.metrics.source_connected.inc()
        try:
            pump(conn, origin, buffer, stop, self.preparer, self.settings.idle_timeout_s)
        finally:
            conn.close()
            self.metrics.source_connected.dec()
            self._clients.release()
            log.info("%s disconnected", origin)


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
