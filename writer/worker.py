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
        prefetch = settings.prefetch or default_prefetch(settings.batch_size)
        self.consumer = Consumer(self.link, WRITE, prefetch, self._handle, settings.prefetch_bytes)
        self._batch = _Batch([], [], [])
        self._timer: object | None = None
        self._soon = False
        self._in_db = 0  # batches handed to the database thread and not yet settled
        # _batch and _in_db are shared with the database thread, which takes the gathered batch
        # itself after a write (`_take_gathered`).
        self._lock = threading.Lock()
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
        with self._lock:
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
        values = list(map(entry_values, fields))
        with self._lock:
            self._batch.deliveries.append(delivery)
            self._batch.sizes.append(len(values))
            self._batch.entries.extend(values)
            size, idle = len(self._batch.entries), self._in_db == 0
        # Group commit: an idle database gets the batch at once (after this burst of frames);
        # while it is busy the batch grows, up to batch_size entries or batch_ms, or until the
        # write ends. So latency is one transaction at low rates and batches are large exactly
        # when the load is.
        if size >= self.settings.batch_size:
            self._submit()
        elif idle and not self._soon:
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
        with self._lock:
            if not self._batch.entries:
                return
            batch, self._batch = self._batch, _Batch([], [], [])
            self._in_db += 1
        self._jobs.put(batch)

    def _settle(self, batch: _Batch, outcomes: list[Outcome]) -> None:
        with self._lock:
            self._in_db -= 1
            idle, gathered = self._in_db == 0, bool(self._batch.entries)
        if idle:
            # What gathered while the database was busy goes first: it need not wait for this
            # batch's acks (each delivery is still acked only after its own batch's commit).
            self._submit()
        elif not gathered:
            self._cancel_timer()  # the database thread took the batch the timer was for
        if outcomes.count(None) == len(outcomes):  # the usual batch: every entry committed
            for delivery in batch.deliveries:
                self.consumer.complete(delivery)
        else:
            self._settle_each(batch, outcomes)

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
        batch = self._jobs.get()
        while batch is not None:
            self._busy.set()
            try:
                outcomes = self.sink.write_values(batch.entries)
            except StoppingError:
                self._busy.clear()
                return  # unsettled deliveries go back to the queue when the channel closes
            except Exception as exc:  # a bug must not kill the thread and silently stall
                log.exception("writing a batch of %d failed unexpectedly", len(batch.entries))
                outcomes = [exc] * len(batch.entries)
            following = self._take_gathered()
            if following is None:
                self._busy.clear()
            self.link.call_threadsafe(functools.partial(self._settle, batch, outcomes))
            batch = following if following is not None else self._jobs.get()

    def _take_gathered(self) -> _Batch | None:
        """The entries that gathered during the write just ended, as the next batch; None if
        there are none or a batch handed over meanwhile (batch_size reached) is to go first."""
        if not self._jobs.empty():
            return None
        with self._lock:
            if not self._batch.entries:
                return None
            batch, self._batch = self._batch, _Batch([], [], [])
            self._in_db += 1
        return batch


def default_prefetch(batch_size: int) -> int:
    """`writer.prefetch = 0`: messages enough for four batches at full bundles (50 entries), at
    least 8. `prefetch` counts messages, and the broker keeps that many on the wire: once the
    byte budget pauses the consumer, what is already sent still arrives and is held (pika used to
    give it back, which walked healthy entries to x-delivery-limit). At 2 × batch_size messages
    (1,000) of bundles that was 200,000 entries and 305 MB in a 1M backfill."""
    return max(8, -(-4 * batch_size // 50))
