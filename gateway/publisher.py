"""Turns accepted lines into messages and publishes them with a window of unconfirmed messages.

Runs on the AMQP IOLoop. A line is parsed and given its event id exactly once; the prepared
message is kept until the broker confirms it, and re-sent after a reconnect if it was not.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.intake import Accepted, Intake
from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.consumer import dead_letter_headers
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.record import LineFormat
from cti_journal.shared.topology import DEAD, LOOKUP, WRITE

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outgoing:
    routing_key: str
    body: bytes
    headers: dict[str, Any] | None
    content_type: str
    item: Accepted


class GatewayPublisher:
    def __init__(
        self,
        link: AmqpLink,
        intake: Intake,
        settings: GatewaySettings,
        metrics: Metrics,
    ) -> None:
        self.link = link
        self.intake = intake
        self.settings = settings
        self.metrics = metrics
        self.format = LineFormat(
            settings.format, settings.separator, settings.fields, settings.encoding,
            settings.timezone,
        )  # fmt: skip
        self.identifier = EventIdentifier(settings.source_id)
        self._resend: deque[Outgoing] = deque()
        self._drain_scheduled = False
        self.confirmed = 0

    @property
    def idle(self) -> bool:
        """Nothing buffered, nothing waiting for a confirm."""
        return not self._resend and len(self.intake) == 0 and self.link.in_flight == 0

    def wake(self) -> None:
        self.intake.woken()
        self.drain()

    def drain(self) -> None:
        window = self.settings.window
        while self.link.can_publish(window):
            out = self._resend.popleft() if self._resend else self._next()
            if out is None:
                break
            if not self._send(out):
                self._resend.appendleft(out)
                break
        self.metrics.buffered.set(len(self.intake) + len(self._resend))

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        self.drain()

    def _next(self) -> Outgoing | None:
        item = self.intake.get_nowait()
        return None if item is None else self.prepare(item)

    def prepare(self, item: Accepted) -> Outgoing:
        self.metrics.received.labels(self.settings.source_id).inc()
        if item.line.oversized:
            limit = self.settings.max_line_bytes
            error = BadInputError(f"line longer than gateway.max_line_bytes ({limit} bytes)")
            return self._dead(item, error, "too_long")
        try:
            parsed = self.format.parse(item.line.raw)
        except BadInputError as exc:
            return self._dead(item, exc, "parse")
        event_id = self.identifier.identify(parsed.values, parsed.explicit_id)
        entry = JournalEntry(
            event_id=event_id,
            source=self.settings.source_id,
            received_at=item.received_at,
            **parsed.values,
        )
        key = LOOKUP
        if entry.has_contact and self.settings.preenriched == "write":
            entry, key = replace(entry, lookup=Lookup.PRESET), WRITE
        return Outgoing(key, entry.encode(), None, "application/json", item)

    def _dead(self, item: Accepted, error: BadInputError, reason: str) -> Outgoing:
        self.metrics.rejected.labels(reason).inc()
        raw = item.line.raw[: self.settings.max_dead_letter_bytes]
        log.warning("rejected a line from %s: %s: %r", item.origin, error, raw[:120])
        headers = dead_letter_headers(
            "gateway",
            error,
            attempt=1,
            extra={
                "x-cti-origin": item.origin,
                "x-cti-source": self.settings.source_id,
                "x-cti-raw-bytes": len(item.line.raw),
                "x-cti-received-at": f"{item.received_at:.3f}",
            },
        )
        return Outgoing(DEAD, raw, headers, "application/octet-stream", item)

    def _send(self, out: Outgoing) -> bool:
        def confirmed(ok: bool) -> None:
            if ok:
                self.confirmed += 1
                if out.item.on_published is not None:
                    out.item.on_published()
            else:
                self._resend.append(out)
            if not self._drain_scheduled:  # one drain per IOLoop turn, however many confirms
                self._drain_scheduled = True
                self.link.call_later(0, self._scheduled_drain)

        return self.link.publish(
            out.routing_key, out.body, confirmed, headers=out.headers,
            content_type=out.content_type,
        )  # fmt: skip
