"""Publishes prepared messages from the buffer with a window of unconfirmed messages.

Runs on the AMQP IOLoop. A message is kept until the broker confirms it and re-sent after a
reconnect if it was not; only then does its source learn it is safe (`on_published`).
"""

from __future__ import annotations

from collections import deque

from cti_journal.gateway.intake import Buffer, Item
from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.metrics import Metrics


class GatewayPublisher:
    def __init__(self, link: AmqpLink, buffer: Buffer, window: int, metrics: Metrics) -> None:
        self.link = link
        self.buffer = buffer
        self.window = window
        self.metrics = metrics
        self._resend: deque[Item] = deque()
        self._drain_scheduled = False
        self.confirmed = 0

    @property
    def idle(self) -> bool:
        """Nothing buffered, nothing waiting for a confirm."""
        return not self._resend and len(self.buffer) == 0 and self.link.in_flight == 0

    def wake(self) -> None:
        self.buffer.woken()
        self.drain()

    def drain(self) -> None:
        while self.link.can_publish(self.window):
            item = self._resend.popleft() if self._resend else self.buffer.get_nowait()
            if item is None:
                break
            if not self._send(item):
                self._resend.appendleft(item)
                break
        self.metrics.buffered.set(len(self.buffer) + len(self._resend))

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        self.drain()

    def _send(self, item: Item) -> bool:
        def confirmed(ok: bool) -> None:
            if ok:
                self.confirmed += 1
                if item.on_published is not None:
                    item.on_published()
            else:
                self._resend.append(item)
            if not self._drain_scheduled:  # one drain per IOLoop turn, however many confirms
                self._drain_scheduled = True
                self.link.call_later(0, self._scheduled_drain)

        out = item.out
        return self.link.publish(
            out.routing_key, out.body, confirmed, headers=out.headers,
            content_type=out.content_type,
        )  # fmt: skip
