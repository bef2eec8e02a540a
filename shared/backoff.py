"""The project's one retry policy: exponential backoff with full jitter, capped, with one log line
per change of state (failing / recovered), so that a reconnect loop never floods the log.

Every reconnect and retry path uses it (the CTI link, the broker link, the journal database, the
simulator's push client), so that a change of policy is made in one place.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Backoff:
    """`delay()` grows first_s, 2×, 4×, … up to max_s; each is jittered to [½, 1] of itself so that
    many workers that lost the same server do not come back in step."""

    first_s: float = 0.5
    max_s: float = 30.0
    attempts: int = 0
    failing_since: float | None = field(default=None)

    def delay(self) -> float:
        """The next wait, and count one more failure."""
        base: float = min(self.max_s, self.first_s * 2.0 ** min(self.attempts, 32))
        self.attempts += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        return float(base * random.uniform(0.5, 1.0))

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the next delay; True if `stop` was set meanwhile."""
        return stop.wait(self.delay())

    @property
    def failing(self) -> bool:
        return self.attempts > 0

    def failed(self, logger: logging.Logger, what: str, reason: object) -> None:
        """Log the first failure of a run of them (warning); later ones only at debug level."""
        if self.attempts == 0:
            logger.warning(
                "%s: %s; retrying with backoff (at most %.0f s apart)", what, reason, self.max_s
            )
        else:
            logger.debug("%s: %s (attempt %d)", what, reason, self.attempts + 1)

    def reset(self) -> None:
        """Start over from `first_s`, without a log line (a success the caller reports itself)."""
        self.attempts = 0
        self.failing_since = None

    def succeeded(self, logger: logging.Logger, what: str) -> None:
        """Reset after a success; logs the recovery once if there had been failures."""
        if self.attempts and self.failing_since is not None:
            logger.info(
                "%s: back after %.1f s and %d attempts",
                what,
                time.monotonic() - self.failing_since,
                self.attempts,
            )
        self.reset()


def retry(
    attempt: Callable[[], T],
    *,
    failures: type[BaseException] | tuple[type[BaseException], ...],
    backoff: Backoff,
    stop: threading.Event,
    logger: logging.Logger,
    what: str,
    failing: str | None = None,
) -> T | None:
    """`attempt()` until it returns, waiting out `backoff` after each of `failures` (any other
    error, e.g. a ConfigError, ends the loop at once); None if `stop` was set meanwhile.

    Logged once when the failures begin (as `failing`, default `what`) and once when `what` is
    back, as every reconnect of the project is."""
    while True:
        try:
            result = attempt()
        except failures as exc:
            backoff.failed(logger, failing or what, exc)
            if backoff.wait(stop):
                return None
            continue
        backoff.succeeded(logger, what)
        return result
