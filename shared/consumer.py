"""The one place where deliveries are acknowledged.

Handlers get a `Delivery` (body, headers, attempt) and report back with `complete`, `forward` or
`fail`; the delivery tag never leaves this module. Every outcome ends in an ack, and that ack is
sent only after whatever the outcome published (the enriched entry, a retry, a dead letter) has
been confirmed by the broker. Acks go out as `multiple=True` over the settled prefix of
deliveries, which is what makes consuming cheap (shared/measurements.md).

The retry decision is made here, from the error class alone (shared/errors.py):
  BadInputError, PermanentError  -> dead-letter queue, with the reason
  anything else                  -> retry queue with a growing delay, `broker.max_attempts` times,
                                    then the dead-letter queue
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.errors import BadInputError, PermanentError
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.message import JournalEntry, decode_bundle
from cti_journal.shared.ratelog import RateLimitedLog
from cti_journal.shared.topology import DEAD

log = logging.getLogger(__name__)

ATTEMPT: Final = "x-cti-attempt"
REASON_LIMIT: Final = 2000
_HOST: Final = socket.gethostname()


@dataclass(slots=True)
class Delivery:
    body: bytes
    headers: Mapping[str, Any]
    redelivered: bool
    _tag: int = field(repr=False)
    _generation: int = field(repr=False)

    @property
    def attempt(self) -> int:
        """How many times a handler already failed on this entry (0 on the first delivery)."""
        value = self.headers.get(ATTEMPT, 0)
        return value if isinstance(value, int) else 0


def dead_letter_headers(
    stage: str, error: BaseException, *, attempt: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a dead-lettered message carries: where, why, which column, which host."""
    headers: dict[str, Any] = {
        "x-cti-stage": stage,
        "x-cti-error": type(error).__name__,
        # the entry itself is in the letter; its reason, shown by `dlq list`, shows numbers masked
        "x-cti-reason": mask_numbers_in(str(error))[:REASON_LIMIT],
        "x-cti-host": _HOST,
        "x-cti-failed-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ATTEMPT: attempt,
    }
    column = getattr(error, "column", None)
    if column:
        headers["x-cti-column"] = column
    if extra:
        headers.update(extra)
    return headers


