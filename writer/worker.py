"""A writer worker: consume from <prefix>.write, batch (N entries or T ms), hand the batch to the
database thread, and settle each delivery with the batch's outcome once it is committed.

The AMQP IOLoop never waits for the database, so heartbeats keep flowing while a slow or absent
database holds a batch; the broker's prefetch bounds how many entries are held unacknowledged.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from dataclasses import dataclass

from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.config import BrokerSettings, WriterSettings
from cti_journal.shared.consumer import Consumer, Delivery
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import decode_bundle_fields
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.topology import WRITE
from cti_journal.writer.sink import OdbcJournalSink, Outcome, StoppingError
from cti_journal.writer.values import EntryValues, entry_of, entry_values

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Batch:
    deliveries: list[Delivery]  # the messages, in order
    sizes: list[int]  # how many entries each of them holds (a bundle several)
    entries: list[EntryValues]  # their entries, in order


class WriterWorker:
    def __init__(
        self,
        broker: BrokerSettings,
        settings: WriterSettings,
        sink: OdbcJournalSink,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.metrics = metrics
        self.link = AmqpLink(
            broker, name="writer", metrics=metrics, on_ready=self._ready, on_lost=self._lost
        )
        prefetch = settings.prefetch or 2 * settings.batch_size
        self.consumer = Consumer(self.link, WRITE, prefetch, self._handle, settings.prefetch_bytes)
        self._batch = _Batch([], [], [])
        self._timer: object | None = None
        self._soon = False
        self._in_db = 0  # batches handed to the database thread and not yet settled
        self._jobs: queue.Queue[_Batch | None] = queue.Queue()
        self._busy = threading.Event()
        self._db_thread = threading.Thread(target=self._db_loop, name="writer-db", daemon=True)

    def run(self) -> None:
        self._db_thread.start()
        try:
            self.link.run()
        finally:
            self.sink.stopping.set()
            self._jobs.put(None)
            self._db_thread.join(timeout=30)
            self.sink.close()

    def shutdown(self, timeout_s: float = 15.0) -> None:
        """Write what is batched (bounded wait), then close. Thread-safe."""
        self.link.call_threadsafe(self._submit)

        def finish() -> None:
            deadline = time.monotonic() + timeout_s
            time.sleep(0.05)
            while (self._busy.is_set() or not self._jobs.empty()) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.sink.stopping.set()
            self.link.stop()

        threading.Thread(target=finish, name="writer-shutdown", daemon=True).start()

    # -- IOLoop side --------------------------------------------------------------------------
    def _ready(self) -> None:
        self.consumer.start()

    def _lost(self) -> None:
        self.consumer.lost()
        self._batch = _Batch([], [], [])  # void: the broker redelivers these
        self._cancel_timer()

    def _handle(self, delivery: Delivery) -> None:
        # The entries' checked fields, not `JournalEntry` objects (`Consumer.entries`): building
        # those cost about as much as decoding, and the writer only reads their values.
        try:
            fields = decode_bundle_fields(delivery.body)
        except BadInputError as exc:
            self.consumer.fail(delivery, exc)  # not entries at all: dead-lettered as it came
            return
        self._batch.deliveries.append(delivery)
        self._batch.sizes.append(len(fields))
        self._batch.entries.extend(map(entry_values, fields))
        # Group commit: an idle database gets the batch at once (after this burst of frames);
        # while it is busy the batch grows, up to batch_size entries or batch_ms. So latency is
        # one transaction at low rates and batches are large exactly when the load is.
        if len(self._batch.entries) >= self.settings.batch_size:
            self._submit()
        elif self._in_db == 0 and not self._soon:
            self._soon = True
            self.link.call_later(0, self._submit_if_idle)
        elif self._timer is None:
            self._timer = self.link.call_later(self.settings.batch_ms / 1000, self._submit)

    def _submit_if_idle(self) -> None:
        self._soon = False
        if self._in_db == 0:
            self._submit()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self.link.remove_timeout(self._timer)
            self._timer = None

    def _submit(self) -> None:
        self._cancel_timer()
        if self._batch.entries:
            batch, self._batch = self._batch, _Batch([], [], [])
            self._in_db += 1
            self._jobs.put(batch)

    def _settle(self, batch: _Batch, outcomes: list[Outcome]) -> None:
        self._in_db -= 1
        if outcomes.count(None) == len(outcomes):  # the usual batch: every entry committed
            for delivery in batch.deliveries:
                self.consumer.complete(delivery)
        else:
            self._settle_each(batch, outcomes)
        if self._in_db == 0:
            self._submit()  # what gathered while the database was busy

    def _settle_each(self, batch: _Batch, outcomes: list[Outcome]) -> None:
        start = 0
        for delivery, size in zip(batch.deliveries, batch.sizes, strict=True):
            end = start + size
            failures = [
                (values, error)
                for values, error in zip(batch.entries[start:end], outcomes[start:end], strict=True)
                if error is not None
            ]
            start = end
            if not failures:
                self.consumer.complete(delivery)
            elif size == 1:
                self.consumer.fail(delivery, failures[0][1])  # the message as it came
            else:
                parts = [(entry_of(values).encode(), error) for values, error in failures]
                self.consumer.settle_parts(delivery, parts)

    # -- database thread ----------------------------------------------------------------------
    def _db_loop(self) -> None:
        while True:
            batch = self._jobs.get()
            if batch is None:
                return
            self._busy.set()
            try:
                outcomes = self.sink.write_values(batch.entries)
            except StoppingError:
                return  # unsettled deliveries go back to the queue when the channel closes
            except Exception as exc:  # a bug must not kill the thread and silently stall
                log.exception("writing a batch of %d failed unexpectedly", len(batch.entries))
                outcomes = [exc] * len(batch.entries)
            finally:
                self._busy.clear()
            self.link.call_threadsafe(functools.partial(self._settle, batch, outcomes))
