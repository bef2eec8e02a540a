"""Prometheus metrics of all three processes. Every metric takes the registry it is given, so that
tests build a fresh `CollectorRegistry` and read it with `get_sample_value`."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NS = "cti_journal"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    received: Counter
    rejected: Counter
    published: Counter
    confirmed: Counter
    publish_failed: Counter
    lookups: Counter
    lookup_ambiguous: Counter
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
    broker_connected: Gauge
    db_connected: Gauge
    source_connected: Gauge
    in_flight: Gauge
    buffered: Gauge


def make_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    r = registry if registry is not None else CollectorRegistry()
    return Metrics(
        registry=r,
        received=Counter(
            f"{NS}_entries_received", "Lines read from a CTI source", ["source"], registry=r
        ),
        rejected=Counter(
            f"{NS}_entries_rejected",
            "Lines the gateway could not parse (dead-lettered)",
            ["reason"],
            registry=r,
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
        lookups=Counter(f"{NS}_lookups", "Look-ups by result", ["result"], registry=r),
        lookup_ambiguous=Counter(
            f"{NS}_lookup_ambiguous", "Look-ups where several records shared the number", registry=r
        ),
        written=Counter(f"{NS}_rows_written", "Journal rows committed", registry=r),
        duplicates_skipped=Counter(
            f"{NS}_duplicates_skipped",
            "Redelivered entries whose row was already committed",
            registry=r,
        ),
        retried=Counter(f"{NS}_retried", "Entries sent to a retry queue", ["stage"], registry=r),
        dead_lettered=Counter(
            f"{NS}_dead_lettered",
            "Entries sent to the dead-letter queue",
            ["stage", "error"],
            registry=r,
        ),
        truncated=Counter(
            f"{NS}_truncated", "Text values cut to fit their column", ["column"], registry=r
        ),
        batch_size=Histogram(
            f"{NS}_batch_size",
            "Entries per committed batch",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
            registry=r,
        ),
        insert_seconds=Histogram(
            f"{NS}_insert_seconds", "Insert + commit time of one batch", registry=r
        ),
        end_to_end_seconds=Histogram(
            f"{NS}_end_to_end_seconds",
            "Entry received by the gateway → row committed",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        contacts=Gauge(f"{NS}_contacts", "Contact records indexed", ["source"], registry=r),
        contact_refresh_failures=Counter(
            f"{NS}_contact_refresh_failures",
            "Contact source refreshes that failed",
            ["source"],
            registry=r,
        ),
        contact_refresh_seconds=Histogram(
            f"{NS}_contact_refresh_seconds",
            "Time to read one contact source",
            ["source"],
            registry=r,
        ),
        broker_connected=Gauge(
            f"{NS}_broker_connected", "1 while connected to RabbitMQ", registry=r
        ),
        db_connected=Gauge(
            f"{NS}_db_connected", "1 while the journal database is connected", registry=r
        ),
        source_connected=Gauge(
            f"{NS}_source_connected",
            "Connected CTI sources (servers or pushing clients)",
            registry=r,
        ),
        in_flight=Gauge(f"{NS}_in_flight", "Published, not yet confirmed", registry=r),
        buffered=Gauge(f"{NS}_buffered", "Entries read, waiting to be published", registry=r),
    )


def serve_metrics(metrics: Metrics, address: str, port: int) -> None:
    """Serve /metrics on address:port in a daemon thread; port 0 turns it off."""
    if port:
        start_http_server(port, addr=address, registry=metrics.registry)
