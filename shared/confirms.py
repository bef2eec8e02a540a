"""The broker link's publish/confirm state machine, without pika: fed what happened (a message
published, returned, confirmed or nacked, the channel lost, the watch timer), it keeps the window
of unconfirmed messages and decides what the link does next (hold publishing, say publishes are
degraded or ready again, reopen the connection). `shared/amqp.py` translates pika's frames into
these events and carries the decisions out; this module never imports pika, so that the hold
and reopen logic is tested without a broker (tests/unit/test_confirms.py).

Refused publishes (RabbitMQ 3.10.8 on a cluster that lost a node, seen and reproduced): a
channel opened during a quorum queue's leader election initialises its queue client from the
queue record, which still names the dead leader; the client's first enqueue asks that node for
its machine version, gets `{badrpc, nodedown}` and answers `reject_publish` *without changing
its state* (rabbit_fifo_client:enqueue/3), so every later publish on that channel is nacked at
once, forever, while a new channel gets a fresh client and its confirms. So a run of nacks (or
returns, or a confirm that does not come) is handled here, once for every process: publishing
is held for a backoff delay (`retry_in_s`, `holding`), the broker's reason is logged once per
change of state, publishes are reported degraded (not ready) until the next confirm, and after
REOPEN_AFTER_ROUNDS held rounds without a single confirm, or a confirm older than
CONFIRM_BOUND_S, the connection is to be closed and opened to the next URL, whose channel starts
clean.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cti_journal.shared.backoff import Backoff

T = TypeVar("T")

# A round is every refusal that arrives within one hold. Three rounds in a row with no confirm in
# between (about 1-2 s of refusals with the first holds of 0.25, 0.5, 1 s) mean the channel will not
# recover by itself: reopen, to the next URL. Later rounds hold longer (the backoff only resets on a
# confirm), so a broker that refuses everything is asked less and less often, up to
# broker.reconnect_max_s apart.
REOPEN_AFTER_ROUNDS = 3
REFUSED_FIRST_HOLD_S = 0.25
# A publish not confirmed within this bound (a node cut off from the queue's leader neither acks
# nor nacks) counts as refused and reopens the connection. Confirms normally take milliseconds; a
# memory or disk alarm blocks the connection instead, which is not counted (nothing is sent then).
CONFIRM_BOUND_S = 15.0


def nack_reason(routing_key: str) -> str:
    # AMQP 0-9-1 nacks carry no reason text: say what RabbitMQ nacks for.
    return (
        f"nacked for routing key {routing_key!r} (a quorum queue without a leader this "
        "channel can reach, or over its length limit)"
    )


def return_reason(reply_code: int, reply_text: str, routing_key: str) -> str:
    return (
        f"returned {reply_code} {reply_text} for routing key {routing_key!r} (was a queue deleted?)"
    )


@dataclass(slots=True)
class Pending(Generic[T]):
    routing_key: str
    message_id: str
    token: T  # handed back with the outcome (the link's confirm callback)
    sent_at: float


@dataclass(slots=True)
class Decision(Generic[T]):
    """What the link does after an event, in this order: report `degraded` (the reason) or
    `recovered` to the health state, close the connection if `reopen` (why), then hand each
    settled message's outcome to its owner."""

    settled: list[tuple[Pending[T], bool]] = field(default_factory=list)
    degraded: str | None = None
    recovered: bool = False
    reopen: str | None = None


