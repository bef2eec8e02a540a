"""Log lines whose number an outsider decides (garbage lines, refused clients), at a bounded
rate: at most one line per reason and interval, with how many were left out since.

A flood of 5,000 garbage lines costs one warning per reason and minute, not 5,000; the metrics
still count every one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Final

EVERY_S: Final = 60.0
MAX_REASONS: Final = 1000  # reasons are the project's own words, but keep the table bounded


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, every_s: float = EVERY_S) -> None:
        self.logger = logger
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # reason -> (logged at, left out since)

    def warning(
        self, reason: str, msg: str, *args: Any, extra: dict[str, Any] | None = None
    ) -> bool:
        """Log `msg % args` unless a line of this reason was logged less than `every_s` ago;
        True if it was logged."""
        now = time.monotonic()
        with self._lock:
            last, left_out = self._last.get(reason, (None, 0))
            if last is not None and now - last < self.every_s:
                self._last[reason] = (last, left_out + 1)
                return False
            if len(self._last) >= MAX_REASONS:
                self._last.clear()
            self._last[reason] = (now, 0)
        if left_out:
            msg += " (and %d more of this kind in the last %.0f s, not logged)"
            args = (*args, left_out, self.every_s)
        self.logger.warning(msg, *args, extra=extra)
        return True
