"""Line → message, once per line, in the source's own thread.

Each source owns one `Preparer`, so the identity counter (gateway/identity.py) follows that
source's stream; a file tail can rebuild it by `observe`-ing the lines before its checkpoint.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.lines import Line, LineSplitter
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.consumer import dead_letter_headers
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.metrics import Metrics, make_metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.record import LineFormat
from cti_journal.shared.topology import DEAD, LOOKUP, WRITE

log = logging.getLogger(__name__)
_HEAD = struct.Struct(">HI")  # routing-key length, headers length
SKIP: Final = ""  # routing key of "nothing to publish": a privacy rule dropped the entry


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to publish: where to, what, with which headers."""

    routing_key: str
    body: bytes
    headers: dict[str, Any] | None = None
    content_type: str = "application/json"
    identity: bytes = b""  # the identifier's state after this entry (kept by the spool)

    def pack(self) -> bytes:
        key = self.routing_key.encode()
        headers = orjson.dumps(self.headers) if self.headers else b""
        return _HEAD.pack(len(key), len(headers)) + key + headers + self.body

    @classmethod
    def unpack(cls, data: bytes) -> Outgoing:
        key_len, headers_len = _HEAD.unpack_from(data)
        at = _HEAD.size
        key = data[at : at + key_len].decode()
        at += key_len
        headers = orjson.loads(data[at : at + headers_len]) if headers_len else None
        body = data[at + headers_len :]
        content_type = "application/octet-stream" if key == DEAD else "application/json"
        return cls(key, body, headers, content_type)


def line_format(settings: GatewaySettings) -> LineFormat:
    return LineFormat(
        settings.format, settings.separator, settings.fields, settings.encoding, settings.timezone
    )


# Why the gateway dead-letters a line (label `reason` of cti_journal_entries_rejected_total).
REJECT_REASONS = ("too_long", "whitespace", "parse", "unfinished")


class Preparer:
    def __init__(
        self, settings: GatewaySettings, metrics: Metrics, privacy: PrivacyRules | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.privacy = privacy  # [[privacy.rules]]: set by the Gateway
        self.format = line_format(settings)
        self.identifier = EventIdentifier(settings.source_id)
        self.name = settings.name or f"{socket.gethostname()}/{settings.source}"
        self._lock = threading.Lock()  # a listener's clients share one identity counter
        self._zero_rejections()

    def splitter(self) -> LineSplitter:
        """A line splitter for one stream of this source; it counts the empty lines."""
        return LineSplitter(self.settings.max_line_bytes, on_empty=self._count_empty)

    def _zero_rejections(self) -> None:
        """Every rejection reason as a series at 0 from the start: a panel of them shows 0
        rather than no data until the first bad line."""
        for reason in REJECT_REASONS:
            self.metrics.rejected.labels(reason)

    def _count_empty(self) -> None:
        self.metrics.blank_lines.labels("empty").inc()

    def restore(self, states: Iterable[bytes]) -> None:
        with self._lock:
            self.identifier.restore(states)

    def observe(self, line: Line) -> None:
        """Count a line already published before a restart, without publishing it again."""
        if line.oversized:
            return
        try:
            parsed = self.format.parse(line.raw)
        except BadInputError:
            return
        with self._lock:
            self.identifier.identify(parsed.values, parsed.explicit_id)

    def prepare(self, line: Line, origin: str, received_at: float) -> Outgoing:
        self.metrics.received.labels(self.settings.source_id).inc()
        if line.oversized:
            limit = self.settings.max_line_bytes
            error = BadInputError(f"line longer than gateway.max_line_bytes ({limit} bytes)")
            return self._dead(line, origin, received_at, error, "too_long")
        if not line.raw.strip():
            self.metrics.blank_lines.labels("whitespace").inc()
            error = BadInputError("a line of only whitespace")
            return self._dead(line, origin, received_at, error, "whitespace")
        try:
            parsed = self.format.parse(line.raw)
        except BadInputError as exc:
            return self._dead(line, origin, received_at, exc, "parse")
        with self._lock:
            event_id = self.identifier.identify(parsed.values, parsed.explicit_id)
            identity = self.identifier.last_state
        entry = JournalEntry.assemble(
            {
                "event_id": event_id,
                "source": self.settings.source_id,
                "received_at": received_at,
                "gateway": self.name,
                **parsed.values,  # every other field: the parser makes them all
            }
        )
        key = LOOKUP
        if entry.has_contact and self.settings.preenriched == "write":
            entry, key = entry.evolve(lookup=Lookup.PRESET), WRITE
        if self.privacy:  # rules of stage "before" (shared/privacy.py)
            kept, to_lookup = self.privacy.at_gateway(entry, key == LOOKUP)
            if kept is None:
                return Outgoing(SKIP, b"", identity=identity)
            entry, key = kept, LOOKUP if to_lookup else WRITE
        return Outgoing(key, entry.encode(), identity=identity)

    def prepare_unfinished(self, line: Line, origin: str, received_at: float) -> Outgoing:
        """The bytes after the last line break of a stream that ended: a dead letter, never an
        entry (the line may have been cut anywhere, even inside a number); `dlq replay` sends it
        on once an admin has checked it."""
        self.metrics.received.labels(self.settings.source_id).inc()
        error = BadInputError(
            f"the connection ended in the middle of a line ({len(line.raw)} bytes, no line break)"
        )
        return self._dead(line, origin, received_at, error, "unfinished")

    def _dead(
        self, line: Line, origin: str, received_at: float, error: BadInputError, reason: str
    ) -> Outgoing:
        self.metrics.rejected.labels(reason).inc()
        raw = line.raw[: self.settings.max_dead_letter_bytes]
        shown = mask_numbers_in(raw[:120].decode("utf-8", "backslashreplace"))
        log.warning("rejected a line from %s: %s: %r", origin, mask_numbers_in(str(error)), shown)
        headers = dead_letter_headers(
            "gateway",
            error,
            attempt=1,
            extra={
                "x-cti-origin": origin,
                "x-cti-source": self.settings.source_id,
                "x-cti-raw-bytes": len(line.raw),
                "x-cti-received-at": f"{received_at:.3f}",
            },
        )
        return Outgoing(DEAD, raw, headers, "application/octet-stream")


def reparser(settings: Settings) -> Callable[[bytes, Mapping[str, Any]], tuple[str, bytes]]:
    """For `cti-journal dlq replay`: a dead-lettered raw line → (routing key, message body).

    Raises BadInputError if the line still does not parse with the current settings."""
    rules = PrivacyRules.from_settings(settings)
    preparer = Preparer(settings.gateway, make_metrics(), rules or None)

    def reparse(raw: bytes, headers: Mapping[str, Any]) -> tuple[str, bytes]:
        if headers.get("x-cti-raw-bytes", len(raw)) > len(raw):
            raise BadInputError("only the first bytes of this line were kept; cannot replay it")
        line = Line(raw if raw.endswith(b"\n") else raw + b"\n")
        out = preparer.prepare(line, "dlq replay", time.time())
        if out.routing_key == DEAD:
            raise BadInputError(f"still does not parse: {(out.headers or {}).get('x-cti-reason')}")
        if out.routing_key == SKIP:
            raise BadInputError("a privacy rule drops this entry now: nothing to replay")
        return out.routing_key, out.body

    return reparse
