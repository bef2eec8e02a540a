"""The bounded hand-over from source threads to the publisher on the AMQP IOLoop.

When it is full, `put` blocks the source thread, which then stops reading its socket: the CTI
server's TCP send buffer fills and the server holds the entries. Nothing is dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cti_journal.gateway.lines import Line


@dataclass(slots=True)
class Accepted:
    line: Line
    origin: str  # where it came from, for logs and dead letters
    received_at: float
    on_published: Callable[[], None] | None = None  # runs once the broker confirmed it


class Intake:
    def __init__(self, capacity: int, wake: Callable[[], None]) -> None:
        self._queue: queue.Queue[Accepted] = queue.Queue(maxsize=capacity)
        self._wake = wake
        self._wake_pending = threading.Event()
        self.abort = threading.Event()  # set when the process gives up on draining

    def put(self, line: Line, origin: str, on_published: Callable[[], None] | None = None) -> bool:
        """Hand a line over, waiting while the buffer is full. False only if aborting."""
        item = Accepted(line, origin, time.time(), on_published)
        while not self.abort.is_set():
            try:
                self._queue.put(item, timeout=0.5)
            except queue.Full:
                continue
            if not self._wake_pending.is_set():
                self._wake_pending.set()
                self._wake()
            return True
        return False

    def woken(self) -> None:
        """The publisher calls this before draining, so later puts wake it again."""
        self._wake_pending.clear()

    def get_nowait(self) -> Accepted | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def __len__(self) -> int:
        return self._queue.qsize()
