"""Line → message, once per line, in the source's own thread.

Each source owns one `Preparer`, so the identity counter (gateway/identity.py) follows that
source's stream; a file tail can rebuild it by `observe`-ing the lines before its checkpoint.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

import orjson

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.lines import Line, LineSplitter
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.consumer import dead_letter_headers
from cti_journal.shared.convert import length
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.masking import mask_name, mask_numbers_in
from cti_journal.shared.message import SCHEMA_VERSION, JournalEntry, Lookup
from cti_journal.shared.metrics import Metrics, make_metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.ratelog import RateLimitedLog
from cti_journal.shared.record import LineFormat, PlainLines
from cti_journal.shared.topology import DEAD, LOOKUP, WRITE

log = logging.getLogger(__name__)
_HEAD = struct.Struct(">HI")  # routing-key length, headers length
SKIP: Final = ""  # routing key of "nothing to publish": a privacy rule dropped the entry


class Outgoing(NamedTuple):
    """A message ready to publish: where to, what, with which headers. A NamedTuple rather
    than a frozen dataclass: one is made per entry twice (prepared, read back from the spool),
    at less than half the cost."""

    routing_key: str
    body: bytes
    headers: dict[str, Any] | None = None
    content_type: str = "application/json"
    identity: bytes = b""  # the identifier's state after this entry (kept by the spool)

    def pack(self) -> bytes:
        if not self.headers:
            head = _HEADS.get(self.routing_key)
            if head is None:
                head = _HEADS[self.routing_key] = _head(self.routing_key, b"")
            return head + self.body
        return _head(self.routing_key, orjson.dumps(self.headers)) + self.body

    @classmethod
    def unpack(cls, data: bytes, start: int = 0, end: int | None = None) -> Outgoing:
        """The message `pack` made, from `data[start:end]` (a spool record: no copy of it)."""
        key_len, headers_len = _HEAD.unpack_from(data, start)
        at = start + _HEAD.size
        key_bytes = data[at : at + key_len]
        key = _KEYS.get(key_bytes)
        if key is None:
            key = key_bytes.decode()
            if len(_KEYS) < 64:  # the topology's few keys, not whatever a corrupt spool holds
                _KEYS[key_bytes] = key
        at += key_len
        headers = orjson.loads(data[at : at + headers_len]) if headers_len else None
        body = data[at + headers_len : end]
        content_type = "application/octet-stream" if key == DEAD else "application/json"
        return cls(key, body, headers, content_type)


def _head(routing_key: str, headers: bytes) -> bytes:
    key = routing_key.encode()
    return _HEAD.pack(len(key), len(headers)) + key + headers


_HEADS: dict[str, bytes] = {}  # routing key -> `pack`'s bytes before the body, without headers
_KEYS: dict[bytes, str] = {}  # `unpack`'s routing keys


def line_format(settings: GatewaySettings) -> LineFormat:
    return LineFormat(
        settings.format, settings.separator, settings.fields, settings.encoding, settings.timezone
    )


# Why the gateway dead-letters a line (label `reason` of cti_journal_entries_rejected_total).
REJECT_REASONS = ("too_long", "whitespace", "parse", "unfinished", "unexpected")


class Preparer:
    def __init__(
        self, settings: GatewaySettings, metrics: Metrics, privacy: PrivacyRules | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.privacy = privacy  # [[privacy.rules]]: set by the Gateway
        self.format = line_format(settings)
        plain = PlainLines(self.format)
        # The batch path for plain lines (`prepare_lines`); None: every line takes `prepare`.
        self._plain = plain if plain.usable and ENTRY_BODY_MATCHES else None
        self.identifier = EventIdentifier(settings.source_id)
        self.name = settings.name or f"{socket.gethostname()}/{settings.source}"
        self._lock = threading.Lock()  # a listener's clients share one identity counter
        # One warning per reason and minute, however many garbage lines a flood has.
        self._rejections = RateLimitedLog(log)
        self._zero_rejections()
        # The labelled child once, not a labels() look-up (a lock and a dict) per line.
        self._received = metrics.received.labels(settings.source_id)

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
        except Exception:  # BadInputError, or a bug `prepare` dead-lettered the line for
            return
        with self._lock:
            self.identifier.identify(parsed.values, parsed.explicit_id)

    def prepare(self, line: Line, origin: str, received_at: float, sender: str = "") -> Outgoing:
        """The message for one line: an entry, a dead letter, or SKIP. `sender` is the pushing
        client's identity (listen mode; "" for the one configured server)."""
        self._received.inc()
        try:
            return self._prepare(line, origin, received_at, sender)
        except BadInputError as exc:
            return self._dead(line, origin, received_at, exc, "parse")
        except Exception as exc:
            # Every conversion of outside text raises BadInputError (shared/convert.py); this is
            # a bug that input found. One line is dead-lettered (replayable once fixed), the
            # source and every other line go on.
            log.exception("preparing a line from %s failed unexpectedly", origin)
            error = BadInputError(f"unexpected {type(exc).__name__} while preparing the line")
            return self._dead(line, origin, received_at, error, "unexpected")

    def _prepare(self, line: Line, origin: str, received_at: float, sender: str) -> Outgoing:
        if line.oversized:
            limit = self.settings.max_line_bytes
            error = BadInputError(f"line longer than gateway.max_line_bytes ({limit} bytes)")
            return self._dead(line, origin, received_at, error, "too_long")
        if not line.raw.strip():
            self.metrics.blank_lines.labels("whitespace").inc()
            error = BadInputError("a line of only whitespace")
            return self._dead(line, origin, received_at, error, "whitespace")
        parsed = self.format.parse(line.raw)
        with self._lock:
            event_id = self.identifier.identify(parsed.values, parsed.explicit_id, sender)
            identity = self.identifier.last_state
        values = parsed.values  # this line's own dict: completed in place, not copied
        values["event_id"] = event_id
        values["source"] = self.settings.source_id
        values["received_at"] = received_at
        values["gateway"] = self.name
        entry = JournalEntry.assemble(values)  # every other field: the parser makes them all
        key = LOOKUP
        if entry.has_contact and self.settings.preenriched == "write":
            entry, key = entry.evolve(lookup=Lookup.PRESET), WRITE
        if self.privacy:  # rules of stage "before" (shared/privacy.py)
            kept, to_lookup = self.privacy.at_gateway(entry, key == LOOKUP)
            if kept is None:
                return Outgoing(SKIP, b"", identity=identity)
            entry, key = kept, LOOKUP if to_lookup else WRITE
        return Outgoing(key, entry.encode(), identity=identity)

    def prepare_lines(
        self, lines: Iterable[Line], origin: str, received_at: float, sender: str = ""
    ) -> list[Outgoing]:
        """`prepare` for each line of one read, in order, with the same results: plain lines
        (shared/record.py `PlainLines`: what a CTI server writes) go from the line's bytes to the
        message's body without a `JournalEntry` object or a per-line metric update; any other
        line, and every line when privacy rules are set, takes `prepare`."""
        plain = self._plain
        if plain is None or self.privacy:
            return [self.prepare(line, origin, received_at, sender) for line in lines]
        values_of = plain.values
        lock = self._lock
        identifier = self.identifier
        identify = identifier.identify_canonical
        source, name = self.settings.source_id, self.name
        preset = self.settings.preenriched == "write"
        outs: list[Outgoing] = []
        fast = 0
        for line in lines:
            try:
                parsed = None if line.oversized else values_of(line.raw)
            except Exception:  # a bug this line found: `prepare` dead-letters it with a reason
                parsed = None
            if parsed is None:
                outs.append(self.prepare(line, origin, received_at, sender))
                continue
            fast += 1
            values, utc = parsed
            # has_contact: a name or a record id (JournalEntry.has_contact)
            if preset and (values[_NAME] or values[_DATENSATZ_ID]):
                key, lookup = WRITE, Lookup.PRESET
            else:
                key, lookup = LOOKUP, Lookup.PENDING
            try:
                with lock:
                    event_id = identify(values)
                    identity = identifier.last_state
                body = entry_body(event_id, source, received_at, values, utc, lookup, name)
            except Exception as exc:  # as in `prepare`: the line dead-lettered, the source goes on
                log.exception("preparing a line from %s failed unexpectedly", origin)
                error = BadInputError(f"unexpected {type(exc).__name__} while preparing the line")
                outs.append(self._dead(line, origin, received_at, error, "unexpected"))
                continue
            outs.append(Outgoing(key, body, None, "application/json", identity))
        if fast:
            self._received.inc(fast)
        return outs

    def prepare_unfinished(self, line: Line, origin: str, received_at: float) -> Outgoing:
        """The bytes after the last line break of a stream that ended: a dead letter, never an
        entry (the line may have been cut anywhere, even inside a number); `dlq replay` sends it
        on once an admin has checked it."""
        self._received.inc()
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
        self._rejections.warning(
            reason, "rejected a line from %s: %s: %r", origin, mask_numbers_in(str(error)), shown
        )
        raw, redacted = protect_unread(raw, self.privacy)
        headers = dead_letter_headers(
            "gateway",
            error,
            attempt=1,
            extra={
                "x-cti-origin": origin,
                "x-cti-source": self.settings.source_id,
                "x-cti-raw-bytes": len(line.raw),
                "x-cti-received-at": f"{received_at:.3f}",
                **({"x-cti-redacted": redacted} if redacted else {}),
            },
        )
        return Outgoing(DEAD, raw, headers, "application/octet-stream")


