"""Stable event ids.

The id of an entry is the first 128 bits of SHA-256 over (source id, the entry's parsed values
in canonical form, n), where n counts how many *identical* entries the same source produced
before it. So:

* the same entry re-read (a restarted file tail, a backfill run twice, the day.log entries that
  reappear in journal.log) gets the same id: the n-th identical line is the n-th again;
* two genuinely different calls that produce identical lines (same second, number and state)
  get different ids (n = 0 and n = 1) and become two rows.

Parsed values are used, not raw bytes, so CRLF vs LF or delimited vs JSON do not change the id.
A sender that assigns its own id (JSON key "id") gets H(source, "id", that id) instead.
The counter remembers the last `memory` distinct entries; identical lines are adjacent in time
(Zeitpunkt is part of the content), so a bounded memory loses nothing in practice.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

STATE_BYTES = 36  # SHA-256 of the content + n as 4 bytes

_CANONICAL_KEYS = (
    "in_out", "zeitpunkt", "verb_zustand", "rufnummer", "name", "firma", "lokale_rufnummer",
    "weitergeleitet", "datensatz_id", "datensatz_tabelle", "rufdauer_ms", "verbdauer_sec", "lcr",
    "gebuehren", "amtsholung",
)  # fmt: skip


class EventIdentifier:
    def __init__(self, source_id: str, memory: int = 100_000) -> None:
        self.source_id = source_id
        self.memory = memory
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self.last_state = b""

    def identify(self, values: Mapping[str, Any], explicit_id: str | None = None) -> str:
        """The entry's id; afterwards `last_state` holds what `restore` needs to continue."""
        if explicit_id is not None:
            self.last_state = b""
            return _digest(orjson.dumps([self.source_id, "id", explicit_id]))
        content = orjson.dumps([self.source_id, *(values.get(k) for k in _CANONICAL_KEYS)])
        key = hashlib.sha256(content).digest()
        n = self._seen.pop(key, -1) + 1
        self._remember(key, n)
        self.last_state = key + n.to_bytes(4, "big")
        return _digest(content + b"#%d" % n)

    def restore(self, states: Iterable[bytes]) -> None:
        """Continue counting after a restart from `last_state`s kept durably (the spool): the
        n-th identical call after the restart must not get an id that an earlier one had."""
        for state in states:
            if len(state) != STATE_BYTES:
                continue
            key, n = state[:32], int.from_bytes(state[32:], "big")
            self._remember(key, max(n, self._seen.pop(key, -1)))

    def _remember(self, key: bytes, n: int) -> None:
        self._seen[key] = n
        if len(self._seen) > self.memory:
            self._seen.popitem(last=False)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]
