"""The naive baseline, run end to end: what a user writes first, and what the product's client
does — every entry published on its own and waited for, every row inserted and committed on its
own before the message is acknowledged.

* publisher (this thread): BlockingConnection, confirm_delivery, one persistent publish per entry,
  each waiting for its confirm;
* consumer (a thread of its own, its own connection): prefetch 1, per message one INSERT +
  COMMIT, then `basic_ack` of that message.

The two run at the same time, as a gateway and a writer would, timed from the first publish to
the last commit, on a throw-away quorum queue and table. The rate is bounded by the slower half
and measures well below it (about half): with prefetch 1 the consumer waits a round trip to the
broker for every next message, and both halves share the cores with the broker and the database.
This is the baseline the pipeline's `×naive` ratio divides by; `bench.run` still reports the two
halves alone (naive insert, naive publish).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pika
import pika.adapters.blocking_connection
import pika.spec

from bench.common import Database, drop_tables
from bench.raw_amqp import QUORUM, delete_queue
from bench.raw_insert import create_journal
from cti_journal.shared.message import JournalEntry
from cti_journal.writer.table import load_plan


@dataclass
class NaiveResult:
    entries: int
    rate: float  # entries/s, first publish to last commit


class _Consumer(threading.Thread):
    """Insert + commit + ack, one message at a time, until `count` rows are in."""

    def __init__(self, url: str, queue: str, db: Database, table: str, count: int) -> None:
        super().__init__(name="naive-consumer", daemon=True)
        self.url, self.queue, self.db, self.table, self.count = url, queue, db, table, count
        self.ready = threading.Event()
        self.finished = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._consume()
        except BaseException as exc:  # reported by measure(), not lost in the thread
            self.error = exc
            self.ready.set()

    def _consume(self) -> None:
        conn = self.db.connect()
        amqp = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            plan = load_plan(conn, self.table, {})
            conn.commit()
            sql = plan.insert_sql(1)
            cursor = conn.cursor()
            channel = amqp.channel()
            channel.basic_qos(prefetch_count=1)
            self.ready.set()
            deliveries = channel.consume(self.queue, inactivity_timeout=60)
            for done, (method, _props, body) in enumerate(deliveries, start=1):
                if method is None:
                    raise RuntimeError(f"naive consumer: no message for 60 s after {done - 1}")
                cursor.execute(sql, plan.row(JournalEntry.decode(body)))
                conn.commit()
                assert isinstance(method, pika.spec.Basic.Deliver)
                channel.basic_ack(method.delivery_tag)
                if done == self.count:
                    self.finished = time.perf_counter()
                    break
            channel.cancel()
        finally:
            amqp.close()
            conn.close()


def measure(url: str, db: Database, table: str, entries: Sequence[JournalEntry]) -> NaiveResult:
    queue = f"cti-journal-bench-naive-{uuid.uuid4().hex[:10]}"
    create_journal(db, table)
    amqp = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = amqp.channel()
        channel.queue_declare(queue, durable=True, arguments=QUORUM)
        consumer = _Consumer(url, queue, db, table, len(entries))
        consumer.start()
        consumer.ready.wait(30)
        channel.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        started = time.perf_counter()
        for entry in entries:
            channel.basic_publish("", queue, entry.encode(), props, mandatory=True)
        consumer.join(timeout=600)
        if consumer.error is not None:
            raise consumer.error
        if not consumer.finished:
            raise RuntimeError("the naive consumer did not finish within 600 s")
        return NaiveResult(len(entries), len(entries) / (consumer.finished - started))
    finally:
        amqp.close()
        delete_queue(url, queue)
        drop_tables(db, table)
