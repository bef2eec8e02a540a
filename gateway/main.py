"""`cti-journal gateway`: CTI source → parsed, identified entries → RabbitMQ (confirmed)."""

from __future__ import annotations

import argparse
import logging
import threading
import time

from cti_journal.gateway.intake import Intake
from cti_journal.gateway.publisher import GatewayPublisher
from cti_journal.gateway.sources import EntrySource, TcpClientSource, TcpListenSource
from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.cli import Command
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.process import (
    add_config_argument,
    load_settings,
    on_termination,
    start_metrics,
)

log = logging.getLogger(__name__)


def make_source(settings: GatewaySettings, metrics: Metrics) -> EntrySource:
    if settings.source == "listen":
        return TcpListenSource(settings, metrics)
    if settings.source == "file":
        from cti_journal.gateway.filetail import FileTailSource

        return FileTailSource(settings, metrics)
    return TcpClientSource(settings, metrics)


class Gateway:
    def __init__(self, settings: Settings, metrics: Metrics, source: EntrySource | None = None):
        self.settings = settings
        self.link = AmqpLink(settings.broker, name="gateway", metrics=metrics, on_ready=self._ready)
        self.intake = Intake(settings.gateway.buffer, wake=self._wake)
        self.publisher = GatewayPublisher(self.link, self.intake, settings.gateway, metrics)
        self.source = source if source is not None else make_source(settings.gateway, metrics)
        self.stop_sources = threading.Event()
        self._source_thread = threading.Thread(
            target=self._run_source, name="cti-source", daemon=True
        )

    def _wake(self) -> None:
        self.link.call_threadsafe(self.publisher.wake)

    def _ready(self) -> None:
        self.publisher.drain()

    def _run_source(self) -> None:
        try:
            self.source.run(self.intake, self.stop_sources)
        except Exception:
            log.exception("the CTI source failed; stopping the gateway")
            self.shutdown()

    def run(self) -> None:
        self._source_thread.start()
        self.link.run()

    def shutdown(self, drain_timeout_s: float = 30.0) -> None:
        """Stop reading, publish what was read (bounded wait), then close. Thread-safe."""
        self.stop_sources.set()

        def finish() -> None:
            deadline = time.monotonic() + drain_timeout_s
            self._source_thread.join(timeout=drain_timeout_s)
            while not self.publisher.idle and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.publisher.idle:
                log.error(
                    "stopping with %d entries not confirmed by the broker",
                    len(self.intake) + self.link.in_flight,
                )
            self.intake.abort.set()
            self.link.stop()

        threading.Thread(target=finish, name="gateway-shutdown", daemon=True).start()


def _configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    metrics = start_metrics(settings, settings.gateway.metrics_port)
    gateway = Gateway(settings, metrics)
    on_termination(gateway.shutdown)
    gateway.run()
    return 0


COMMAND = Command(
    help="read CTI journal entries (tcp, listen or file) and publish them to RabbitMQ",
    configure=_configure,
    run=_run,
)
