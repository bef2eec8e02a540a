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

# How far ahead of a key's oldest gathered entry the publisher reads, in bundles: of the three
# keys gathered (look-up, write, skip; dead letters are not) one always fills a bundle well before
# the bound, so only a rare key's entries go in short bundles under a steady backlog.
_REORDER_BUNDLES = 4


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
        # Taken from the buffer, not yet in a bundle: per routing key, in the order read (each
        # shorter than bundle_max), with the read count at its first entry.
        self._gathered: dict[str, list[Item]] = {}
        self._first_read: dict[str, int] = {}
        self._n_gathered = 0
        self._reads = 0
        self._lookahead = _REORDER_BUNDLES * max(1, bundle_max)
        self._overtaken_at = 0  # read count at which the oldest gathered entry must go (0: none)
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
        resend = sum(map(len, self._resend))
        return len(self.buffer) + self._n_gathered + resend + self._in_flight_entries

    def stalled(self, quiet_s: float) -> bool:
        """The broker refuses publishes and confirmed nothing for `quiet_s`: waiting longer to
        drain (at a stop) would only wait for the backoff, not for progress."""
        return self.link.degraded and time.monotonic() - self._last_confirm >= quiet_s

    @property
    def idle(self) -> bool:
        """Nothing buffered, nothing waiting for a confirm (nor entries a privacy rule dropped
        waiting to be counted off: their sources learn it on the next IOLoop turn)."""
        return (
            not self._resend
            and not self._n_gathered
            and len(self.buffer) == 0
            and self.link.in_flight == 0
            and self._in_flight_entries == 0
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
        if self.link.holding and (self._resend or self._n_gathered or len(self.buffer)):
            self._schedule_drain(self.link.retry_in_s())
        waiting = len(self.buffer) + sum(map(len, self._resend))
        self.metrics.buffered.set(waiting if self.buffer.counts_handed_out else
                                  waiting + self._n_gathered)  # fmt: skip

    def _schedule_drain(self, delay_s: float) -> None:
        if not self._drain_scheduled:  # one drain per IOLoop turn, however many confirms
            self._drain_scheduled = True
            self.link.call_later(delay_s, self._scheduled_drain)

    def _gather(self) -> list[Item]:
        """The next bundle: entries read until one key has `bundle_max` of them, the oldest
        gathered entry is overtaken by the bound, or nothing more waits (then the key of the
        oldest entry goes, partly filled)."""
        gathered, first_read, get = self._gathered, self._first_read, self.buffer.get_nowait
        full = self.bundle_max
        while True:
            if self._overtaken_at and self._reads >= self._overtaken_at:
                return self._take(min(first_read, key=first_read.__getitem__))
            item = get()
            if item is None:
                if not first_read:
                    return []
                return self._take(min(first_read, key=first_read.__getitem__))
            self._reads += 1
            key = item.out.routing_key
            if key == DEAD:  # dead letters go one by one, never held back
                return [item]
            bundle = gathered.get(key)
            if bundle is None:
                gathered[key] = bundle = []
            if not bundle:
                first_read[key] = self._reads
                if not self._overtaken_at:
                    self._overtaken_at = self._reads + self._lookahead
            bundle.append(item)
            self._n_gathered += 1
            if len(bundle) >= full:
                return self._take(key)

    def _take(self, key: str) -> list[Item]:
        bundle = self._gathered[key]
        self._gathered[key] = []
        del self._first_read[key]
        self._n_gathered -= len(bundle)
        first_read = self._first_read
        self._overtaken_at = min(first_read.values()) + self._lookahead if first_read else 0
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
