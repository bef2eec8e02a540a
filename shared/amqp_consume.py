"""Consuming on the link's channel: deliveries handed on as plain values (body, headers, tag,
redelivered), acks and requeues. Only the consumer wrapper (shared/consumer.py) calls these,
through the link, so that no delivery tag leaves it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pika
import pika.channel
import pika.spec

MessageCallback = Callable[
    [bytes, Mapping[str, Any], int, bool], None
]  # body, headers, tag, redelivered


def consume(
    channel: pika.channel.Channel, stage_queue: str, prefetch: int, on_message: MessageCallback
) -> str:
    """Subscribe; returns the consumer tag (for `cancel`)."""

    def deliver(
        _ch: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        on_message(body, properties.headers or {}, method.delivery_tag, method.redelivered)

    channel.basic_qos(prefetch_count=prefetch)
    return str(channel.basic_consume(stage_queue, deliver))


def cancel(channel: pika.channel.Channel | None, consumer_tag: str) -> None:
    """Stop new deliveries; those already delivered stay unacknowledged until settled, and those
    the broker sent before it saw the cancel are still handed on (below)."""
    if channel is not None and channel.is_open:
        # With a callback the cancel waits for Cancel-Ok, and pika keeps the consumer's callback
        # until then; without one (nowait) it drops the callback at once.
        channel.basic_cancel(consumer_tag, callback=lambda _frame: None)
        # pika rejects, with requeue, every delivery that arrives between its Basic.Cancel and
        # the broker's Cancel-Ok. On a quorum queue each such return counts against
        # x-delivery-limit, so a consumer that paused for its byte budget again and again sent
        # healthy entries to the dead-letter queue as "delivery_limit" (seen: 83 bundles in a
        # backfill of 1,000,000 with bundles of 200). Taking the tag out of pika's cancelling set
        # hands those deliveries to that callback instead;
        # after Cancel-Ok the broker sends none (AMQP 0-9-1 basic.cancel).
        # tests/integration/test_prefetch_bytes.py fails if a pika release changes this.
        cancelling = getattr(channel, "_cancelled", None)
        if isinstance(cancelling, set):
            cancelling.discard(consumer_tag)


def ack(channel: pika.channel.Channel | None, tag: int, *, multiple: bool = False) -> None:
    if channel is not None and channel.is_open:
        channel.basic_ack(tag, multiple=multiple)


def nack_requeue(channel: pika.channel.Channel | None, tag: int) -> None:
    if channel is not None and channel.is_open:
        channel.basic_nack(tag, multiple=False, requeue=True)
