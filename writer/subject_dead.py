"""A data subject's entries in the dead-letter queue (`<prefix>.dead`): found for export, removed
for erasure.

A queue cannot delete a message in its middle. Erasure therefore takes every letter that was in
the queue when it started (`basic_get` up to the count the broker reported, none acknowledged
yet) and, letter by letter:

* a letter that is not the subject's is published again, unchanged (body, headers, properties;
  its expiration shortened by the time it already waited, so that retention does not restart),
  and acknowledged only after the broker **confirmed** the copy;
* a bundle holding the subject's entries and others is published again without the subject's
  entries (confirmed), then the original is acknowledged;
* a letter that is only the subject's is acknowledged: gone.

Nothing is lost: an original is acknowledged only after its replacement is confirmed; if the
command stops half-way (a refused publish, a lost connection, Ctrl-C), every letter it had not
acknowledged goes back to the queue when the channel closes; run it again. The worst case is a
letter both returned and already copied — `dlq list` then shows the two identical letters as
`<id>` and `<id>-2`, and either can be purged. Republishing (instead of rejecting with requeue)
also keeps the letters' delivery count from growing: a quorum queue with a delivery limit (the
default from RabbitMQ 4.0 on) drops a letter requeued too often.

Export and `--dry-run` take the letters the same way and give all of them back unchanged.
A letter is the subject's when an entry in it has the subject's number in Rufnummer or
Weitergeleitet (read as the journal rows are, writer/subject_match.py); a raw line that does not
parse is the subject's when any number in it, read as incoming or outgoing, is.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import pika
import pika.exceptions

from cti_journal.shared.amqp_params import connection_parameters
from cti_journal.shared.config import Settings
from cti_journal.shared.errors import BadInputError, ConfigError, describe
from cti_journal.shared.record import LineFormat
from cti_journal.shared.topology import DEAD
from cti_journal.writer.subject_match import SubjectFinder

Channel = Any  # pika's BlockingChannel; pika ships no type hints
_NUMBER_RUN: Final = re.compile(r"\+?\d[\d \-/().]{3,}\d")
_VOLATILE: Final = frozenset({"x-delivery-count"})
_ID_HEX: Final = 10


@dataclass
class DeadMatch:
    """One letter with the subject's data: its entries (dicts) or its raw line (text)."""

    id: str
    stage: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    raw_line: str = ""
    keep: bytes | None = None  # what stays of a bundle without the subject's entries


@dataclass
class DeadReport:
    queue: str
    scanned: int = 0
    matches: list[DeadMatch] = field(default_factory=list)
    removed: int = 0  # letters that were only the subject's
    trimmed: int = 0  # bundles published again without the subject's entries
    republished: int = 0  # other letters published again unchanged
    missing: bool = False  # no dead-letter queue on this broker


