"""A durable, bounded buffer of prepared messages on local disk (`gateway.spool_dir`).

A TCP source appends what it read, fsync'd once per read (group commit), before the publisher
ever sees it; the publisher reads it back in order and acknowledges each record once the broker
confirmed it. So the gateway keeps reading while the broker is away (up to
`gateway.spool_max_bytes`, then it stops reading and the CTI server buffers), and a killed
gateway re-publishes, after restart, everything not confirmed before — with the same event ids,
because the spool holds the prepared messages, not raw lines.

Files: segments `<first seq>.seg` of records `magic, seq, length, crc32, payload`, the payload
being the identity state after the entry (36 bytes, see gateway/identity.py: a restart rebuilds
the counter of identical calls from the newest two segments, which are always kept) and the
packed message; `acked` holds the sequence number up to which everything was confirmed, and
`acked-beyond` the records after it confirmed out of order (the publisher bundles per routing key,
so a later record can be confirmed before an earlier one): a restart re-publishes exactly the
records not confirmed when the acknowledgements were last written (every `_ACK_WRITE_EVERY_S`
and at a stop). A torn record at the end of the last segment (a crash mid-write) is cut off at
recovery. The folder is 0700 and its files 0600 (they hold phone numbers), and a lock file keeps
a second gateway out of it.

Where it is (`default_spool_dir`): `gateway.spool_dir` if set; else under the state directory
systemd gives the unit (`StateDirectory=cti-journal` → `$STATE_DIRECTORY`, /var/lib/cti-journal);
else `./var` in the working directory; in both cases in `spool-<source_id>`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO
from zlib import crc32

from cti_journal.gateway.identity import STATE_BYTES
from cti_journal.gateway.intake import Done, Item, Waker
from cti_journal.gateway.prepare import Outgoing

log = logging.getLogger(__name__)
_REC = struct.Struct(">2sQII")  # magic, seq, payload length, crc32
_MAGIC = b"CJ"
_ACK_FILE = "acked"
_BEYOND_FILE = "acked-beyond"  # a gateway before it ignores this file: it re-publishes those
_ACK_WRITE_EVERY_S = 0.5
_READ_AHEAD = 256 * 1024  # bytes read from a segment at once by the publisher's side


_LOCK_FILE = "lock"
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class SpoolError(Exception):
    pass


def default_spool_dir(source_id: str, env: Mapping[str, str] | None = None) -> Path:
    """The spool folder when `gateway.spool_dir` is empty (see the module's docstring)."""
    environ = os.environ if env is None else env
    # systemd may list several state directories, separated by ':'; ours is the first.
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path("var")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)
    return base / f"spool-{safe}"


def _open_private(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, _FILE_MODE)


