"""`cti-journal lookup`: <prefix>.lookup → contact look-up → <prefix>.write."""

from __future__ import annotations

import argparse
import logging
import threading

from cti_journal.lookup import explain as explaining
from cti_journal.lookup.sources.base import SourceRefusedError, SourceUnavailableError
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.lookup.sources.query import CallQueries
from cti_journal.lookup.worker import LookupWorker
from cti_journal.shared.arguments import LOOKUP, add_config_argument, load_settings
from cti_journal.shared.backoff import Backoff, retry
from cti_journal.shared.config import LookupSettings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.process import on_termination, start_metrics, watch_consumer

log = logging.getLogger(__name__)
SOURCES_RETRY_MAX_S = 60.0


def refresh_reporter(metrics: Metrics):  # type: ignore[no-untyped-def]
    def report(source: str, ok: bool, records: int, seconds: float) -> None:
        metrics.contact_refresh_seconds.labels(source).observe(seconds)
        if ok:
            metrics.contacts.labels(source).set(records)
            metrics.contact_source_last_success.labels(source).set_to_current_time()
        else:
            metrics.contact_refresh_failures.labels(source).inc()

    return report


def publish_source_limits(metrics: Metrics, settings: LookupSettings) -> None:
    """Each source's max_age_s as a gauge, so that one alert rule serves every site's limits;
    the failure counter starts at 0 so that its first failure is an increase."""
    for source in settings.sources:
        metrics.contact_source_max_age.labels(source.name).set(source.max_age_s)
        metrics.contact_refresh_failures.labels(source.name)


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    actions = parser.add_subparsers(dest="action", metavar="[explain]")
    explain = actions.add_parser(
        "explain",
        help="show how a contact field is read, or why a call gets its record",
        description="Show the numbers a contact FIELD reads into (and what is ignored, and "
        "why), or, with --call, the candidates a journal number is tried as and the record "
        "that wins. Examples: cti-journal lookup explain '089 123456-21 / 0171 2345678'; "
        "cti-journal lookup explain -c cti.toml --call 08912345633 --direction in",
    )
    explaining.configure(explain)


def load_contacts(holder: IndexHolder, stop: threading.Event) -> bool:
    """Read every contact source before serving, waiting with backoff while one is unreachable
    (the sources read already are kept). A source that refuses us for good - login, unknown
    database, a table, column or query that does not exist, a file in no known format - raises
    ConfigError (exit 2: restarting cannot fix it). False if stopped."""

    def start() -> bool:
        try:
            holder.start()
        except SourceRefusedError as exc:
            raise ConfigError("lookup.sources", str(exc)) from exc
        return True

    started = retry(
        start,
        failures=SourceUnavailableError,
        backoff=Backoff(max_s=SOURCES_RETRY_MAX_S),
        stop=stop,
        logger=log,
        what="contact sources",
    )
    return bool(started)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "explain":
        return explaining.run(args)
    settings = load_settings(args, LOOKUP)
    metrics = start_metrics(settings, settings.lookup.metrics_port, "lookup")
    if not settings.lookup.sources:
        log.warning("no [[lookup.sources]] configured: every entry passes on un-enriched")
    stop, loaded = threading.Event(), threading.Event()
    on_termination(stop.set)
    metrics.health.needs("contacts", loaded.is_set)
    metrics.health.start(settings.health.stall_s)
    publish_source_limits(metrics, settings.lookup)
    for source in settings.lookup.sources:  # at 0, so the refresh panel has data before a failure
        metrics.contact_refresh_failures.labels(source.name)
    holder = IndexHolder(settings.lookup, on_refresh=refresh_reporter(metrics))
    queries = CallQueries(settings.lookup)
    try:
        if not load_contacts(holder, stop):
            return 0
        loaded.set()
        privacy = PrivacyRules.from_settings(settings, metrics.registry) or None
        worker = LookupWorker(
            settings.broker, settings.lookup, lambda: holder.current, metrics, privacy, queries
        )
        watch_consumer(metrics.health, worker.link, worker.consumer)
        on_termination(worker.stop)
        if not stop.is_set():
            worker.run()
    finally:
        holder.stop()
        queries.close()
        metrics.health.stop()
    return 0
