"""The fsync'd disk spool (gateway/spool.py): order, bounds, crash recovery, segments."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_journal.gateway.identity import STATE_BYTES
from cti_journal.gateway.intake import Item
from cti_journal.gateway.prepare import Outgoing
from cti_journal.gateway.spool import _READ_AHEAD, SpoolBuffer, SpoolError, default_spool_dir


def _out(i: int, size: int = 20) -> Outgoing:
    return Outgoing("lookup", f"{i:08d}".encode().ljust(size, b"."), {"n": i})


def _spool(path: Path, max_bytes: int = 1 << 20, segment_bytes: int = 1 << 20) -> SpoolBuffer:
    return SpoolBuffer(path, max_bytes, lambda: None, segment_bytes=segment_bytes)


def _drain(spool: SpoolBuffer) -> list[Item]:
    items = []
    while (item := spool.get_nowait()) is not None:
        items.append(item)
    return items


def _numbers(items: list[Item]) -> list[int]:
    return [(item.out.headers or {})["n"] for item in items]


def _ack(item: Item) -> None:
    assert item.on_published is not None
    item.on_published()


def _crash(spool: SpoolBuffer) -> None:
    """Close the files as a killed process would: no final write of the acked position."""
    spool._writer.close()
    if spool._read_fh is not None:
        spool._read_fh.close()
    os.close(spool._lock_fd)  # the kernel releases a dead process's lock


def _acked(path: Path) -> int:
    return int((path / "acked").read_text())


def test_put_get_in_order(tmp_path: Path) -> None:
    woken = []
    spool = SpoolBuffer(tmp_path, 1 << 20, lambda: woken.append(1))
    assert spool.put([_out(1), _out(2)]) is True
    assert spool.put([_out(3)]) is True
    assert woken == [1]  # one wake-up per burst until the publisher takes note
    spool.woken()
    spool.put([_out(4)])
    assert woken == [1, 1]
    assert len(spool) == 4
    items = _drain(spool)
    assert [item.out for item in items] == [_out(1), _out(2), _out(3), _out(4)]
    assert spool.get_nowait() is None
    for item in items:
        _ack(item)
    assert len(spool) == 0
    spool.close()
    assert _acked(tmp_path) == 4


def test_the_spool_acks_itself(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    with pytest.raises(SpoolError):
        spool.put([_out(1)], [lambda: None])
    spool.close()


def test_out_of_order_acks_advance_only_the_contiguous_prefix(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.put([_out(i) for i in range(1, 6)])
    items = _drain(spool)
    _ack(items[2])
    _ack(items[1])
    spool.flush_acked()
    assert (_acked(tmp_path), len(spool)) == (0, 3)  # len: what is not confirmed
    _ack(items[0])
    spool.flush_acked()
    assert (_acked(tmp_path), len(spool)) == (3, 2)
    _ack(items[4])
    spool.flush_acked()
    assert _acked(tmp_path) == 3
    _ack(items[3])
    spool.close()
    assert _acked(tmp_path) == 5


def test_restart_reads_again_what_was_not_acked(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.put([_out(i) for i in range(1, 7)])
    items = _drain(spool)
    for item in (items[0], items[1], items[3]):
        _ack(item)
    spool.flush_acked()
    _crash(spool)

    again = _spool(tmp_path)
    assert len(again) == 3
    recovered = _drain(again)
    assert _numbers(recovered) == [3, 5, 6]  # 4 was acked out of order: not sent again
    for item in recovered:
        _ack(item)
    again.put([_out(7)])
    (seven,) = _drain(again)
    assert _numbers([seven]) == [7]
    _ack(seven)
    again.close()
    assert _acked(tmp_path) == 7

    third = _spool(tmp_path)
    assert (len(third), third.get_nowait()) == (0, None)
    third.close()


def test_restart_after_a_clean_close_sends_nothing(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.put([_out(i) for i in range(1, 4)])
    for item in _drain(spool):
        _ack(item)
    spool.close()
    again = _spool(tmp_path)
    assert again.get_nowait() is None
    again.put([_out(4)])
    assert _numbers(_drain(again)) == [4]
    again.close()


def test_restart_skips_many_acked_records_of_a_segment(tmp_path: Path) -> None:
    """The records of the current segment confirmed before the restart are skipped (one by one,
    by sequence number): thousands of them must not exhaust the stack."""
    spool = _spool(tmp_path, max_bytes=1 << 24, segment_bytes=1 << 24)
    count = 3000
    spool.put([_out(i) for i in range(count)])
    for item in _drain(spool):
        _ack(item)
    spool.put([_out(count)])
    spool.flush_acked()
    _crash(spool)
    again = _spool(tmp_path, max_bytes=1 << 24, segment_bytes=1 << 24)
    assert _numbers(_drain(again)) == [count]
    again.close()


def test_torn_last_record_is_cut_and_the_rest_survives(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.put([_out(1), _out(2), _out(3)])
    _crash(spool)
    (segment,) = tmp_path.glob("*.seg")
    size = segment.stat().st_size
    with open(segment, "r+b") as fh:
        fh.truncate(size - 5)

    again = _spool(tmp_path)
    assert segment.stat().st_size == size // 3 * 2  # three records of equal size; one cut
    assert len(again) == 2
    assert _numbers(_drain(again)) == [1, 2]
    again.put([_out(4)])
    assert _numbers(_drain(again)) == [4]
    _crash(again)
    third = _spool(tmp_path)
    assert _numbers(_drain(third)) == [1, 2, 4]
    third.close()


def test_corrupt_record_at_the_end_is_cut(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.put([_out(1), _out(2)])
    _crash(spool)
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # payload of the last record no longer matches its crc
    segment.write_bytes(bytes(data))
    again = _spool(tmp_path)
    assert _numbers(_drain(again)) == [1]
    again.close()


def test_corrupt_acked_file(tmp_path: Path) -> None:
    (tmp_path / "acked").write_text("garbage")
    with pytest.raises(SpoolError, match="is corrupt"):
        _spool(tmp_path)


def test_segments_rotate_and_fully_acked_ones_are_deleted(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment_bytes=200)
    record = len(_out(0).pack()) + 18 + STATE_BYTES  # message, header, identity state
    for i in range(1, 11):
        spool.put([_out(i)])
    segments = sorted(p.name for p in tmp_path.glob("*.seg"))
    per_segment = -(-200 // record)
    assert len(segments) == -(-10 // per_segment) + (10 % per_segment == 0)
    assert segments[0] == f"{1:016d}.seg"
    items = _drain(spool)
    assert _numbers(items) == list(range(1, 11))
    for item in items[:per_segment]:
        _ack(item)
    spool.flush_acked()
    remaining = sorted(p.name for p in tmp_path.glob("*.seg"))
    assert remaining == segments[1:]
    for item in items[per_segment:]:
        _ack(item)
    spool.close()
    # the newest two segments stay: their identity states survive a restart
    assert sorted(p.name for p in tmp_path.glob("*.seg")) == segments[-2:]
    again = _spool(tmp_path, segment_bytes=200)
    assert again.get_nowait() is None
    again.put([_out(11)])
    assert _numbers(_drain(again)) == [11]
    again.close()


def test_restart_reads_across_segments(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment_bytes=100)
    for i in range(1, 8):
        spool.put([_out(i)])
    assert len(list(tmp_path.glob("*.seg"))) >= 3
    _crash(spool)
    again = _spool(tmp_path, segment_bytes=100)
    assert _numbers(_drain(again)) == list(range(1, 8))
    again.close()


def test_put_blocks_while_full_until_acks_free_room(tmp_path: Path) -> None:
    record = len(_out(0).pack()) + 18 + STATE_BYTES
    spool = _spool(tmp_path, max_bytes=record * 2)
    spool.put([_out(1), _out(2)])
    done = threading.Event()

    def producer() -> None:
        spool.put([_out(3)])
        done.set()

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    assert not done.wait(0.3)  # full: the source thread waits
    items = _drain(spool)
    assert _numbers(items) == [1, 2]
    _ack(items[1])  # out of order still frees the room
    assert done.wait(5)
    thread.join(5)
    assert _numbers(_drain(spool)) == [3]
    spool.close()


def test_abort_releases_a_blocked_put(tmp_path: Path) -> None:
    record = len(_out(0).pack()) + 18 + STATE_BYTES
    spool = _spool(tmp_path, max_bytes=record)
    spool.put([_out(1)])
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(spool.put([_out(2)])), daemon=True)
    thread.start()
    spool.abort.set()
    thread.join(5)
    assert result == [False]
    spool.close()


def test_a_batch_larger_than_the_spool_is_taken_when_empty(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=10)
    assert spool.put([_out(1), _out(2)]) is True
    assert _numbers(_drain(spool)) == [1, 2]
    spool.close()


def test_identity_states_survive_a_restart(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    states = [bytes([i]) * STATE_BYTES for i in (1, 2, 3)]
    spool.put([Outgoing("lookup", b"{}", identity=s) for s in states])
    for item in _drain(spool):
        _ack(item)
    spool.close()
    again = _spool(tmp_path)
    assert again.take_identities() == states  # even acknowledged records keep their state
    assert again.take_identities() == []
    again.close()


def test_files_are_for_the_owner_only_and_one_gateway_at_a_time(tmp_path: Path) -> None:
    old = os.umask(0o022)  # as a shell would leave it: files would be world-readable
    try:
        spool = _spool(tmp_path / "spool")
        spool.put([_out(1)])
        (item,) = _drain(spool)
        _ack(item)
        spool.flush_acked()
        with pytest.raises(SpoolError, match="in use by another gateway"):
            _spool(tmp_path / "spool")
        spool.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    for path in (tmp_path / "spool").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    _spool(tmp_path / "spool").close()  # free again once the first one closed


def test_default_location_is_the_systemd_state_directory_else_var() -> None:
    assert default_spool_dir("cti") == Path("var/spool-cti") or "STATE_DIRECTORY" in os.environ
    env = {"STATE_DIRECTORY": "/var/lib/cti-journal:/var/lib/other"}
    assert default_spool_dir("pbx 1/a", env) == Path("/var/lib/cti-journal/spool-pbx_1_a")
    assert default_spool_dir("cti", {}) == Path("var/spool-cti")


def test_puts_from_several_threads_get_unique_numbers_in_order(tmp_path: Path) -> None:
    """A listener's clients put from their own threads at once: every record once, in order."""
    spool = _spool(tmp_path)
    barrier = threading.Barrier(4)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show

    def client(base: int) -> None:
        barrier.wait()
        for i in range(50):
            spool.put([_out(base + 2 * i), _out(base + 2 * i + 1)])

    threads = [threading.Thread(target=client, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.setswitchinterval(interval)
    items = _drain(spool)
    assert sorted(_numbers(items)) == sorted(k * 1000 + i for k in range(4) for i in range(100))
    for item in items:
        _ack(item)
    spool.close()
    assert _acked(tmp_path) == 400


def test_read_ahead_crosses_its_size_and_reads_a_larger_record_whole(tmp_path: Path) -> None:
    """The publisher's side reads `_READ_AHEAD` bytes at a time: records cut by that boundary
    and a record larger than it come out whole and in order."""
    spool = _spool(tmp_path, max_bytes=1 << 24, segment_bytes=1 << 24)
    small = [_out(i, size=1000) for i in range(600)]  # ~620 KB: three read-aheads
    big = _out(600, size=_READ_AHEAD + 5000)
    spool.put(small[:300])
    spool.put([big])
    spool.put(small[300:])
    items = _drain(spool)
    assert [item.out for item in items] == [*small[:300], big, *small[300:]]
    for item in items:
        _ack(item)
    assert len(spool) == 0
    spool.close()


def test_a_record_corrupted_while_running_stops_the_reader_after_the_good_ones(
    tmp_path: Path,
) -> None:
    spool = _spool(tmp_path)
    spool.put([_out(i) for i in range(10)])
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    record = len(data) // 10
    data[6 * record + record // 2] ^= 0xFF  # inside the 7th record's payload
    segment.write_bytes(bytes(data))
    good = [spool.get_nowait() for _ in range(6)]
    assert _numbers([item for item in good if item is not None]) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(SpoolError, match="corrupt record"):
        spool.get_nowait()
    _crash(spool)


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations(range(12)),
    acked=st.integers(0, 12),
    restarts=st.integers(1, 3),
)
def test_a_restart_replays_exactly_what_was_not_acked(
    tmp_path_factory: pytest.TempPathFactory, order: list[int], acked: int, restarts: int
) -> None:
    """Acknowledged in any order (the publisher bundles per routing key), then a stop: the
    next start hands out exactly the records not acknowledged, in order, and counts them."""
    path = tmp_path_factory.mktemp("spool")
    spool = _spool(path)
    spool.put([_out(i) for i in range(12)])
    items = _drain(spool)
    for index in order[:acked]:
        _ack(items[index])
    spool.flush_acked()
    _crash(spool)
    left = sorted(order[acked:])
    for _ in range(restarts):  # and again, acknowledging nothing
        spool = _spool(path)
        assert len(spool) == len(left)
        assert _numbers(_drain(spool)) == left
        _crash(spool)
    spool = _spool(path)
    for item in _drain(spool):
        _ack(item)
    assert len(spool) == 0
    spool.close()
    assert _acked(path) == 12
    spool = _spool(path)
    assert (len(spool), spool.get_nowait()) == (0, None)
    spool.close()