_NAME: Final = 4  # positions in PlainLines.values' tuple (shared/record.py FIELDS)
_DATENSATZ_ID: Final = 8


def entry_body(
    event_id: str,
    source: str,
    received_at: float,
    values: tuple[Any, ...],
    utc: str,
    lookup: str,
    gateway: str,
) -> bytes:
    """`JournalEntry.encode()` of the entry `prepare` makes from these values, byte for byte,
    without the object: a dict in the dataclass's field order (ENTRY_BODY_MATCHES checks)."""
    (in_out, zeitpunkt, verb_zustand, rufnummer, name, firma, lokale_rufnummer, weitergeleitet,
     datensatz_id, datensatz_tabelle, rufdauer_ms, verbdauer_sec, lcr, gebuehren,
     amtsholung) = values  # fmt: skip
    return orjson.dumps(
        {
            "event_id": event_id,
            "source": source,
            "received_at": received_at,
            "in_out": in_out,
            "zeitpunkt": zeitpunkt,
            "utc": utc,
            "verb_zustand": verb_zustand,
            "rufnummer": rufnummer,
            "name": name,
            "firma": firma,
            "lokale_rufnummer": lokale_rufnummer,
            "weitergeleitet": weitergeleitet,
            "datensatz_id": datensatz_id,
            "datensatz_tabelle": datensatz_tabelle,
            "rufdauer_ms": rufdauer_ms,
            "verbdauer_sec": verbdauer_sec,
            "lcr": lcr,
            "gebuehren": gebuehren,
            "amtsholung": amtsholung,
            "lookup": lookup,
            "v": SCHEMA_VERSION,
            "gateway": gateway,
        }
    )


