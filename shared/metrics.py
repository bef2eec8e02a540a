"""Prometheus metrics of all three processes. Every metric takes the registry it is given, so that
tests build a fresh `CollectorRegistry` and read it with `get_sample_value`.

Each process exports only its own metrics: `make_metrics(process="gateway")` registers the
lookup's and the writer's in a private registry nobody serves, so the code can keep calling
`metrics.db_connected.set(...)` anywhere while a gateway's /metrics shows no `db_connected 0`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cti_journal.shared.health import Health
from cti_journal.shared.version import python_version, version

NS = "cti_journal"
Process = Literal["gateway", "lookup", "writer"]
GATEWAY: Process = "gateway"
LOOKUP: Process = "lookup"
WRITER: Process = "writer"
# Fine between 10 and 100 ms, where the pipeline's p50 and p99 lie at steady load: with 25 and
# 50 ms as neighbours, histogram_quantile put a p99 of 37 ms (exact, bench.latency_trace) at 48.
_LATENCY_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25,
                    0.5, 1, 2.5, 5, 10, 30, 60, 300)  # fmt: skip


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry  # what the process serves
    health: Health
    build_info: Gauge
    received: Counter
    rejected: Counter
    published: Counter
    confirmed: Counter
    publish_failed: Counter
    lookups: Counter
    lookup_ambiguous: Counter
    lookup_undecided: Counter
    written: Counter
    duplicates_skipped: Counter
    retried: Counter
    dead_lettered: Counter
    truncated: Counter
    batch_size: Histogram
    insert_seconds: Histogram
    end_to_end_seconds: Histogram
    contacts: Gauge
    contact_refresh_failures: Counter
    contact_refresh_seconds: Histogram
    contact_source_last_success: Gauge
    contact_source_max_age: Gauge
    broker_connected: Gauge
    publish_degraded: Gauge
    db_connected: Gauge
    source_connected: Gauge
    in_flight: Gauge
    buffered: Gauge
    blank_lines: Counter
    listen_refused: Counter
    unconfirmed_at_stop: Gauge
    rows_by_gateway: Counter
    skipped_by_gateway: Counter
    spool_bytes: Gauge
    spool_limit_bytes: Gauge
    buffer_limit: Gauge


def make_metrics(
    registry: CollectorRegistry | None = None, process: Process | None = None
) -> Metrics:
    """Every metric, registered in `registry` if `process` (None: every process) exports it."""
    r = registry if registry is not None else CollectorRegistry()
    unserved = CollectorRegistry()

    def of(*owners: Process) -> CollectorRegistry:
        return r if process is None or process in owners else unserved

    build_info = Gauge(
        f"{NS}_build_info", "Always 1; the labels say what runs", ["version", "python"], registry=r
    )
    build_info.labels(version(), python_version()).set(1)
    return Metrics(
        registry=r,
        health=Health(r),
        build_info=build_info,
        received=Counter(
            f"{NS}_entries_received",
            "Lines read from a CTI source",
            ["source"],
            registry=of(GATEWAY),
        ),
        rejected=Counter(
            f"{NS}_entries_rejected",
            "Lines the gateway could not parse (dead-lettered)",
            ["reason"],
            registry=of(GATEWAY),
        ),
        published=Counter(f"{NS}_published", "Messages published", ["routing_key"], registry=r),
        confirmed=Counter(
            f"{NS}_confirmed", "Publishes the broker confirmed", ["routing_key"], registry=r
        ),
        publish_failed=Counter(
            f"{NS}_publish_failed",
            "Publishes nacked, returned or lost with the connection",
            registry=r,
        ),
        lookups=Counter(f"{NS}_lookups", "Look-ups by result", ["result"], registry=of(LOOKUP)),
        lookup_ambiguous=Counter(
            f"{NS}_lookup_ambiguous",
            "Look-ups where several records shared the number",
            registry=of(LOOKUP),
        ),
        lookup_undecided=Counter(
            f"{NS}_lookup_undecided",
            "Look-ups where several persons claimed the number and nothing decided: no person "
            "was chosen (the company owning the block, or no record)",
            registry=of(LOOKUP),
        ),
        written=Counter(f"{NS}_rows_written", "Journal rows committed", registry=of(WRITER)),
        duplicates_skipped=Counter(
            f"{NS}_duplicates_skipped",
            "Redelivered entries whose row was already committed",
            registry=of(WRITER),
        ),
        retried=Counter(
            f"{NS}_retried", "Entries sent to a retry queue", ["stage"], registry=of(LOOKUP, WRITER)
        ),
        dead_lettered=Counter(
            f"{NS}_dead_lettered",
            "Entries sent to the dead-letter queue",
            ["stage", "error"],
            registry=of(LOOKUP, WRITER),
        ),
        truncated=Counter(
            f"{NS}_truncated",
            "Text values cut to fit their column",
            ["column"],
            registry=of(WRITER),
        ),
        batch_size=Histogram(
            f"{NS}_batch_size",
            "Entries per committed batch",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
            registry=of(WRITER),
        ),
        insert_seconds=Histogram(
            f"{NS}_insert_seconds", "Insert + commit time of one batch", registry=of(WRITER)
        ),
        end_to_end_seconds=Histogram(
            f"{NS}_end_to_end_seconds",
            "Entry received by the gateway → row committed",
            buckets=_LATENCY_BUCKETS,
            registry=of(WRITER),
        ),
        contacts=Gauge(
            f"{NS}_contacts", "Contact records indexed", ["source"], registry=of(LOOKUP)
        ),
        contact_refresh_failures=Counter(
            f"{NS}_contact_refresh_failures",
            "Contact source refreshes that failed",
            ["source"],
            registry=of(LOOKUP),
        ),
        contact_refresh_seconds=Histogram(
            f"{NS}_contact_refresh_seconds",
            "Time to read one contact source",
            ["source"],
            registry=of(LOOKUP),
        ),
        contact_source_last_success=Gauge(
            f"{NS}_contact_source_last_success_timestamp_seconds",
            "Unix time of the contact source's last complete load (full or incremental)",
            ["source"],
            registry=of(LOOKUP),
        ),
        contact_source_max_age=Gauge(
            f"{NS}_contact_source_max_age_seconds",
            "The source's max_age_s setting: its data is stale when the last complete load is "
            "older (the alert CtiJournalContactSourceStale compares the two)",
            ["source"],
            registry=of(LOOKUP),
        ),
        broker_connected=Gauge(
            f"{NS}_broker_connected", "1 while connected to RabbitMQ", registry=r
        ),
        publish_degraded=Gauge(
            f"{NS}_publish_degraded",
            "1 while publishes are nacked, returned or unconfirmed past the bound",
            registry=r,
        ),
        db_connected=Gauge(
            f"{NS}_db_connected", "1 while the journal database is connected", registry=of(WRITER)
        ),
        source_connected=Gauge(
            f"{NS}_source_connected",
            "Connected CTI sources (servers or pushing clients)",
            registry=of(GATEWAY),
        ),
        in_flight=Gauge(f"{NS}_in_flight", "Published, not yet confirmed", registry=r),
        buffered=Gauge(
            f"{NS}_buffered", "Entries read, waiting to be published", registry=of(GATEWAY)
        ),
        blank_lines=Counter(
            f"{NS}_blank_lines",
            "Lines without content: empty (skipped) or whitespace only (dead-lettered)",
            ["reason"],
            registry=of(GATEWAY),
        ),
        listen_refused=Counter(
            f"{NS}_listen_refused",
            "Connections the listen source refused or dropped, by reason",
            ["reason"],
            registry=of(GATEWAY),
        ),
        unconfirmed_at_stop=Gauge(
            f"{NS}_unconfirmed_at_stop",
            "Entries the gateway still held unconfirmed when it stopped",
            registry=of(GATEWAY),
        ),
        spool_bytes=Gauge(
            f"{NS}_spool_bytes",
            "Bytes of entries in the gateway's spool not yet confirmed by the broker",
            registry=of(GATEWAY),
        ),
        spool_limit_bytes=Gauge(
            f"{NS}_spool_limit_bytes",
            "gateway.spool_max_bytes: a full spool stops reading the CTI source",
            registry=of(GATEWAY),
        ),
        buffer_limit=Gauge(
            f"{NS}_buffer_limit",
            "gateway.buffer: entries the memory buffer holds before reading stops (no spool)",
            registry=of(GATEWAY),
        ),
        rows_by_gateway=Counter(
            f"{NS}_rows_written_by_gateway",
            "Journal rows committed, by the gateway whose copy was written",
            ["gateway"],
            registry=of(WRITER),
        ),
        skipped_by_gateway=Counter(
            f"{NS}_duplicates_skipped_by_gateway",
            "Entries skipped as already written, by the gateway that sent the skipped copy "
            "(with a gateway pair: the pair's overlap)",
            ["gateway"],
            registry=of(WRITER),
        ),
    )


def serve_metrics(
    metrics: Metrics,
    address: str,
    port: int,
    *,
    max_connections: int = 16,
    idle_timeout_s: float = 10.0,
) -> ThreadingHTTPServer | None:
    """Serve /metrics, /healthz and /readyz on address:port in a daemon thread (anything else is
    404); port 0 turns it off. /healthz and /readyz answer 200 or 503 with the reasons.

    The port has a budget, so that whoever reaches it cannot take the process's descriptors:
    at most `max_connections` at once (more are closed at once), each closed after
    `idle_timeout_s` without a byte and after 3 × that in all (a request sent a byte at a time)."""
    if not port:
        return None

    class Handler(_Handler):
        served = metrics
        timeout = idle_timeout_s  # StreamRequestHandler: the socket's timeout for every read

    server = _BoundedHTTPServer((address, port), Handler)
    server.daemon_threads = True
    server.slots = threading.BoundedSemaphore(max_connections)
    server.deadline_s = 3 * idle_timeout_s
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


class _BoundedHTTPServer(ThreadingHTTPServer):
    slots: threading.BoundedSemaphore
    deadline_s: float

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # over budget: closed, never queued
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # A whole-request deadline: a per-read timeout alone lets one byte every few seconds
        # hold a connection for ever.
        timer = threading.Timer(self.deadline_s, _cut, (request,))
        timer.daemon = True
        timer.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self.slots.release()


def observe_many(histogram: Histogram, amounts: Iterable[float]) -> None:
    """`histogram.observe(amount)` for each of *amounts* (numbers, not NaN), at a fraction of
    the cost: the writer observes every entry's latency, and prometheus_client has no bulk
    observe. A histogram keeps one count per bucket (made cumulative when exposed) and a sum:
    each amount is counted in the first bucket whose bound is at least the amount, as
    `observe` does, and each bucket and the sum are added to once. The exposition is the one
    per-amount `observe` gives (tests/unit/test_metrics_bulk.py), the sum up to the rounding of
    adding the amounts first. Where the library keeps its buckets otherwise, observe each."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(buckets) != len(bounds):
        for amount in amounts:
            histogram.observe(amount)
        return
    counts = [0] * len(bounds)
    added = 0.0
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1  # bounds end with +Inf
        added += amount
    total.inc(added)
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def _cut(request: socket.socket) -> None:
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    served: Metrics

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(HTTPStatus.OK, generate_latest(self.served.registry), CONTENT_TYPE_LATEST)
        elif path in ("/healthz", "/readyz"):
            status = self.served.health.status
            ok = status.healthy if path == "/healthz" else status.ready
            text = ("ok" if ok else status.describe()) + "\n"
            self._reply(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, text.encode())
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found: /metrics, /healthz, /readyz\n")

    def _reply(self, code: HTTPStatus, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes every few seconds would flood the log."""
