"""A lookup worker: consume from <prefix>.lookup, enrich, publish to the writer's queue, ack.

Any number of these run on any hosts; the broker spreads entries over them by prefetch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cti_journal.lookup.contacts import Match
from cti_journal.lookup.enrich import Finder, enrich_fields, enrich_match
from cti_journal.lookup.sources.query import CallQueries
from cti_journal.shared.amqp import AmqpLink
from cti_journal.shared.config import BrokerSettings, LookupSettings
from cti_journal.shared.consumer import Consumer, Delivery
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import (
    EntryFields,
    JournalEntry,
    Lookup,
    decode_bundle_fields,
    encode_bundle,
    encode_fields,
)
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.topology import LOOKUP, WRITE

log = logging.getLogger(__name__)


class LookupWorker:
    def __init__(
        self,
        broker: BrokerSettings,
        settings: LookupSettings,
        index: Callable[[], Finder],
        metrics: Metrics,
        privacy: PrivacyRules | None = None,
        queries: CallQueries | None = None,
    ) -> None:
        self.settings = settings
        self.privacy = privacy  # [[privacy.rules]] of stage "after"
        self.index = index
        self.queries = queries  # per-call CRM queries for numbers the index misses
        self.metrics = metrics
        self.link = AmqpLink(
            broker, name="lookup", metrics=metrics, on_ready=self._ready, on_lost=self._lost
        )
        self.consumer = Consumer(
            self.link, LOOKUP, settings.prefetch, self._handle, settings.prefetch_bytes
        )
        # Bound once: .labels() per message showed up in the profile.
        self._by_result = {r: metrics.lookups.labels(r) for r in Lookup.ALL}

    def run(self) -> None:
        self.link.run()

    def stop(self) -> None:
        self.link.stop()

    def _ready(self) -> None:
        self.consumer.start()

    def _lost(self) -> None:
        self.consumer.lost()

    def _handle(self, delivery: Delivery) -> None:
        """One message (one entry or a bundle) in, one message with as many entries out."""
        if not self.queries and not self.privacy:
            self._handle_fields(delivery)
            return
        entries = self.consumer.entries(delivery)
        if entries is None:
            return
        index = self.index()
        if self.queries:
            # Waits at most the sources' query_timeout_s for the whole message.
            index = self.queries.finder(index, entries, relookup=self.settings.relookup)
        bodies: list[bytes] = []
        failures: list[tuple[bytes, BaseException]] = []
        for entry in entries:
            try:
                kept = self._one(entry, index)
            except Exception as exc:
                # One entry's fault is that entry's: it goes to retry or the dead letters alone
                # (BadInputError at once), and the rest of its bundle goes on (issue 20, #1).
                if not isinstance(exc, BadInputError):
                    log.exception("event %s: look-up failed", entry.event_id)
                failures.append((entry.encode(), exc))
                continue
            if kept is not None:  # None: dropped by a privacy rule, not journalled
                bodies.append(kept.encode())
        self._settle(delivery, encode_bundle(bodies) if bodies else None, failures)

    def _handle_fields(self, delivery: Delivery) -> None:
        """`_handle` without entry objects, when no rule or query needs one: each entry's
        decoded fields are enriched in place and the bundle encoded again in one call
        (lookup/enrich.py `enrich_fields`); the same outcomes. The results are counted per
        message, not per entry."""
        try:
            entries = decode_bundle_fields(delivery.body)
        except BadInputError as exc:
            self.consumer.fail(delivery, exc)
            return
        index = self.index()
        relookup = self.settings.relookup
        kept: list[EntryFields] = []
        failures: list[tuple[bytes, BaseException]] = []
        results: dict[str, int] = {}
        ambiguous: list[Match] = []
        for data in entries:
            try:
                match = enrich_fields(data, index, relookup=relookup)
            except Exception as exc:  # the fields are unchanged: the entry as it came
                if not isinstance(exc, BadInputError):
                    log.exception("event %s: look-up failed", data.event_id)
                failures.append((encode_fields([data]), exc))
                continue
            results[data.lookup] = results.get(data.lookup, 0) + 1
            if match is not None and match.ambiguous:
                ambiguous.append(match)
            kept.append(data)
        for result, count in results.items():
            self._by_result[result].inc(count)
        for match in ambiguous:
            count_match(self.metrics, match)
        self._settle(delivery, encode_fields(kept) if kept else None, failures)

    def _settle(
        self,
        delivery: Delivery,
        body: bytes | None,
        failures: list[tuple[bytes, BaseException]],
    ) -> None:
        """The message's outcome: the enriched entries (if any) on to the writers, the failed
        ones each to its retry or dead letter."""
        forward = (WRITE, body) if body is not None else None
        if failures:
            self.consumer.settle_parts(delivery, failures, forward)
        elif forward is not None:
            self.consumer.forward(delivery, *forward)
        else:
            self.consumer.complete(delivery)

    def _one(self, entry: JournalEntry, index: Finder) -> JournalEntry | None:
        enriched, match = enrich_match(entry, index, relookup=self.settings.relookup)
        self._by_result[enriched.lookup].inc()
        count_match(self.metrics, match)
        return self.privacy.after_lookup(enriched) if self.privacy else enriched


def count_match(metrics: Metrics, match: Match | None) -> None:
    """Ambiguous look-ups, and among them those where nothing decided between persons."""
    if match is not None and match.ambiguous:
        metrics.lookup_ambiguous.inc()
        if match.undecided:
            metrics.lookup_undecided.inc()
