"""A small fault-injecting TCP proxy for tests: loopback only, thread-based, bounded.

Put it between a process under test and a real service (PostgreSQL, MariaDB, RabbitMQ) and break
the link on purpose while the real service stays up for everyone else:

* `forward()`  relay bytes both ways (the default; also ends a pause or refusal);
* `cut()`      break every open connection at once (RST); new connections are relayed again;
* `refuse()`   break every open connection and reset each new one right after accepting it;
* `pause(direction)` keep connections open but stop relaying ("both", "to_upstream": what the
  client sends is held, e.g. acks; "to_client": what the service sends is held). Bytes held
  during a pause are relayed when it ends, or lost with a `cut()`.

One thread accepts; each connection gets one relay thread. At most `max_connections` are relayed
at once; more are reset. Every socket is closed by `close()` (the fixture's teardown).
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["both", "to_upstream", "to_client"]
_POLL_S = 0.1
_CHUNK = 64 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so that the peer sees a reset rather than an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    upstream: socket.socket
    broken: threading.Event = field(default_factory=threading.Event)

    def wake(self) -> None:
        self.broken.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, max_connections: int = 32):
        if not ipaddress.ip_address(upstream_host).is_loopback:
            raise ValueError(f"the fault proxy only forwards to loopback, not {upstream_host}")
        self.upstream = (upstream_host, upstream_port)
        self.max_connections = max_connections
        self.accepted = 0  # connections relayed since start
        self.rejected = 0  # connections reset on arrival (refusing, or too many)
        self._mode: Literal["forward", "refuse"] = "forward"
        self._paused: set[str] = set()
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(_POLL_S)
        self.port: int = self._server.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- faults -------------------------------------------------------------------------------
    def forward(self) -> None:
        with self._lock:
            self._mode = "forward"
            self._paused.clear()

    def cut(self) -> int:
        """Break every open connection; returns how many were broken."""
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.wake()
        return len(pairs)

    def refuse(self) -> None:
        with self._lock:
            self._mode = "refuse"
        self.cut()

    def pause(self, direction: Direction = "both") -> None:
        with self._lock:
            self._paused = (
                {"to_upstream", "to_client"} if direction == "both" else self._paused | {direction}
            )

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._acceptor.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._server.close()

    # -- relaying -----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                admit = self._mode == "forward" and len(self._pairs) < self.max_connections
            if not admit:
                self.rejected += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                self.rejected += 1
                _reset(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
                self._threads = [t for t in self._threads if t.is_alive()]
            self.accepted += 1
            thread = threading.Thread(target=self._relay, args=(pair,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, pair: _Pair) -> None:
        routes = {
            pair.client: (pair.upstream, "to_upstream"),
            pair.upstream: (pair.client, "to_client"),
        }
        try:
            while not pair.broken.is_set() and not self._closed.is_set():
                with self._lock:
                    paused = set(self._paused)
                watched = [src for src, (_dst, way) in routes.items() if way not in paused]
                if not watched:
                    pair.broken.wait(_POLL_S)
                    continue
                readable, _, _ = select.select(watched, [], [], _POLL_S)
                for src in readable:
                    dst, _way = routes[src]
                    data = src.recv(_CHUNK)
                    if not data:
                        return
                    dst.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._pairs.discard(pair)
            _reset(pair.client)
            _reset(pair.upstream)
