"""`cti-journal lookup`: <prefix>.lookup → contact look-up → <prefix>.write."""

from __future__ import annotations

import argparse
import logging

from cti_journal.lookup.sources import IndexHolder
from cti_journal.lookup.worker import LookupWorker
from cti_journal.shared.cli import Command
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.process import (
    add_config_argument,
    load_settings,
    on_termination,
    start_metrics,
)

log = logging.getLogger(__name__)


def refresh_reporter(metrics: Metrics):  # type: ignore[no-untyped-def]
    def report(source: str, ok: bool, records: int, seconds: float) -> None:
        metrics.contact_refresh_seconds.labels(source).observe(seconds)
        if ok:
            metrics.contacts.labels(source).set(records)
        else:
            metrics.contact_refresh_failures.labels(source).inc()

    return report


def _configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    metrics = start_metrics(settings, settings.lookup.metrics_port)
    if not settings.lookup.sources:
        log.warning("no [[lookup.sources]] configured: every entry passes on un-enriched")
    holder = IndexHolder(settings.lookup, on_refresh=refresh_reporter(metrics))
    holder.start()
    privacy = PrivacyRules.from_settings(settings, metrics.registry) or None
    worker = LookupWorker(
        settings.broker, settings.lookup, lambda: holder.current, metrics, privacy
    )
    on_termination(worker.stop)
    try:
        worker.run()
    finally:
        holder.stop()
    return 0


COMMAND = Command(
    help="enrich entries with the contact record behind the number (any number of workers)",
    configure=_configure,
    run=_run,
)
