"""`cti-journal writer`: <prefix>.write → batches → the ODBC journal table."""

from __future__ import annotations

import argparse

from cti_journal.shared.cli import Command
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.process import (
    add_config_argument,
    load_settings,
    on_termination,
    start_metrics,
)
from cti_journal.writer.retention import start_retention
from cti_journal.writer.sink import OdbcJournalSink
from cti_journal.writer.worker import WriterWorker


def _configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if not settings.writer.dsn:
        raise ConfigError("writer.dsn", "the ODBC connection string of the journal database")
    metrics = start_metrics(settings, settings.writer.metrics_port)
    sink = OdbcJournalSink(settings.writer, metrics)
    plan = sink.open()
    retention = start_retention(settings, plan, metrics.registry)  # writer.retention_days
    worker = WriterWorker(settings.broker, settings.writer, sink, metrics)
    on_termination(worker.shutdown)
    try:
        worker.run()
    finally:
        if retention is not None:
            retention.close()
    return 0


COMMAND = Command(
    help="insert enriched entries into the ODBC journal table in batches (any number of workers)",
    configure=_configure,
    run=_run,
)
