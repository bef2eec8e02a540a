"""`cti-journal gateway`: CTI source → parsed, identified entries → RabbitMQ (confirmed)."""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from pathlib import Path

from cti_journal.gateway.filetail import FileTailSource
from cti_journal.gateway.intake import Buffer, MemoryBuffer
from cti_journal.gateway.publisher import GatewayPublisher
from cti_journal.gateway.sources import EntrySource, TcpClientSource, TcpListenSource
from cti_journal.gateway.spool import SpoolBuffer, SpoolError, default_spool_dir
from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.arguments import GATEWAY, add_config_argument, load_settings
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.process import on_termination, start_metrics

log = logging.getLogger(__name__)


def make_source(settings: GatewaySettings, metrics: Metrics) -> EntrySource:
    if settings.source == "listen":
        return TcpListenSource(settings, metrics)
    if settings.source == "file":
        return FileTailSource(settings, metrics)
    return TcpClientSource(settings, metrics)


def export_fill(buffer: Buffer, g: GatewaySettings, metrics: Metrics) -> None:
    """The gauges behind the 'spool/buffer above 80 %' alert."""
    if isinstance(buffer, SpoolBuffer):
        metrics.spool_limit_bytes.set(g.spool_max_bytes)
        metrics.spool_bytes.set_function(buffer.unacked_bytes)
    else:
        metrics.buffer_limit.set(g.buffer)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        source: EntrySource | None = None,
        *,
        spool: bool = True,
    ) -> None:
        self.settings = settings
        g = settings.gateway
        self.link = AmqpLink(settings.broker, name="gateway", metrics=metrics, on_ready=self._ready)
        self.buffer = self._make_buffer(g, spool and source is None)
        export_fill(self.buffer, g, metrics)
        self.publisher = GatewayPublisher(self.link, self.buffer, g.window, metrics, g.bundle_max)
        self.source = source if source is not None else make_source(g, metrics)
        take = getattr(self.buffer, "take_identities", None)
        preparer = getattr(self.source, "preparer", None)
        if take is not None and preparer is not None:
            preparer.restore(take())  # continue the identity counter where it stopped
        if preparer is not None:
            preparer.privacy = PrivacyRules.from_settings(settings, metrics.registry) or None
        self.stop_sources = threading.Event()
        self.unconfirmed = 0  # entries still held when the gateway stopped (after `run`)
        self.failed = False  # the source stopped by a fault, not by a requested stop
        self.metrics = metrics
        self._source_thread = threading.Thread(
            target=self._run_source, name="cti-source", daemon=True
        )

    def _make_buffer(self, g: GatewaySettings, spool: bool) -> Buffer:
        # The file source re-reads from its checkpoint, so memory suffices; TCP sources cannot
        # re-read, so (unless gateway.spool = false) what they read is on disk before it is
        # acknowledged.
        if spool and g.spool and g.source != "file":
            where = Path(g.spool_dir) if g.spool_dir else default_spool_dir(g.source_id)
            try:
                buffer = SpoolBuffer(where, g.spool_max_bytes, self._wake)
            except (SpoolError, OSError) as exc:
                raise ConfigError("gateway.spool_dir", f"cannot use {where}: {exc}") from exc
            log.info("spool: %s", where.resolve())
            return buffer
        return MemoryBuffer(g.buffer, self._wake)

    @property
    def spooled(self) -> bool:
        return not isinstance(self.buffer, MemoryBuffer)

    def _wake(self) -> None:
        self.link.call_threadsafe(self.publisher.wake)

    def _ready(self) -> None:
        self.publisher.drain()

    def _run_source(self) -> None:
        try:
            self.source.run(self.buffer, self.stop_sources)
        except Exception:
            # Exit non-zero (systemd's Restart=on-failure, Kubernetes restart a failed process;
            # exit 0 would leave the gateway down for good).
            self.failed = True
            log.exception("the CTI source failed; stopping the gateway")
        self.shutdown()  # a finished source (import) or a failed one: drain, then stop

    def run(self) -> None:
        self._source_thread.start()
        try:
            self.link.run()
        finally:
            for part in (self.source, self.buffer):  # e.g. the file checkpoint, the spool
                close = getattr(part, "close", None)
                if close is not None:
                    close()

    def shutdown(self, drain_timeout_s: float = 30.0) -> None:
        """Stop reading, publish what was read (bounded wait), then close. Thread-safe."""
        if self.stop_sources.is_set() and threading.current_thread() is not self._source_thread:
            return
        self.stop_sources.set()

        def finish() -> None:
            deadline = time.monotonic() + drain_timeout_s
            if threading.current_thread() is not self._source_thread:
                self._source_thread.join(timeout=drain_timeout_s)
            while not self.publisher.idle and time.monotonic() < deadline:
                if self.spooled and not self.link.ready:
                    break  # no broker to confirm them: the spool keeps them for the restart
                if self.publisher.stalled(quiet_s=5.0):  # refused for 5 s: nothing will confirm
                    break
                time.sleep(0.05)
            self.buffer.abort.set()
            if not self.publisher.idle:
                self._report_unconfirmed()
            self.link.stop()

        threading.Thread(target=finish, name="gateway-shutdown", daemon=True).start()

    def _report_unconfirmed(self) -> None:
        held = self.publisher.unconfirmed  # entries: buffered, to resend, in flight
        self.metrics.unconfirmed_at_stop.set(held)
        if self.spooled:
            log.warning("stopping with %d entries not confirmed by the broker; they stay in the "
                        "spool and are published first at the next start", held)  # fmt: skip
            return
        if self.settings.gateway.source == "file" and isinstance(self.source, _file_source()):
            log.warning("stopping with %d entries not confirmed by the broker; the checkpoint is "
                        "before them: they are read again at the next start", held)  # fmt: skip
            return
        self.unconfirmed = held
        log.error("stopping with %d entries not confirmed by the broker and no spool "
                  "(gateway.spool = false): they are lost", held)  # fmt: skip


def _file_source() -> type:
    return FileTailSource


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, GATEWAY)
    os.umask(0o077)  # the spool and the file checkpoint hold personal data: owner only
    metrics = start_metrics(settings, settings.gateway.metrics_port, "gateway")
    gateway = Gateway(settings, metrics)
    health = metrics.health
    health.loop("amqp", gateway.link.call_threadsafe)
    health.needs("broker", lambda: gateway.link.ready)
    health.progress(
        "publish",
        pending=lambda: 0 if gateway.publisher.idle else max(1, len(gateway.buffer)),
        done=lambda: gateway.publisher.confirmed,
    )
    on_termination(gateway.shutdown)
    health.start(settings.health.stall_s)
    try:
        gateway.run()
    finally:
        health.stop()
    if gateway.failed:
        return 1
    return 1 if gateway.unconfirmed else 0
