"""Stable event ids.

The id of an entry is the first 128 bits of SHA-256 over (source id, the entry's parsed values
in canonical form, n), where n counts how many *identical* entries the same source produced
before it. So:

* the same entry re-read (a restarted file tail, a backfill run twice, the day.log entries that
  reappear in journal.log) gets the same id: the n-th identical line is the n-th again;
* two genuinely different calls that produce identical lines (same second, number and state)
  get different ids (n = 0 and n = 1) and become two rows.

Parsed values are used, not raw bytes, so CRLF vs LF or delimited vs JSON do not change the id.
A sender that assigns its own id (JSON key "id") gets H(source, "id", that id) instead, and a
pushing client of a listening gateway H(source, "id", its identity, that id): the identity is
its certificate's subject, or without client certificates its address, so one client cannot
make another client's calls duplicates by sending their ids. A TCP client source and a file
tail have one sender (the configured server), so the members of a gateway pair, which read the
same server, give the same id to the same explicit id.
The counter remembers the last `memory` distinct entries; identical lines are adjacent in time
(Zeitpunkt is part of the content), so a bounded memory loses nothing in practice.

**A gateway pair** (two gateways reading the same CTI server) gives each call the same id on
both, and the writer's ledger keeps one row, if both use the same `gateway.source_id` (it is
hashed into every id: two source ids = every call written twice). Across a restart of one of
them:

* a gateway's n for a line is never *higher* than the true one (the number of identical lines
  the server sent before it): n counts only what this gateway received, and a TCP source never
  receives a line twice. So a restart can never make a new id, and never a second row;
* it can be *lower* when the gateway did not receive an earlier identical line: one that came
  while it was down or reconnecting, or, without the spool's saved states (`restore`, from the
  newest spool segments), one received before the restart. Its copy then takes the id of that
  earlier identical call, which the partner wrote, and is skipped; the partner's copy, with the
  right n, is written;
* so the residual risk is a call lost when **both** gateways miss an identical call before it:
  both down or restarting within the same run of identical lines (same second, number, state
  and durations) — a double fault within about a second. A file source counts exactly from the
  file after any restart.
"""

from __future__ import annotations

import hashlib
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

STATE_BYTES = 36  # SHA-256 of the content + n as 4 bytes

_CANONICAL_KEYS = (
    "in_out", "zeitpunkt", "verb_zustand", "rufnummer", "name", "firma", "lokale_rufnummer",
    "weitergeleitet", "datensatz_id", "datensatz_tabelle", "rufdauer_ms", "verbdauer_sec", "lcr",
    "gebuehren", "amtsholung",
)  # fmt: skip


_canonical: Final = operator.itemgetter(*_CANONICAL_KEYS)


class EventIdentifier:
    def __init__(self, source_id: str, memory: int = 100_000) -> None:
        self.source_id = source_id
        self.memory = memory
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self.last_state = b""

    def identify(
        self, values: Mapping[str, Any], explicit_id: str | None = None, sender: str = ""
    ) -> str:
        """The entry's id; afterwards `last_state` holds what `restore` needs to continue.
        `sender` scopes an explicit id to the client that sent it ("" = the one server)."""
        if explicit_id is not None:
            self.last_state = b""
            scope = [self.source_id, "id", sender] if sender else [self.source_id, "id"]
            return _digest(orjson.dumps([*scope, explicit_id]))
        try:
            canonical = _canonical(values)  # the parser makes every key
        except KeyError:
            canonical = tuple(values.get(k) for k in _CANONICAL_KEYS)
        return self.identify_canonical(canonical)

    def identify_canonical(self, canonical: tuple[Any, ...]) -> str:
        """`identify` for values already in canonical order (`_CANONICAL_KEYS`, which is the
        order of shared/record.py's FIELDS) without an explicit id: the batch path's entry."""
        content = orjson.dumps((self.source_id, *canonical))
        # One pass over the content for both hashes: the key is the digest so far, the id the
        # digest after `#n` (the same bytes as hashing content + b"#n" anew).
        hashed = hashlib.sha256(content)
        key = hashed.digest()
        seen = self._seen
        n = seen.pop(key, -1) + 1
        seen[key] = n
        if len(seen) > self.memory:
            seen.popitem(last=False)
        self.last_state = key + n.to_bytes(4, "big")
        hashed.update(b"#%d" % n)
        return hashed.hexdigest()[:32]

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
