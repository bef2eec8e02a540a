"""Spotting a gateway pair whose members disagree on `gateway.source_id`.

Both gateways of a pair must hash the same source id into their event ids; with two different
ones every call gets two ids and is written twice, and nothing else would say so. The writer
sees both copies: the same call (same instant, direction, state, numbers, durations) from two
gateway names under two source ids. One such coincidence can happen between two real CTI
servers; many within a short window cannot, so after `threshold` of them the writer logs one
error naming both gateways and both source ids.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Final

import orjson

from cti_journal.shared.message import JournalEntry

log = logging.getLogger(__name__)
_Pair = tuple[tuple[str, str], tuple[str, str]]
# Memory is bounded by the settings, not by the input: an entry is remembered by a 16-byte
# digest of its fields (a number of 8 KB costs what one of 10 digits does), source and gateway
# names are cut, and at most MAX_PAIRS pairs of gateways are counted.
_NAME_CHARS: Final = 128
MAX_PAIRS: Final = 1000


class PairCheck:
    def __init__(self, memory: int = 20_000, threshold: int = 20) -> None:
        self.memory = memory
        self.threshold = threshold
        self._recent: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self._hits: Counter[_Pair] = Counter()

    def observe(self, entries: Iterable[JournalEntry]) -> None:
        for e in entries:
            fields = (e.utc, e.in_out, e.verb_zustand, e.rufnummer, e.lokale_rufnummer,
                      e.rufdauer_ms, e.verbdauer_sec)  # fmt: skip
            key = hashlib.blake2b(orjson.dumps(fields), digest_size=16).digest()
            sender = (e.source[:_NAME_CHARS], e.gateway[:_NAME_CHARS])
            seen = self._recent.get(key)
            if seen is None:
                self._recent[key] = sender
                if len(self._recent) > self.memory:
                    self._recent.popitem(last=False)
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
