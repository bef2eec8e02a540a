"""The hand-over from source threads to the publisher on the AMQP IOLoop.

Two kinds, one interface (`Buffer`):
* `MemoryBuffer`: bounded; when full, `put` blocks the source thread, which then stops reading
  its socket or file: the CTI server holds the entries. Right for sources that can re-read
  (the file tail resumes from its checkpoint).
* `SpoolBuffer` (gateway/spool.py): fsync'd segment files; lets a TCP source keep reading while
  the broker is away, up to `gateway.spool_max_bytes`, and survives a crash of the gateway.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cti_journal.gateway.prepare import Outgoing

Done = Callable[[], None]


@dataclass(slots=True)
class Item:
    out: Outgoing
    on_published: Done | None = None  # runs on the IOLoop once the broker confirmed it
    seq: int = 0  # the spool's record number (0: not from a spool), for `published`
    size: int = 0  # the spool's record size


class Buffer(Protocol):
    abort: threading.Event
    # True if len() still counts what get_nowait handed out until it is acknowledged (the
    # spool); False if len() is only what waits to be handed out (memory).
    counts_handed_out: bool

    def put(self, outs: list[Outgoing], on_published: list[Done | None] | None = None) -> bool:
        """Hand messages over (blocking while full). False only if aborting."""
        ...

    def get_nowait(self) -> Item | None: ...

    def published(self, items: list[Item]) -> None:
        """The broker confirmed these: each item's `on_published`, for a bundle at once."""
        ...

    def woken(self) -> None: ...

    def __len__(self) -> int: ...


class Waker:
    """Wakes the publisher once per burst of puts, not once per message."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._pending = threading.Event()

    def poke(self) -> None:
        if not self._pending.is_set():
            self._pending.set()
            self._wake()

    def clear(self) -> None:
        self._pending.clear()


class MemoryBuffer:
    counts_handed_out = False

    def __init__(self, capacity: int, wake: Callable[[], None]) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=capacity)
        self._waker = Waker(wake)
        self.abort = threading.Event()

    def put(self, outs: list[Outgoing], on_published: list[Done | None] | None = None) -> bool:
        callbacks = on_published or [None] * len(outs)
        for out, done in zip(outs, callbacks, strict=True):
            item = Item(out, done)
            while True:
                if self.abort.is_set():
                    return False
                try:
                    self._queue.put(item, timeout=0.5)
                    break
                except queue.Full:
                    self._waker.poke()
                    continue
        self._waker.poke()
        return True

    def woken(self) -> None:
        self._waker.clear()

    def published(self, items: list[Item]) -> None:
        for item in items:
            if item.on_published is not None:
                item.on_published()

    def get_nowait(self) -> Item | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def __len__(self) -> int:
        return self._queue.qsize()