def _entry_body_matches() -> bool:
    """True while `entry_body` writes what `JournalEntry.encode` writes (shared/message.py is
    another module's: a field added or reordered there turns the batch path off, never makes
    it write another message)."""
    texts = ("i", "2024-01-02 03:04:05", "RING", "1", "n", "f", "2", "3", "d", "t")
    values = (*texts, 7, None, "l", 0, "a")
    body = entry_body("e", "s", 1.5, values, "2024-01-02T02:04:05Z", Lookup.PRESET, "g")
    fields = dict(zip(_ENTRY_VALUE_KEYS, values, strict=True))
    entry = JournalEntry.assemble(
        {**fields, "event_id": "e", "source": "s", "received_at": 1.5,
         "utc": "2024-01-02T02:04:05Z", "lookup": Lookup.PRESET, "gateway": "g"}
    )  # fmt: skip
    return body == entry.encode()


_ENTRY_VALUE_KEYS: Final = (
    "in_out", "zeitpunkt", "verb_zustand", "rufnummer", "name", "firma", "lokale_rufnummer",
    "weitergeleitet", "datensatz_id", "datensatz_tabelle", "rufdauer_ms", "verbdauer_sec", "lcr",
    "gebuehren", "amtsholung",
)  # fmt: skip
ENTRY_BODY_MATCHES: Final = _entry_body_matches()


# How much a `before` rule's action takes away, least to most.
_STRICTNESS: Final = ("keep", "shorten", "pseudonymise", "anonymise", "drop")


def protect_unread(raw: bytes, privacy: PrivacyRules | None) -> tuple[bytes, str]:
    """A line that does not parse cannot be shown to be outside a `before` rule, whose promise is
    that the number never reaches the broker: its dead letter gets the strictest such rule.
    `drop` keeps no byte of it; any other action keeps its shape only (separators, field count,
    the first letter of each word, no digit of a number), enough to see why it did not parse.
    Returns the bytes to keep and the `x-cti-redacted` header ("" = kept as read)."""
    before = [r for r in (privacy.rules if privacy else ()) if r.rule.stage == "before"]
    if not before:
        return raw, ""
    rule = max(before, key=lambda r: _STRICTNESS.index(r.rule.action))
    action = rule.rule.action
    if action == "keep":
        return raw, ""
    if action == "drop":
        return b"", f"dropped: the line did not parse and privacy rule {rule.label} drops"
    text = mask_numbers_in(raw.decode("utf-8", "replace"), keep=0)
    text = re.sub(r"[^\W\d_]{2,}", lambda m: mask_name(m.group(0)), text)
    why = f"masked: the line did not parse and privacy rule {rule.label} protects numbers"
    return text.encode("utf-8"), why


def reparser(settings: Settings) -> Callable[[bytes, Mapping[str, Any]], tuple[str, bytes]]:
    """For `cti-journal dlq replay`: a dead-lettered raw line → (routing key, message body).

    Raises BadInputError if the line still does not parse with the current settings."""
    rules = PrivacyRules.from_settings(settings)
    preparer = Preparer(settings.gateway, make_metrics(), rules or None)

    def reparse(raw: bytes, headers: Mapping[str, Any]) -> tuple[str, bytes]:
        if headers.get("x-cti-redacted"):
            raise BadInputError(f"not the line as read ({headers['x-cti-redacted']}): no replay")
        # a header of a message anyone with broker access could have written: convert.length
        kept = length(headers.get("x-cti-raw-bytes", len(raw)), "header x-cti-raw-bytes", 2**40)
        if kept > len(raw):
            raise BadInputError("only the first bytes of this line were kept; cannot replay it")
        line = Line(raw if raw.endswith(b"\n") else raw + b"\n")
        out = preparer.prepare(line, "dlq replay", time.time())
        if out.routing_key == DEAD:
            raise BadInputError(f"still does not parse: {(out.headers or {}).get('x-cti-reason')}")
        if out.routing_key == SKIP:
            raise BadInputError("a privacy rule drops this entry now: nothing to replay")
        return out.routing_key, out.body

    return reparse
