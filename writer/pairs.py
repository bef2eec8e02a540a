"""Spotting a gateway pair whose members disagree on `gateway.source_id`.

Both gateways of a pair must hash the same source id into their event ids; with two different
ones every call gets two ids and is written twice, and nothing else would say so. The writer
sees both copies: the same call (same instant, direction, state, numbers, durations) from two
gateway names under two source ids. One such coincidence can happen between two real CTI
servers; many within a short window cannot, so after `threshold` of them the writer logs one
error naming both gateways and both source ids.
"""

from __future__ import annotations

import logging
import operator
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Final

from cti_journal.shared.message import JournalEntry
from cti_journal.writer.values import FIELDS, GATEWAY, SOURCE, EntryValues, values_of

log = logging.getLogger(__name__)
_Pair = tuple[tuple[str, str], tuple[str, str]]
# Memory is bounded by the settings, not by the input: an entry is remembered by the hash of its
# fields (an int: a number of 8 KB costs what one of 10 digits does), source and gateway names
# are cut, and at most MAX_PAIRS pairs of gateways are counted. Python's hash of a tuple that
# holds str is keyed per process (SipHash), so senders cannot make calls collide on purpose; a
# chance collision of 64 bits is one false coincidence of the `threshold` an error needs. It
# costs a third of the BLAKE2b digest of the fields' JSON it replaced, on every entry written.
_NAME_CHARS: Final = 128
MAX_PAIRS: Final = 1000
_call: Final = operator.itemgetter(
    *(FIELDS.index(name) for name in ("utc", "in_out", "verb_zustand", "rufnummer",
                                      "lokale_rufnummer", "rufdauer_ms", "verbdauer_sec"))
)  # fmt: skip


class PairCheck:
    def __init__(self, memory: int = 20_000, threshold: int = 20) -> None:
        self.memory = memory
        self.threshold = threshold
        self._recent: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._hits: Counter[_Pair] = Counter()

    def observe(self, entries: Iterable[JournalEntry]) -> None:
        self.observe_values(map(values_of, entries))

    def observe_values(self, batch: Iterable[EntryValues]) -> None:
        recent = self._recent
        for values in batch:
            key = hash(_call(values))
            sender = (values[SOURCE][:_NAME_CHARS], values[GATEWAY][:_NAME_CHARS])
            seen = recent.get(key)
            if seen is None:
                recent[key] = sender
                if len(recent) > self.memory:
                    recent.popitem(last=False)
                continue
            if seen[0] != sender[0] and seen[1] != sender[1]:
                self._mismatch(seen, sender)

    def _mismatch(self, one: tuple[str, str], other: tuple[str, str]) -> None:
        a, b = sorted((one, other))
        if (a, b) not in self._hits and len(self._hits) >= MAX_PAIRS:
            return  # a thousand disagreeing pairs have long been logged
        self._hits[(a, b)] += 1
        if self._hits[(a, b)] == self.threshold:
            log.error(
                "gateways %r (source_id %r) and %r (source_id %r) deliver the same calls: if "
                "they are a pair, give both the same gateway.source_id, or every call is "
                "written twice (seen %d times)",
                a[1], a[0], b[1], b[0], self.threshold,
            )  # fmt: skip
