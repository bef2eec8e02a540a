"""Metric label values that come from messages, bounded by configuration.

A label value read from a message (the `gateway` an entry names) is a new time series for every
distinct value: 10,000 made-up gateway names were 10,000 series and 41 MB of `/metrics`. So a
value gets its own series only if the configuration names it, or, while the configuration names
none, if it is among the first `max_seen` values met (a pair's two gateways and a few more);
every other value is counted under OTHER.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

OTHER: Final = "other"


class BoundedLabels:
    def __init__(self, configured: Iterable[str] = (), max_seen: int = 8) -> None:
        self._known = set(configured)
        self._fixed = bool(self._known)  # configured: exactly those, nothing learnt
        self._max = max_seen
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._known:
            return value
        if self._fixed:
            return OTHER
        with self._lock:
            if len(self._known) < self._max:
                self._known.add(value)
                return value
        return OTHER