class ConfirmWindow(Generic[T]):
    """The messages published on the current channel and not yet confirmed, and the state of
    refused publishes across channels (it resets only on a confirm).

    `log` and `where` (which broker, for the log lines) come from the link, so that the lines
    read as they always did, from the link's logger."""

    def __init__(
        self,
        *,
        max_hold_s: float,
        log: logging.Logger,
        where: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._where = where
        self._clock = clock
        self._seq = 0
        self._pending: dict[int, Pending[T]] = {}
        self._returned: dict[str, str] = {}  # message id -> the broker's reason
        self._refused = Backoff(first_s=REFUSED_FIRST_HOLD_S, max_s=max_hold_s)
        self._hold_until = 0.0
        self._rounds = 0
        self._degraded = False

    # -- state ------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def degraded(self) -> bool:
        """Publishes are being refused (nacked, returned) or not confirmed within the bound."""
        return self._degraded

    @property
    def holding(self) -> bool:
        """Publishing is held after a refusal; retry after `retry_in_s()`."""
        return self._clock() < self._hold_until

    def retry_in_s(self) -> float:
        return max(0.0, self._hold_until - self._clock())

    # -- events -----------------------------------------------------------------------------
    def opened(self) -> None:
        """A new channel: its delivery tags count from 1 again."""
        self._seq = 0

    def published(self, routing_key: str, message_id: str, token: T) -> None:
        self._seq += 1
        self._pending[self._seq] = Pending(routing_key, message_id, token, self._clock())

    def returned(self, message_id: str, reason: str) -> None:
        """The broker returned a mandatory message; its confirm (an ack) follows and settles it
        as refused."""
        self._returned[message_id] = reason

    def confirmed(self, tag: int, *, multiple: bool, ack: bool) -> Decision[T]:
        """An ack (`ack`) or a nack for delivery tag *tag* (and all before it if `multiple`)."""
        if multiple:
            tags = []
            for t in self._pending:  # insertion order is publish order: stop at the first later
                if t > tag:
                    break
                tags.append(t)
        else:
            tags = [tag] if tag in self._pending else []
        decision: Decision[T] = Decision()
        refusal = ""
        for t in tags:
            item = self._pending.pop(t)
            returned = self._returned.pop(item.message_id, None)
            success = ack and returned is None
            if not success:
                refusal = refusal or returned or nack_reason(item.routing_key)
            decision.settled.append((item, success))
        if refusal:
            self._refused_round(refusal, decision)
        elif decision.settled:
            self._confirmed(decision)
        return decision

    def lost(self) -> list[Pending[T]]:
        """The channel is gone: every unconfirmed message failed (the caller sends it again)."""
        pending, self._pending = list(self._pending.values()), {}
        self._returned.clear()
        return pending

    def tick(self, *, blocked: bool) -> Decision[T]:
        """The watch timer: a publish unconfirmed for longer than the bound (and not because the
        broker blocked the connection) reopens the connection."""
        oldest = next(iter(self._pending.values()), None)
        decision: Decision[T] = Decision()
        if oldest is None or blocked or self._clock() - oldest.sent_at <= CONFIRM_BOUND_S:
            return decision
        why = f"no confirm for {CONFIRM_BOUND_S:.0f} s"
        self._set_degraded(why, decision)
        self._refused.failed(self._log, f"{self._where()} refused publishes", why)
        self._refused.delay()  # counts the failure; the reconnect waits its own backoff
        self._reopen(f"a publish unconfirmed for over {CONFIRM_BOUND_S:.0f} s", decision)
        return decision

    # -- decisions --------------------------------------------------------------------------
    def _confirmed(self, decision: Decision[T]) -> None:
        if self._degraded:
            self._refused.succeeded(self._log, f"publishes to {self._where()}")
            self._degraded = False
            decision.recovered = True
        self._refused.reset()
        self._rounds = 0
        self._hold_until = 0.0

    def _set_degraded(self, reason: str, decision: Decision[T]) -> None:
        if not self._degraded:
            self._degraded = True
            decision.degraded = reason

    def _refused_round(self, reason: str, decision: Decision[T]) -> None:
        self._set_degraded(reason, decision)
        if self.holding:
            return  # this round is already counted
        self._refused.failed(self._log, f"{self._where()} refused publishes", reason)
        self._hold_until = self._clock() + self._refused.delay()
        self._rounds += 1
        if self._rounds >= REOPEN_AFTER_ROUNDS:
            self._reopen(f"{self._rounds} rounds of refused publishes ({reason})", decision)

    def _reopen(self, why: str, decision: Decision[T]) -> None:
        self._rounds = 0
        decision.reopen = why
