"""Tail the CTI server's `Journal/day.log`, follow its day-change rotation into `journal.log`,
and keep a checkpoint that advances only past lines the broker has confirmed.

Restart: the checkpoint names the file by its first line (not its inode: a rotation may empty
the same file), the byte offset confirmed so far and the last bytes of the line ending there.
If day.log still starts with that line, reading resumes at the offset; the lines before it are
re-read only to rebuild the identity counter (gateway/identity.py), so the ids of what follows
do not change. If day.log was rotated meanwhile, its rest is read from the end of journal.log —
from the latest copy of that first line after which the last line's bytes end at the offset
(a first line can come again: identical calls) — and then the new day.log from its start.
The same happens without a restart whenever the day changes before the tail read all of it.
Bytes read from day.log count only while it still starts with their day's first line: the
server empties it in place, and an old handle then reads the next day's bytes. Anything
published twice this way (a crash between confirm and checkpoint) has the same event id, and
the writer's ledger keeps it from becoming a second row.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.intake import Buffer, Done
from cti_journal.gateway.lines import Line, LineSplitter
from cti_journal.gateway.prepare import Preparer
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.metrics import Metrics

log = logging.getLogger(__name__)
POLL_S = 0.2
CHUNK = 256 * 1024
SEARCH_LIMIT = 512 * 1024 * 1024  # how far back journal.log is searched for a rotated day
CHECKPOINT_EVERY_S = 0.5


@dataclass(frozen=True)
class Position:
    head: bytes  # the first line of the file the offset belongs to
    offset: int
    # The last bytes before `offset` (of the line ending there): with `head`, they find the day
    # in journal.log even where its first line comes again later (identical calls).
    tail: bytes = b""


TAIL_BYTES = 64


def _tail(line: Line) -> bytes:
    return b"" if line.oversized else line.raw[-TAIL_BYTES:]


class Checkpoint:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Position | None:
        try:
            data = orjson.loads(self.path.read_bytes())
            if not isinstance(data, dict):
                raise TypeError("not an object")
            tail = base64.b64decode(data.get("tail", ""))  # absent before 2026-12
            position = Position(base64.b64decode(data["head"]), int(data["offset"]), tail)
            if position.offset < 0:
                raise ValueError("negative offset")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # JSONDecodeError and binascii.Error included
            log.error("checkpoint %s is corrupt; reading day.log from its start", self.path)
            return None
        return position

    def save(self, position: Position) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"head": base64.b64encode(position.head).decode(), "offset": position.offset}
        if position.tail:
            data["tail"] = base64.b64encode(position.tail).decode()
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(data))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


class ConfirmTracker:
    """Advances the checkpoint over the longest prefix of lines the broker confirmed.

    Confirms arrive on the IOLoop thread, possibly out of order after a reconnect."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._lock = threading.Lock()
        self._order: deque[Position] = deque()
        self._confirmed: set[Position] = set()
        self._last: Position | None = None
        self._saved_at = 0.0
        self._dirty = False

    def expect(self, position: Position) -> Done:
        with self._lock:
            self._order.append(position)
        return lambda: self._confirm(position)

    def _confirm(self, position: Position) -> None:
        with self._lock:
            self._confirmed.add(position)
            while self._order and self._order[0] in self._confirmed:
                self._last = self._order.popleft()
                self._confirmed.discard(self._last)
                self._dirty = True
        if self._dirty and time.monotonic() - self._saved_at >= CHECKPOINT_EVERY_S:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            last, self._dirty = self._last, False
        self._saved_at = time.monotonic()
        if last is not None:
            self.checkpoint.save(last)


def _first_line(fh: BinaryIO, limit: int) -> bytes:
    """The file's first line as it is now (b"" if not complete within `limit` bytes).

    Read past the handle's buffer (pread): a buffered handle may answer a seek to 0 from
    bytes it read before the file was emptied. The handle's position is left as it was."""
    data = os.pread(fh.fileno(), limit, 0)
    newline = data.find(b"\n")
    return data[: newline + 1] if newline >= 0 else b""


def _after(lines: list[Line], head: bytes, resume: Position) -> Position:
    """Just past the last whole line read (the next one may be half written yet)."""
    return Position(head, lines[-1].end_offset, _tail(lines[-1])) if lines else resume