class SpoolBuffer:
    counts_handed_out = True  # len(): every record not yet acknowledged

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        wake: Callable[[], None],
        segment_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.abort = threading.Event()
        self._waker = Waker(wake)
        self._room = threading.Condition()
        self._put_lock = threading.Lock()
        self.dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(self.dir, _DIR_MODE)
        self._lock_fd = self._lock()
        self._acked = self._read_acked()
        beyond = self._read_beyond()
        self._beyond_written = bool(beyond)
        self._done: dict[int, int] = {}  # seq confirmed out of order -> record size
        self._sizes: dict[int, int] = {}  # seq handed out or pending -> record size
        self._unacked_bytes = 0
        self._ack_written_at = 0.0
        self._segments: list[Path] = sorted(self.dir.glob("*.seg"))
        self._committed: dict[Path, int] = {}  # bytes fsync'd per segment: what readers may read
        self._identities: list[bytes] = []  # identity states of the records kept on disk
        self._next_seq = self._recover(beyond)
        self._writer = self._open_writer()
        self._reader_index = 0
        self._reader_pos = 0  # of the next record not yet read into _ready
        self._ready: deque[Item] = deque()  # read ahead, not yet handed out
        self._read_fh = None if not self._segments else open(self._segments[0], "rb")  # noqa: SIM115
        if self.pending:
            log.info("spool %s: %d records not yet confirmed, publishing them first", directory,
                     self.pending)  # fmt: skip

    def _lock(self) -> int:
        fd = _open_private(self.dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SpoolError(
                f"spool {self.dir} is in use by another gateway: give each gateway its own "
                "gateway.spool_dir (or gateway.source_id)"
            ) from exc
        return fd

    # -- recovery -----------------------------------------------------------------------------
    def _read_acked(self) -> int:
        try:
            return int((self.dir / _ACK_FILE).read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise SpoolError(f"{self.dir / _ACK_FILE} is corrupt: {exc}") from exc

    def _read_beyond(self) -> set[int]:
        try:
            text = (self.dir / _BEYOND_FILE).read_text()
        except FileNotFoundError:
            return set()
        try:
            return {seq for seq in map(int, text.split()) if seq > self._acked}
        except ValueError as exc:
            raise SpoolError(f"{self.dir / _BEYOND_FILE} is corrupt: {exc}") from exc

    def _recover(self, beyond: set[int]) -> int:
        last = self._acked
        for path in self._segments:
            valid = 0
            with open(path, "rb") as fh:
                for seq, size, end, identity in _records(fh):
                    self._identities.append(identity)
                    last = max(last, seq)
                    valid = end
                    if seq in beyond:  # confirmed out of order before the stop
                        self._done[seq] = size
                    elif seq > self._acked:
                        self._unacked_bytes += size
            if valid < path.stat().st_size:
                log.warning("spool %s: cutting a torn record at byte %d", path.name, valid)
                with open(path, "r+b") as fh:
                    fh.truncate(valid)
                    os.fsync(fh.fileno())
            self._committed[path] = valid
        return last + 1

    def take_identities(self) -> list[bytes]:
        """The identity states recorded in the segments on disk, oldest first (once)."""
        states, self._identities = self._identities, []
        return states

    def unacked_bytes(self) -> float:
        """Bytes held for the broker (the spool's fill level against `max_bytes`)."""
        return float(self._unacked_bytes)

    @property
    def pending(self) -> int:
        return self._next_seq - 1 - self._acked - len(self._done)

    def _open_writer(self) -> BinaryIO:
        if not self._segments or self._committed[self._segments[-1]] >= self.segment_bytes:
            self._new_segment()
        return open(self._segments[-1], "ab")

    def _new_segment(self) -> None:
        path = self.dir / f"{self._next_seq:016d}.seg"
        os.close(_open_private(path, os.O_WRONLY | os.O_CREAT))
        _fsync_dir(self.dir)
        self._segments.append(path)
        self._committed[path] = 0

    # -- source side --------------------------------------------------------------------------
    def put(self, outs: list[Outgoing], on_published: list[Done | None] | None = None) -> bool:
        """Append and fsync. Several sources' threads (a listener's clients) may call it at once:
        one at a time, so that sequence numbers are unique and written in order."""
        if on_published and any(on_published):
            raise SpoolError("the spool acknowledges records itself")
        # The identity state rides along so that a restart can continue the counter.
        payloads = [_state(o.identity) + o.pack() for o in outs]
        size_total = _REC.size * len(payloads) + sum(map(len, payloads))
        with self._put_lock:
            with self._room:
                while self._unacked_bytes + size_total > self.max_bytes and self._unacked_bytes:
                    if self.abort.is_set():
                        return False
                    self._room.wait(timeout=0.5)
                self._unacked_bytes += size_total
            parts: list[bytes] = []
            seq = self._next_seq
            for payload in payloads:
                parts.append(_REC.pack(_MAGIC, seq, len(payload), crc32(payload)))
                parts.append(payload)
                seq += 1
            self._next_seq = seq
            self._write(b"".join(parts))
        self._waker.poke()
        return True

    def _write(self, data: bytes) -> None:
        path = self._segments[-1]
        self._writer.write(data)
        self._writer.flush()
        os.fsync(self._writer.fileno())
        with self._room:
            self._committed[path] += len(data)
            if self._committed[path] >= self.segment_bytes:
                self._writer.close()
                self._new_segment()
                self._writer = open(self._segments[-1], "ab")  # noqa: SIM115

    # -- publisher side (IOLoop thread) -------------------------------------------------------
    def woken(self) -> None:
        self._waker.clear()

    def get_nowait(self) -> Item | None:
        if self._ready:
            return self._ready.popleft()
        while True:
            with self._room:
                if self._reader_index >= len(self._segments):
                    return None
                path = self._segments[self._reader_index]
                committed = self._committed[path]
                is_last = self._reader_index == len(self._segments) - 1
            if self._reader_pos + _REC.size <= committed:
                self._read_ahead(path, committed)
                if self._ready:
                    return self._ready.popleft()
                continue  # all confirmed before a restart: skip them (a loop, not recursion)
            if is_last:
                return None
            self._reader_index += 1
            self._reader_pos = 0
            if self._read_fh is not None:
                self._read_fh.close()
            self._read_fh = open(self._segments[self._reader_index], "rb")  # noqa: SIM115

    def _read_ahead(self, path: Path, committed: int) -> None:
        """The committed records after the reader's position, up to `_READ_AHEAD` bytes, into
        `_ready`: one read and no seek per record. A corrupt record raises once the good ones
        before it have been handed out."""
        if self._read_fh is None or self._read_fh.name != str(path):
            if self._read_fh is not None:
                self._read_fh.close()
            self._read_fh = open(path, "rb")  # noqa: SIM115
        self._read_fh.seek(self._reader_pos)
        data = self._read_fh.read(min(committed - self._reader_pos, _READ_AHEAD))
        pos = 0
        ready, ack, unpack, partial = self._ready, self._ack, Outgoing.unpack, functools.partial
        done = self._done
        view = memoryview(data)
        while pos + _REC.size <= len(data):
            magic, seq, length, crc = _REC.unpack_from(data, pos)
            end = pos + _REC.size + length
            if end > len(data) and pos == 0 and magic == _MAGIC:  # one record above the size
                data += self._read_fh.read(min(end, committed - self._reader_pos) - len(data))
                view = memoryview(data)
            if end > len(data):
                if pos:
                    break  # the rest at the next read
                raise SpoolError(f"spool {path.name}: corrupt record at byte {self._reader_pos}")
            start = pos + _REC.size
            if magic != _MAGIC or crc32(view[start:end]) != crc:
                if pos:
                    break  # hand out the good ones first; the next read raises
                raise SpoolError(f"spool {path.name}: corrupt record at byte {self._reader_pos}")
            pos = end
            if seq > self._acked and seq not in done:  # else confirmed before a restart
                out = unpack(data, start + STATE_BYTES, end)
                size = _REC.size + length
                ready.append(Item(out, partial(ack, seq, size), seq, size))
        self._reader_pos += pos

    def _ack(self, seq: int, size: int) -> None:
        with self._room:
            advanced = self._acknowledge(seq, size)
            self._room.notify_all()
        if advanced and time.monotonic() - self._ack_written_at >= _ACK_WRITE_EVERY_S:
            self.flush_acked()

    def published(self, items: list[Item]) -> None:
        """`_ack` for a confirmed bundle's records at once (one lock, one wake-up)."""
        advanced = False
        with self._room:
            for item in items:
                advanced = self._acknowledge(item.seq, item.size) or advanced
            self._room.notify_all()
        if advanced and time.monotonic() - self._ack_written_at >= _ACK_WRITE_EVERY_S:
            self.flush_acked()

    def _acknowledge(self, seq: int, size: int) -> bool:
        """Record `seq` as confirmed (the lock held); True if the acknowledged position moved."""
        self._unacked_bytes -= size
        if seq == self._acked + 1 and not self._done:  # in order: the common case
            self._acked = seq
            return True
        self._done[seq] = size
        advanced = False
        while self._acked + 1 in self._done:
            self._acked += 1
            del self._done[self._acked]
            advanced = True
        return advanced

    def flush_acked(self) -> None:
        """Persist the acknowledged position and delete segments wholly behind it."""
        self._ack_written_at = time.monotonic()
        with self._room:
            acked, beyond = self._acked, sorted(self._done)
        # `acked-beyond` first: whatever it lists was confirmed, so a crash between the two
        # writes, or a stale one, never skips a record that was not.
        if beyond or self._beyond_written:
            self._replace(_BEYOND_FILE, " ".join(map(str, beyond)).encode())
            self._beyond_written = bool(beyond)
        self._replace(_ACK_FILE, str(acked).encode())
        with self._room:
            # The newest two segments stay, acknowledged or not: their identity states are what
            # a restart needs to keep two identical calls apart (gateway/identity.py).
            while len(self._segments) > 2 and self._reader_index > 0:
                next_first = int(self._segments[1].stem)
                if next_first - 1 > self._acked:
                    break
                old = self._segments.pop(0)
                del self._committed[old]
                self._reader_index -= 1
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    def _replace(self, name: str, data: bytes) -> None:
        tmp = self.dir / (name + ".tmp")
        fd = _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.dir / name)

    def close(self) -> None:
        self.flush_acked()
        self._writer.close()
        if self._read_fh is not None:
            self._read_fh.close()
        os.close(self._lock_fd)  # releases the lock

    def __len__(self) -> int:
        return max(0, self.pending)


def _records(fh: BinaryIO) -> Iterator[tuple[int, int, int, bytes]]:
    """(seq, record size, end offset, identity state) of every intact record of a segment."""
    pos = 0
    while True:
        head = fh.read(_REC.size)
        if len(head) < _REC.size:
            return
        magic, seq, length, crc = _REC.unpack(head)
        payload = fh.read(length)
        if magic != _MAGIC or len(payload) != length or crc32(payload) != crc:
            return
        pos += _REC.size + length
        yield seq, _REC.size + length, pos, payload[:STATE_BYTES]


def _state(identity: bytes) -> bytes:
    """The identity state as a record keeps it: STATE_BYTES, zeros when there is none."""
    if len(identity) == STATE_BYTES:
        return identity
    return identity.ljust(STATE_BYTES, b"\0")[:STATE_BYTES]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