class Consumer:
    def __init__(
        self,
        link: AmqpLink,
        stage: str,
        prefetch: int,
        handle: Callable[[Delivery], None],
        prefetch_bytes: int = 0,
    ) -> None:
        self.link = link
        self.stage = stage
        self.prefetch = prefetch
        # RabbitMQ's prefetch counts messages, not bytes: above `prefetch_bytes` of unsettled
        # bodies the consumer is cancelled (no new deliveries), and subscribed again once half
        # of that is settled. What the broker had already sent still arrives, so the bound is
        # prefetch_bytes plus at most `prefetch` messages (docs/security.md). 0 = no byte bound.
        self.prefetch_bytes = prefetch_bytes
        self._bytes: dict[int, int] = {}  # tag -> body size, while unsettled
        self.held_bytes = 0
        self._consumer_tag = ""
        self._paused = False
        self._handle = handle
        # A flood of bad entries costs one warning per error class and minute, not one each
        # (every one is still counted in cti_journal_dead_lettered_total).
        self._dead_log = RateLimitedLog(log)
        self._generation = 0
        self._outstanding: deque[int] = deque()
        self._settled: set[int] = set()
        self._requeued: set[int] = set()  # settled by a nack: the broker no longer holds them
        self._flush_scheduled = False
        self.settled = 0  # deliveries done with (acked or given back): progress, for health
        # The stage's retry and dead-letter series exist at 0 from the start (the dashboard's
        # panels show 0, not "no data"); errors are labelled by class, these two are the
        # permanent ones every stage can dead-letter at once.
        link.metrics.retried.labels(stage)
        for error in (BadInputError, PermanentError):
            link.metrics.dead_lettered.labels(stage, error.__name__)

    def start(self) -> None:
        """Call from the link's on_ready: (re)subscribe on the new channel."""
        self._paused = False
        self._subscribe()

    def _subscribe(self) -> None:
        queue = self.link.topology.queue(self.stage)
        self._consumer_tag = self.link.consume(queue, self.prefetch, self._on_message)

    def lost(self) -> None:
        """Call from the link's on_lost: tags of the old channel are void."""
        self._generation += 1
        self._outstanding.clear()
        self._settled.clear()
        self._bytes.clear()
        self.held_bytes = 0
        self._requeued.clear()

    @property
    def unsettled(self) -> int:
        return len(self._outstanding)

    def _on_message(
        self, body: bytes, headers: Mapping[str, Any], tag: int, redelivered: bool
    ) -> None:
        self._outstanding.append(tag)
        self._bytes[tag] = len(body)
        self.held_bytes += len(body)
        if self.prefetch_bytes and self.held_bytes > self.prefetch_bytes and not self._paused:
            self._paused = True
            log.info("%s: %d bytes of deliveries unsettled, above prefetch_bytes (%d): pausing",
                     self.stage, self.held_bytes, self.prefetch_bytes)  # fmt: skip
            self.link.cancel(self._consumer_tag)
        self._handle(Delivery(body, headers, redelivered, tag, self._generation))

    def entries(self, delivery: Delivery) -> list[JournalEntry] | None:
        """The entries a delivery carries (one entry or a bundle). None when it is not entries
        at all: it is then dead-lettered as bad input, and the handler has nothing left to do."""
        try:
            return decode_bundle(delivery.body)
        except BadInputError as exc:
            self.fail(delivery, exc)
            return None

    # -- outcomes -----------------------------------------------------------------------------
    def complete(self, delivery: Delivery) -> None:
        """The work is durable: acknowledge."""
        self._settle(delivery)

    def forward(
        self,
        delivery: Delivery,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish the result to the next stage; acknowledge once the broker confirmed it."""
        self._publish_then_settle(delivery, routing_key, body, headers)

    def fail(self, delivery: Delivery, error: BaseException) -> None:
        key, headers = self._route(delivery, error)
        self._publish_then_settle(delivery, key, delivery.body, headers)

    def settle_parts(
        self,
        delivery: Delivery,
        failures: list[tuple[bytes, BaseException]],
        forward: tuple[str, bytes] | None = None,
    ) -> None:
        """Some entries of a bundle failed, the rest are durable (or, with `forward`, are
        published as one message to that routing key): each failed entry goes its own way
        (retry or dead letter) as a message of its own; the bundle is acknowledged once all of
        those are confirmed, or given back if one is refused."""
        if delivery._generation != self._generation:
            return
        pending = len(failures) + (forward is not None)
        refused = False

        def confirmed(ok: bool) -> None:
            nonlocal pending, refused
            pending -= 1
            refused = refused or not ok
            if pending == 0:
                (self._requeue_later if refused else self._settle)(delivery)

        if forward is not None and not self.link.publish(*forward, confirmed):
            return  # not connected: the bundle is void and comes back
        for body, error in failures:
            key, headers = self._route(delivery, error)
            if not self.link.publish(key, body, confirmed, headers=headers):
                return  # not connected: the bundle is void and comes back

    def _route(self, delivery: Delivery, error: BaseException) -> tuple[str, dict[str, Any]]:
        """Where a failed entry goes: the retry queue for its attempt, or the dead letters."""
        attempt = delivery.attempt + 1
        metrics = self.link.metrics
        permanent = isinstance(error, BadInputError | PermanentError)
        if permanent or attempt >= self.link.broker.max_attempts:
            self._dead_log.warning(
                type(error).__name__,
                "%s: dead-lettering after %d attempt(s): %s: %s",
                self.stage,
                attempt,
                type(error).__name__,
                error,
                extra={"stage": self.stage, "attempt": attempt, "error": type(error).__name__},
            )
            metrics.dead_lettered.labels(self.stage, type(error).__name__).inc()
            return DEAD, dead_letter_headers(self.stage, error, attempt=attempt)
        log.info(
            "%s: attempt %d failed, retrying later: %s",
            self.stage,
            attempt,
            error,
            extra={"stage": self.stage, "attempt": attempt, "error": type(error).__name__},
        )
        metrics.retried.labels(self.stage).inc()
        last_error = mask_numbers_in(str(error))[:500]
        headers = {**delivery.headers, ATTEMPT: attempt, "x-cti-last-error": last_error}
        return self.link.topology.retry_key(self.stage, attempt), headers

    # -- settling -----------------------------------------------------------------------------
    def _publish_then_settle(
        self,
        delivery: Delivery,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, Any] | None,
    ) -> None:
        if delivery._generation != self._generation:
            return  # the channel it came on is gone; the broker redelivers it

        def confirmed(ok: bool) -> None:
            if ok:
                self._settle(delivery)
            else:
                self._requeue_later(delivery)

        if not self.link.publish(routing_key, body, confirmed, headers=headers):
            return  # not connected: the delivery is void and comes back

    def _requeue_later(self, delivery: Delivery) -> None:
        # Every requeue counts against x-delivery-limit: given back at once, a refused entry
        # came round again within milliseconds and was dead-lettered by the broker within about
        # 2 s of a cluster node's loss (seen). So it waits for the link's hold (a backoff; the
        # link reopens the connection when refusals go on, which voids the delivery anyway).
        delay = self.link.retry_in_s()
        if delay > 0:
            self.link.call_later(delay, lambda: self._requeue(delivery))
        else:
            self._requeue(delivery)

    def _requeue(self, delivery: Delivery) -> None:
        # The broker refused the publish: give the entry back rather than lose it. Requeues
        # count against x-delivery-limit, so this cannot loop forever.
        if delivery._generation != self._generation:
            return
        self.link.nack_requeue(delivery._tag)
        self._requeued.add(delivery._tag)
        self._mark(delivery._tag)

    def _settle(self, delivery: Delivery) -> None:
        if delivery._generation != self._generation:
            return
        self._mark(delivery._tag)

    def _mark(self, tag: int) -> None:
        self.held_bytes -= self._bytes.pop(tag, 0)
        if self._paused and self.held_bytes <= self.prefetch_bytes // 2:
            self._paused = False
            log.info("%s: %d bytes unsettled: consuming again", self.stage, self.held_bytes)
            self._subscribe()
        self.settled += 1
        self._settled.add(tag)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.link.call_later(0, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        last = None
        while self._outstanding and self._outstanding[0] in self._settled:
            tag = self._outstanding.popleft()
            self._settled.discard(tag)
            if tag in self._requeued:
                self._requeued.discard(tag)
            else:
                last = tag
        if last is not None:
            # Tags already nacked are not outstanding at the broker; multiple=True skips them.
            # A nacked tag itself is never the one acked: RabbitMQ closes the channel for an
            # unknown delivery tag.
            self.link.ack(last, multiple=True)