class FileTailSource:
    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.path = Path(settings.path)
        self.journal = self.path.with_name("journal.log")
        self.preparer = Preparer(settings, metrics)
        # The CTI link, for a file source: 1 while day.log is there to follow (the alert on the
        # CTI link must not fire for a gateway that reads the server's journal file).
        self.connected = metrics.source_connected
        checkpoint = Path(settings.checkpoint or f"{settings.path}.cti-journal")
        self.tracker = ConfirmTracker(Checkpoint(checkpoint))
        self.origin = f"file {self.path}"

    def run(self, buffer: Buffer, stop: threading.Event) -> None:
        try:
            self._run(buffer, stop)
        finally:
            self.tracker.flush()

    def close(self) -> None:
        """After the last confirm: save the final position, so a restart re-sends nothing."""
        self.tracker.flush()

    def _run(self, buffer: Buffer, stop: threading.Event) -> None:
        position = self.tracker.checkpoint.load()
        restarted = True  # only after a restart must the identity counter be rebuilt
        while not stop.is_set():
            try:
                fh = open(self.path, "rb")  # noqa: SIM115 - closed in _follow
            except FileNotFoundError:
                self.connected.set(0)
                stop.wait(POLL_S)
                continue
            self.connected.set(1)
            start = self._resume(fh, position, buffer, rescan=restarted)
            restarted = False
            log.info("tailing %s from byte %d", self.path, start.offset)
            position = self._follow(fh, start, buffer, stop)

    def _resume(
        self, fh: BinaryIO, position: Position | None, buffer: Buffer, *, rescan: bool
    ) -> Position:
        """Where to follow day.log from (head b"" and offset 0: its start).

        The head is checked here once and then kept: day.log may be rotated at any moment, and
        a head read again later could belong to the next day while the offset does not."""
        if position is None or not (position.offset or position.head):
            return Position(b"", 0)
        if _first_line(fh, self.settings.max_line_bytes) == position.head:
            if not rescan or (
                self._rescan(fh, position.offset) and self._same_day(fh, position.head)
            ):
                return position
            # Emptied while being re-read: its rest, and the lines counted, are in journal.log.
            self.preparer.identifier = EventIdentifier(self.settings.source_id)
        self._catch_up(buffer, position, rescan=rescan)
        return Position(b"", 0)

    def _rescan(self, fh: BinaryIO, end: int) -> bool:
        """Count the lines before `end` again; False if the file ended before it."""
        fh.seek(0)
        splitter = LineSplitter(self.settings.max_line_bytes)
        remaining = end
        while remaining > 0:
            data = fh.read(min(CHUNK, remaining))
            if not data:
                return False
            remaining -= len(data)
            for line in splitter.feed(data):
                self.preparer.observe(line)
        return True

    def _catch_up(self, buffer: Buffer, position: Position, *, rescan: bool) -> None:
        """day.log was rotated before we read all of it: read its rest from journal.log."""
        start = self._find_day(position)
        if start is None:
            log.error(
                "%s was rotated, and its first line is not in the last %d MB of %s: entries "
                "after byte %d of that day may be missing; import them with `cti-journal import`",
                self.path, SEARCH_LIMIT >> 20, self.journal, position.offset,
            )  # fmt: skip
            return
        log.info("reading the rest of the rotated day from %s", self.journal)
        with open(self.journal, "rb") as fh:
            if rescan:
                self._rescan_from(fh, start, position.offset)
            # Offsets stay relative to the rotated day's start, so that the checkpoint advances
            # through these lines too and a restart does not read them again.
            splitter = self.preparer.splitter()  # counts empty lines
            splitter.offset = position.offset
            fh.seek(start + position.offset)
            while data := fh.read(CHUNK):
                lines = list(splitter.feed(data))
                if lines and not self._hand_over(lines, position.head, buffer, self.journal):
                    return

    def _rescan_from(self, fh: BinaryIO, start: int, length: int) -> None:
        fh.seek(start)
        splitter = LineSplitter(self.settings.max_line_bytes)
        for line in splitter.feed(fh.read(length)):
            self.preparer.observe(line)

    def _find_day(self, position: Position) -> int | None:
        """Where the rotated day starts in journal.log: the latest copy of its first line
        from which `position` fits (its last line's bytes end at the offset)."""
        head = position.head
        try:
            size = self.journal.stat().st_size
        except FileNotFoundError:
            return None
        with open(self.journal, "rb") as fh:
            end = size
            overlap = len(head) + 1
            while end > 0 and size - end < SEARCH_LIMIT:
                start = max(0, end - CHUNK)
                fh.seek(start)
                block = fh.read(end - start + overlap)
                at = block.rfind(b"\n" + head)
                while at >= 0:
                    if self._fits(fh, start + at + 1, position, size):
                        return start + at + 1
                    at = block.rfind(b"\n" + head, 0, at + len(head))  # copies may touch
                if start == 0 and block.startswith(head) and self._fits(fh, 0, position, size):
                    return 0
                end = start
        return None

    @staticmethod
    def _fits(fh: BinaryIO, start: int, position: Position, size: int) -> bool:
        end = start + position.offset
        if end > size:
            return False
        if not position.offset:
            return True
        ending = position.tail or b"\n"  # without the line's bytes: at least a line's end
        return os.pread(fh.fileno(), len(ending), end - len(ending)) == ending

    def _follow(
        self, fh: BinaryIO, start: Position, buffer: Buffer, stop: threading.Event
    ) -> Position | None:
        """Read new lines until the file is rotated; returns where reading stopped.

        The head is the file's first line when `start.offset` > 0; from 0 it is taken from the
        bytes read, never from a second look at the file (which may be the next day's by then).
        The position returned is the end of the last whole line: a line the server was still
        writing when the day changed is read again, whole, from journal.log."""
        splitter = self.preparer.splitter()  # counts empty lines
        head, resume = start.head, start  # resume: the end of the last whole line read
        splitter.offset = start.offset
        first = HeadReader(self.settings.max_line_bytes) if not head else None
        fh.seek(start.offset)
        try:
            while not stop.is_set():
                data = fh.read(CHUNK)
                if data:
                    if first is not None and not head:
                        head = first.feed(data)
                    if head and not self._same_day(fh, head):
                        return Position(head, resume.offset, resume.tail)  # rest: journal.log
                    lines = list(splitter.feed(data))
                    if lines and not self._hand_over(lines, head, buffer):
                        return None
                    resume = _after(lines, head, resume)
                    continue
                replaced = self._rotated(fh, head, splitter.offset)
                if replaced is None:
                    stop.wait(POLL_S)
                    continue
                # A replaced file can still be read through our handle: take its last lines.
                # An emptied one cannot: what follows `resume` now is the next day's.
                while replaced and (data := fh.read(CHUNK)):
                    lines = list(splitter.feed(data))
                    if lines and not self._hand_over(lines, head, buffer):
                        return None
                    resume = _after(lines, head, resume)
                return Position(head, resume.offset, resume.tail)
        finally:
            fh.close()
        return None

    def _hand_over(
        self, lines: list[Line], head: bytes, buffer: Buffer, path: Path | None = None
    ) -> bool:
        now = time.time()
        origin = f"file {path}" if path else self.origin
        outs = self.preparer.prepare_lines(lines, origin, now)
        dones: list[Done | None] = [
            self.tracker.expect(Position(head, line.end_offset, _tail(line))) for line in lines
        ]
        return buffer.put(outs, dones)

    def _same_day(self, fh: BinaryIO, head: bytes) -> bool:
        """Whether bytes just read through `fh` are still the day that starts with `head`.

        The server empties day.log in place at the day change and writes on: a handle that was
        at byte N reads the next day's bytes from N once the new day is that long. The first
        line, looked at after the read, tells: if it is still `head`, the bytes were ours."""
        if _first_line(fh, self.settings.max_line_bytes) == head:
            return True
        log.info("%s was emptied and written again (day change)", self.path)
        return False

    def _rotated(self, fh: BinaryIO, head: bytes, offset: int) -> bool | None:
        """None while the file is ours; True if it was replaced by a new file (the old one can
        still be read through `fh`), False if it was emptied or rewritten in place."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None  # between the server's move and its new file: keep waiting
        if stat.st_ino != os.fstat(fh.fileno()).st_ino:
            log.info("%s was replaced by a new file (day change or server restart)", self.path)
            return True
        if stat.st_size < offset:
            log.info("%s was emptied (day change or server restart)", self.path)
            return False
        current = _first_line(fh, self.settings.max_line_bytes)
        if head and current and current != head:
            log.info("%s starts with another line now (day change)", self.path)
            return False
        return None


class HeadReader:
    """A file's first line, from the bytes read from its start (b"" until it is complete, and
    for good if it is longer than `limit`, as `_first_line` has it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen = bytearray()

    def feed(self, data: bytes) -> bytes:
        if len(self._seen) >= self.limit:
            return b""
        self._seen += data[: self.limit - len(self._seen)]
        newline = self._seen.find(b"\n")
        return bytes(self._seen[: newline + 1]) if newline >= 0 else b""
