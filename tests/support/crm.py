"""A REST CRM stand-in on loopback for the http contact source: a real threaded HTTP server
(stdlib http.server) the test starts, serving JSON:API-like pages of contacts, filtered by
`updated_since`, paged by next link (`links.next`) or `?page=N`, with a search endpoint for
per-call queries, bearer-token auth, and faults the test queues: a status (429 with Retry-After,
500), a reply slower than the client's time-out, a body that is not JSON."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass
class Fault:
    status: int = 200  # 429, 500, …
    delay_s: float = 0.0  # sleep before answering
    body: bytes | None = None  # instead of the JSON reply (bad JSON)
    retry_after: str = ""


@dataclass
class Crm:
    """The CRM's state; tests change it between refreshes."""

    contacts: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    token: str = "s3cret-token"
    faults: list[Fault] = field(default_factory=list)  # consumed one per request, in order
    query_delay_s: float = 0.0  # every /search reply waits this long
    list_delay_s: float = 0.0  # every list page waits this long
    requests: list[str] = field(default_factory=list)  # paths with query, in order
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/contacts"

    def add(
        self, cid: str, first: str, last: str, company: str | None, phones: list[str], updated: str
    ) -> None:
        with self.lock:
            self.contacts = [c for c in self.contacts if c["id"] != cid]
            self.contacts.append(
                {
                    "type": "contacts",
                    "id": cid,
                    "attributes": {
                        "name": {"first": first, "last": last},
                        "company": {"name": company} if company else None,
                        "phones": [{"type": "work", "number": p} for p in phones],
                        "updated_at": updated,
                    },
                }
            )

    def remove(self, cid: str) -> None:
        with self.lock:
            self.contacts = [c for c in self.contacts if c["id"] != cid]


class _Handler(BaseHTTPRequestHandler):
    crm: Crm

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows the test's own output

    def do_GET(self) -> None:
        crm = self.crm
        with crm.lock:
            crm.requests.append(self.path)
            fault = crm.faults.pop(0) if crm.faults else Fault()
        if self.headers.get("Authorization") != f"Bearer {crm.token}":
            self._send(401, b'{"error":"unauthorised"}')
            return
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.status != 200:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, b'{"error":"busy"}', headers)
            return
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path in ("/api/old", "/api/elsewhere"):
            # A move within the server, and one to another origin (`localhost` is another host
            # name for the same server, so the test sees whether the token followed).
            target = "/api/contacts" if parts.path == "/api/old" else (
                f"http://localhost:{crm.port}/api/contacts"
            )  # fmt: skip
            self._send(302, b"", {"Location": target})
            return
        if parts.path == "/api/search":
            time.sleep(crm.query_delay_s)
            body = self._search(query.get("phone", ""))
        else:
            time.sleep(crm.list_delay_s)
            body = self._page(query)
        self._send(200, fault.body if fault.body is not None else body)

    def _page(self, query: dict[str, str]) -> bytes:
        crm = self.crm
        with crm.lock:
            items = sorted(crm.contacts, key=lambda c: c["id"])
        since = query.get("updated_since")
        if since:
            items = [c for c in items if c["attributes"]["updated_at"] >= since]
        page = int(query.get("page", "1"))
        start = (page - 1) * crm.page_size
        chunk = items[start : start + crm.page_size]
        more = start + crm.page_size < len(items)
        next_query = f"page={page + 1}" + (f"&updated_since={since}" if since else "")
        return orjson.dumps(
            {
                "data": chunk,
                "meta": {"total": len(items)},
                # A relative link, as many APIs give: the client resolves it.
                "links": {"next": f"/api/contacts?{next_query}" if more else None},
            }
        )

    def _search(self, phone: str) -> bytes:
        digits = "".join(ch for ch in phone if ch.isdigit())
        with self.crm.lock:
            hits = [
                c
                for c in self.crm.contacts
                if any(
                    "".join(ch for ch in p["number"] if ch.isdigit()).endswith(digits[-8:])
                    for p in c["attributes"]["phones"]
                )
            ]
        return orjson.dumps({"data": hits})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its time-out): what the slow-reply tests want


@contextmanager
def running_crm(crm: Crm | None = None) -> Iterator[Crm]:
    crm = crm or Crm()
    handler = type("Handler", (_Handler,), {"crm": crm})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    crm.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="crm-stand-in", daemon=True)
    thread.start()
    try:
        yield crm
    finally:
        server.shutdown()
        server.server_close()