@dataclass
class _Letter:
    tag: int
    props: Any
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.props.headers or {})

    def digest(self) -> str:
        """The id `dlq list` shows for this letter (cli/dlq.py: stage, headers, body)."""
        stable = {k: v for k, v in self.headers.items() if k not in _VOLATILE}
        head = orjson.dumps(stable, default=str, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(head + b"\0" + self.body).hexdigest()[:_ID_HEX]


class DeadLetters:
    def __init__(self, settings: Settings, finder: SubjectFinder, wanted: set[str]) -> None:
        self.settings = settings
        self.finder = finder
        self.wanted = wanted
        self.queue = f"{settings.broker.prefix}.{DEAD}"
        g = settings.gateway
        self.line_format = LineFormat(g.format, g.separator, g.fields, g.encoding, g.timezone)

    # -- the broker -----------------------------------------------------------------------------
    def scan(self, *, erase: bool) -> DeadReport:
        report = DeadReport(self.queue)
        with self._channel() as channel:
            try:
                count = channel.queue_declare(self.queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:  # NOT_FOUND: no queue, no letters
                    report.missing = True
                    return report
                raise
            letters = self._take(channel, count)
            report.scanned = len(letters)
            found = [(letter, self.match(letter)) for letter in letters]
            report.matches = [m for _, m in found if m is not None]
            if erase:
                self._rewrite(channel, found, report)
        return report  # letters not acknowledged go back to the queue as the channel closes

    @contextmanager
    def _channel(self) -> Iterator[Channel]:
        last: Exception | None = None
        for url in self.settings.broker.urls:
            try:
                params = connection_parameters(url, self.settings.broker, "subject")
                conn = pika.BlockingConnection(params)
            except (pika.exceptions.AMQPError, OSError) as exc:
                last = exc
                continue
            try:
                channel = conn.channel()
                channel.confirm_delivery()
                yield channel
            finally:
                if conn.is_open:
                    conn.close()
            return
        why = describe(last) if last else "no URL"
        raise ConfigError(
            "broker.urls",
            f"no broker reachable for the dead letters ({why}); a request must cover them: "
            "try again when the broker is up (or --skip-dead-letters, which the audit records)",
        )

    def _take(self, channel: Channel, count: int) -> list[_Letter]:
        letters: list[_Letter] = []
        while len(letters) < count:
            method, props, body = channel.basic_get(self.queue, auto_ack=False)
            if method is None:
                break
            letters.append(_Letter(method.delivery_tag, props, body))
        return letters

    def _rewrite(
        self, channel: Channel, found: list[tuple[_Letter, DeadMatch | None]], report: DeadReport
    ) -> None:
        for letter, match in found:
            if match is None:
                self._publish(channel, letter, letter.body)
                report.republished += 1
            elif match.keep is not None:
                self._publish(channel, letter, match.keep)
                report.trimmed += 1
            else:
                report.removed += 1
            channel.basic_ack(letter.tag)  # only after the copy above was confirmed

    def _publish(self, channel: Channel, letter: _Letter, body: bytes) -> None:
        props = letter.props
        headers = {k: v for k, v in letter.headers.items() if k not in _VOLATILE}
        # BlockingChannel with confirms: returns once the broker confirmed; raises if it refused
        # (NackError) or could not route (UnroutableError) - then nothing more is acknowledged.
        channel.basic_publish(
            self.settings.broker.prefix,
            DEAD,
            body,
            pika.BasicProperties(
                delivery_mode=2,
                content_type=props.content_type,
                headers=headers,
                expiration=_remaining(props.expiration, headers),
            ),
            mandatory=True,
        )

    # -- matching -------------------------------------------------------------------------------
    def match(self, letter: _Letter) -> DeadMatch | None:
        stage = str(letter.headers.get("x-cti-stage", "?"))
        entries = _entries(letter.body)
        if entries is None:
            return self._match_line(letter, stage)
        mine = [e for e in entries if self._is_subjects(e)]
        if not mine:
            return None
        rest = [e for e in entries if not self._is_subjects(e)]
        keep = None
        if rest:
            keep = orjson.dumps(rest[0]) if len(rest) == 1 else orjson.dumps(rest)
        return DeadMatch(letter.digest(), stage, entries=mine, keep=keep)

    def _is_subjects(self, entry: dict[str, Any]) -> bool:
        amts, in_out = entry.get("amtsholung", ""), entry.get("in_out", "")
        for key in ("rufnummer", "weitergeleitet"):
            value = entry.get(key)
            if (
                isinstance(value, str)
                and value.strip()
                and self.finder.is_subject(value, amts, in_out, self.wanted)
            ):
                return True
        return False

    def _match_line(self, letter: _Letter, stage: str) -> DeadMatch | None:
        text = letter.body.decode("utf-8", "replace")
        try:
            values = self.line_format.parse(letter.body).values
        except (BadInputError, ValueError):
            values = None
        if values is not None:
            if not self._is_subjects(values):
                return None
        elif not self._any_number_is_subjects(text):
            return None
        return DeadMatch(letter.digest(), stage, raw_line=text)

    def _any_number_is_subjects(self, text: str) -> bool:
        """A line that does not parse: its direction is unknown, so each number in it is read
        both ways; only a complete reading equal to the subject's counts."""
        for run in _NUMBER_RUN.findall(text):
            for in_out in ("i", "o"):
                if self.finder.is_subject(run, "", in_out, self.wanted):
                    return True
        return False


def _entries(body: bytes) -> list[dict[str, Any]] | None:
    """The entries of a JSON letter (one entry or a bundle), None for a raw line."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and "event_id" in data:
        return [data]
    if isinstance(data, list) and data and all(isinstance(e, dict) for e in data):
        return list(data)
    return None


def _remaining(expiration: str | None, headers: dict[str, Any]) -> str | None:
    """The letter's expiration (ms) less the time it has waited since it was dead-lettered, so
    that publishing it again does not give it a new retention period."""
    if not expiration:
        return None
    try:
        ttl_ms = int(expiration)
        failed_at = headers.get("x-cti-failed-at")
        since = calendar.timegm(time.strptime(str(failed_at), "%Y-%m-%dT%H:%M:%SZ"))
    except (ValueError, TypeError):
        return expiration  # no time of its own: it keeps its period (at most once more)
    waited_ms = max(0, int((time.time() - since) * 1000))
    return str(max(1, ttl_ms - waited_ms))
