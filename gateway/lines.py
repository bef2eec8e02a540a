"""Split a byte stream into lines without ever holding more than `max_line_bytes` of one line.

A line longer than the limit is cut: its first bytes are kept, the rest is skipped, and when its
newline arrives it is reported as one oversized line (so that it can be dead-lettered with its
beginning, and a checkpoint after it lies past its end).

Nothing is dropped silently: an empty line (only its line break) is reported to `on_empty`
(the gateway counts it), and a line of only whitespace is yielded like any other, so that the
preparer dead-letters it with its bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple


class Line(NamedTuple):  # made per line: a NamedTuple costs half a frozen dataclass
    raw: bytes
    oversized: bool = False  # raw holds only the first max_line_bytes of a longer line
    end_offset: int = 0  # stream offset just past this line's newline


class LineSplitter:
    def __init__(self, max_line_bytes: int, on_empty: Callable[[], None] | None = None) -> None:
        self.max = max_line_bytes
        self._on_empty = on_empty
        self._buffer = bytearray()
        self._skipping = False  # inside an oversized line, dropping bytes up to its newline
        self.offset = 0  # bytes consumed so far

    def feed(self, data: bytes) -> Iterator[Line]:
        start = 0
        size = len(data)
        find = data.find
        while start < size:
            newline = find(b"\n", start)
            if 0 <= newline - start <= self.max and not self._buffer and not self._skipping:
                # The common case inlined: a whole line within the limit, nothing held over.
                end = newline + 1
                length = end - start
                self.offset += length
                if length > 2 or (length == 2 and data[start] != 13):  # not b"\n", b"\r\n"
                    yield Line(data[start:end], False, self.offset)
                elif self._on_empty is not None:
                    self._on_empty()
                start = end
                continue
            end = size if newline < 0 else newline + 1
            chunk = data[start:end]
            self.offset += len(chunk)
            start = end
            yield from self._take(chunk, complete=newline >= 0)

    def _take(self, chunk: bytes, *, complete: bool) -> Iterator[Line]:
        room = self.max - len(self._buffer)
        if self._skipping or len(chunk) - (1 if complete else 0) > room:
            if not self._skipping:
                self._buffer += chunk[:room]
            self._skipping = not complete
            if complete:
                yield Line(bytes(self._buffer), oversized=True, end_offset=self.offset)
                self._buffer.clear()
            return
        self._buffer += chunk
        if complete:
            line = bytes(self._buffer)
            self._buffer.clear()
            if line not in (b"\n", b"\r\n"):
                yield Line(line, end_offset=self.offset)
            elif self._on_empty is not None:
                self._on_empty()

    @property
    def at_boundary(self) -> bool:
        """True when no line is half read (the stream can stop here without cutting one)."""
        return not self._buffer and not self._skipping

    def finish(self) -> Line | None:
        """The stream ended: its unfinished last line (to be dead-lettered), if any."""
        if self.at_boundary:
            return None
        line = Line(bytes(self._buffer), oversized=self._skipping, end_offset=self.offset)
        self._buffer.clear()
        self._skipping = False
        return line

    @property
    def partial(self) -> bytes:
        """Bytes of an unfinished last line (a stream that ended without a newline); of an
        oversized one only its first `max_line_bytes`."""
        return bytes(self._buffer)
