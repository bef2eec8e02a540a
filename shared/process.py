"""What every long-running process does the same way: settings, metrics endpoint, signals."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.config import Settings
from cti_journal.shared.consumer import Consumer
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.health import Health
from cti_journal.shared.metrics import Metrics, Process, make_metrics, serve_metrics
from cti_journal.shared.version import python_version, version

log = logging.getLogger(__name__)


def start_metrics(settings: Settings, port: int, process: Process | None = None) -> Metrics:
    """The process's metrics (only its own when `process` is given), served with /healthz and
    /readyz on metrics_address:port. Feed `metrics.health`, then `metrics.health.start(...)`."""
    if process is not None:
        # The first line of a process that got past its config. Versions are put into the
        # message itself: as arguments the log filter would mask "3.11.7" like a phone number.
        log.info(f"cti-journal {version()} (Python {python_version()}): %s starting", process)
    metrics = make_metrics(process=process)
    try:
        serve_metrics(
            metrics,
            settings.metrics_address,
            port,
            max_connections=settings.metrics_max_connections,
            idle_timeout_s=settings.metrics_idle_timeout_s,
        )
    except OSError as exc:
        raise ConfigError(
            "metrics_port", f"cannot serve metrics on {settings.metrics_address}:{port}: {exc}"
        ) from exc
    if port:
        log.info(
            "metrics on http://%s:%d/metrics, health on /healthz and /readyz",
            settings.metrics_address,
            port,
        )
    return metrics


def on_termination(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT stop the process gracefully: nothing in flight is lost either way,
    because nothing is acknowledged before it is durable."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def watch_consumer(health: Health, link: AmqpLink, consumer: Consumer) -> None:
    """What a worker's readiness rests on: its AMQP loop turning, the broker, and deliveries
    being settled while some are outstanding."""
    health.loop("amqp", link.call_threadsafe)
    health.needs("broker", lambda: link.ready)
    health.progress("deliveries", pending=lambda: consumer.unsettled, done=lambda: consumer.settled)
