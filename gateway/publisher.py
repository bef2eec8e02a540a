"""Publishes prepared messages from the buffer with a window of unconfirmed messages.

Runs on the AMQP IOLoop. Entries already waiting in the buffer go out together, up to
`gateway.bundle_max` per message (a bundle; nothing waits to fill one, so a quiet line sends
single entries): the broker's work per message is shared by the bundle's entries. A message is
kept until the broker confirms it and re-sent after a reconnect if it was not; only then do its
entries' sources learn they are safe (`on_published`).

A refused message (nacked, returned, unconfirmed past the bound: shared/amqp.py) waits for the
link's hold to pass before it is sent again, so a broker that refuses is never asked in a tight
loop; the link reopens the connection when the refusals go on.
"""

from __future__ import annotations

import time
from collections import deque

from cti_journal.gateway.intake import Buffer, Item
from cti_journal.gateway.prepare import SKIP
from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.message import encode_bundle
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.topology import DEAD


class GatewayPublisher:
    def __init__(
        self, link: AmqpLink, buffer: Buffer, window: int, metrics: Metrics, bundle_max: int = 1
    ) -> None:
        self.link = link
        self.buffer = buffer
        self.window = window
        self.bundle_max = bundle_max
        self.metrics = metrics
        self._resend: deque[list[Item]] = deque()
        self._held: Item | None = None  # taken from the buffer, belongs to the next bundle
        self._drain_scheduled = False
        self._in_flight_entries = 0
        self._last_confirm = time.monotonic()
        self.confirmed = 0

    @property
    def unconfirmed(self) -> int:
        """Entries read and not yet confirmed by the broker: buffered, waiting to be sent again,
        or in flight. What a stop without a spool would lose."""
        if self.buffer.counts_handed_out:
            return len(self.buffer)  # the spool's unacknowledged records are all of them
        held = 1 if self._held is not None else 0
        return len(self.buffer) + held + sum(map(len, self._resend)) + self._in_flight_entries

    def stalled(self, quiet_s: float) -> bool:
        """The broker refuses publishes and confirmed nothing for `quiet_s`: waiting longer to
        drain (at a stop) would only wait for the backoff, not for progress."""
        return self.link.degraded and time.monotonic() - self._last_confirm >= quiet_s

    @property
    def idle(self) -> bool:
        """Nothing buffered, nothing waiting for a confirm."""
        return (
            not self._resend
            and self._held is None
            and len(self.buffer) == 0
            and self.link.in_flight == 0
        )

    def wake(self) -> None:
        self.buffer.woken()
        self.drain()

    def drain(self) -> None:
        while self.link.can_publish(self.window):
            bundle = self._resend.popleft() if self._resend else self._gather()
            if not bundle:
                break
            if not self._send(bundle):
                self._resend.appendleft(bundle)
                break
        if self.link.holding and (self._resend or len(self.buffer)):
            self._schedule_drain(self.link.retry_in_s())
        self.metrics.buffered.set(len(self.buffer) + sum(map(len, self._resend)))

    def _schedule_drain(self, delay_s: float) -> None:
        if not self._drain_scheduled:  # one drain per IOLoop turn, however many confirms
            self._drain_scheduled = True
            self.link.call_later(delay_s, self._scheduled_drain)

    def _gather(self) -> list[Item]:
        first, self._held = self._held or self.buffer.get_nowait(), None
        if first is None:
            return []
        bundle = [first]
        key = first.out.routing_key
        while key != DEAD and len(bundle) < self.bundle_max:  # dead letters go one by one
            item = self.buffer.get_nowait()
            if item is None:
                break
            if item.out.routing_key != key:
                self._held = item
                break
            bundle.append(item)
        return bundle

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        self.drain()

    def _send(self, bundle: list[Item]) -> bool:
        def confirmed(ok: bool) -> None:
            self._in_flight_entries -= len(bundle)
            if ok:
                self.confirmed += len(bundle)
                self._last_confirm = time.monotonic()
                self.buffer.published(bundle)
            else:
                self._resend.append(bundle)
            # after a refusal the link holds: the drain then waits for retry_in_s()
            self._schedule_drain(0 if ok else self.link.retry_in_s())

        first = bundle[0].out
        if first.routing_key == SKIP:  # dropped by a privacy rule: done without publishing
            self._in_flight_entries += len(bundle)  # `confirmed` counts them off again
            self.link.call_later(0, lambda: confirmed(True))
            return True
        body = encode_bundle([item.out.body for item in bundle]) if len(bundle) > 1 else first.body
        sent = self.link.publish(
            first.routing_key, body, confirmed, headers=first.headers,
            content_type=first.content_type,
        )  # fmt: skip
        if sent:
            self._in_flight_entries += len(bundle)
        return sent
