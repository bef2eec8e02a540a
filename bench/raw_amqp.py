"""RabbitMQ's raw limits on a throw-away quorum queue, measured with pika alone.

* streaming publish: SelectConnection, publisher confirms, a window of unconfirmed messages;
* batched consume: prefetch, `basic_ack(multiple=True)` every `ack_every` messages;
* naive publish: BlockingConnection + confirm_delivery, one publish waiting for its confirm.

Messages are ~330-byte persistent JSON (shared/measurements.md measured the same shape).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import pika
import pika.channel
import pika.frame
import pika.spec
from pika.adapters.select_connection import SelectConnection

QUORUM = {"x-queue-type": "quorum"}


def body(size: int = 330) -> bytes:
    data: dict[str, Any] = {"event_id": uuid.uuid4().hex, "in_out": "i", "pad": ""}
    raw = orjson.dumps(data)
    data["pad"] = "x" * max(0, size - len(raw))
    return orjson.dumps(data)


@dataclass
class AmqpResult:
    publish_streaming: float  # msg/s
    consume_batched: float
    publish_naive: float
    messages: int
    naive_messages: int
    window: int
    prefetch: int
    message_bytes: int


class _Run:
    """One SelectConnection doing either the publish or the consume part, then closing."""

    def __init__(self, url: str, queue: str, count: int) -> None:
        self.queue = queue
        self.count = count
        self.started = 0.0
        self.finished = 0.0
        self.error: BaseException | None = None
        self.channel: pika.channel.Channel | None = None
        self.conn = SelectConnection(
            pika.URLParameters(url),
            on_open_callback=self._opened,
            on_open_error_callback=self._failed,
            on_close_callback=self._closed,
        )

    def run(self) -> float:
        self.conn.ioloop.start()
        if self.error is not None:
            raise self.error
        return self.count / (self.finished - self.started)

    def _opened(self, conn: SelectConnection) -> None:
        conn.channel(on_open_callback=self._channel)

    def _failed(self, _conn: SelectConnection, error: BaseException) -> None:
        self.error = error
        self.conn.ioloop.stop()

    def _closed(self, _conn: SelectConnection, reason: BaseException) -> None:
        if not self.finished:
            self.error = RuntimeError(f"connection closed early: {reason}")
        self.conn.ioloop.stop()

    def _channel(self, channel: pika.channel.Channel) -> None:
        raise NotImplementedError

    def done(self) -> None:
        self.finished = time.perf_counter()
        self.conn.close()


class _Publisher(_Run):
    def __init__(self, url: str, queue: str, count: int, window: int, payload: bytes) -> None:
        super().__init__(url, queue, count)
        self.window = window
        self.payload = payload
        self.props = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json"
        )
        self.sent = 0
        self.confirmed = 0
        self.unconfirmed: set[int] = set()

    def _channel(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        channel.confirm_delivery(ack_nack_callback=self._confirm)
        channel.queue_declare(self.queue, durable=True, arguments=QUORUM, callback=self._declared)

    def _declared(self, _frame: pika.frame.Method) -> None:
        self.started = time.perf_counter()
        self._fill()

    def _fill(self) -> None:
        assert self.channel is not None
        while self.sent < self.count and len(self.unconfirmed) < self.window:
            self.channel.basic_publish("", self.queue, self.payload, self.props)
            self.sent += 1
            self.unconfirmed.add(self.sent)

    def _confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        if not isinstance(method, pika.spec.Basic.Ack):
            self.error = RuntimeError("the broker nacked a publish")
        tag = method.delivery_tag
        if method.multiple:
            done = {t for t in self.unconfirmed if t <= tag}
            self.unconfirmed -= done
            self.confirmed += len(done)
        elif tag in self.unconfirmed:
            self.unconfirmed.discard(tag)
            self.confirmed += 1
        if self.confirmed >= self.count:
            self.done()
        else:
            self._fill()


class _Consumer(_Run):
    def __init__(self, url: str, queue: str, count: int, prefetch: int, ack_every: int) -> None:
        super().__init__(url, queue, count)
        self.prefetch = prefetch
        self.ack_every = ack_every
        self.received = 0

    def _channel(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        channel.basic_qos(prefetch_count=self.prefetch, callback=self._qos)

    def _qos(self, _frame: pika.frame.Method) -> None:
        assert self.channel is not None
        self.channel.basic_consume(self.queue, self._message)

    def _message(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        _props: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        if not self.received:
            self.started = time.perf_counter()
        self.received += 1
        if self.received % self.ack_every == 0 or self.received == self.count:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if self.received == self.count:
            self.done()


def naive_publish(url: str, queue: str, count: int, payload: bytes) -> float:
    """What a user writes first: one publish, wait for its confirm, the next."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        started = time.perf_counter()
        for _ in range(count):
            channel.basic_publish("", queue, payload, props, mandatory=True)
        return count / (time.perf_counter() - started)
    finally:
        conn.close()


def delete_queue(url: str, queue: str) -> None:
    with contextlib.suppress(pika.exceptions.AMQPError):
        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            conn.channel().queue_delete(queue)
        finally:
            conn.close()


def measure(
    url: str,
    *,
    messages: int = 50_000,
    naive_messages: int = 2_000,
    window: int = 1000,
    prefetch: int = 500,
    ack_every: int = 100,
) -> AmqpResult:
    queue = f"cti-journal-bench-{uuid.uuid4().hex[:10]}"
    payload = body()
    try:
        published = _Publisher(url, queue, messages, window, payload).run()
        consumed = _Consumer(url, queue, messages, prefetch, ack_every).run()
        naive = naive_publish(url, queue, naive_messages, payload)
    finally:
        delete_queue(url, queue)
    return AmqpResult(
        published, consumed, naive, messages, naive_messages, window, prefetch, len(payload)
    )
