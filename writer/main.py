"""`cti-journal writer`: <prefix>.write → batches → the ODBC journal table."""

from __future__ import annotations

import argparse
import logging
import threading

from cti_journal.shared.arguments import WRITER, add_config_argument, load_settings
from cti_journal.shared.backoff import Backoff, retry
from cti_journal.shared.errors import ConnectionLostError
from cti_journal.shared.process import on_termination, start_metrics, watch_consumer
from cti_journal.writer.journal_db import journal_dsn
from cti_journal.writer.retention import start_retention
from cti_journal.writer.sink import OdbcJournalSink
from cti_journal.writer.table import TablePlan
from cti_journal.writer.worker import WriterWorker

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def open_sink(sink: OdbcJournalSink, stop: threading.Event, max_s: float) -> TablePlan | None:
    """Open the journal table, waiting with backoff while the database is unreachable (a
    database that starts after us is no reason to exit). A database that refuses us - login,
    unknown database, missing table - raises ConfigError at once. None if stopped meanwhile."""
    return retry(
        sink.open,
        failures=ConnectionLostError,
        backoff=Backoff(max_s=max_s),
        stop=stop,
        logger=log,
        what="journal database",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, WRITER)
    journal_dsn(settings.writer)  # before anything starts: a missing DSN is exit 2 at once
    metrics = start_metrics(settings, settings.writer.metrics_port, "writer")
    stop = threading.Event()
    on_termination(stop.set)
    sink = OdbcJournalSink(settings.writer, metrics)
    metrics.health.needs("database", lambda: sink.connected)
    metrics.health.start(settings.health.stall_s)
    retention = None
    try:
        plan = open_sink(sink, stop, settings.writer.db_retry_max_s)
        if plan is None:
            return 0
        retention = start_retention(settings, plan, metrics.registry)  # writer.retention_days
        worker = WriterWorker(settings.broker, settings.writer, sink, metrics)
        watch_consumer(metrics.health, worker.link, worker.consumer)
        on_termination(worker.shutdown)
        if not stop.is_set():
            worker.run()
    finally:
        if retention is not None:
            retention.close()
        metrics.health.stop()
    return 0
