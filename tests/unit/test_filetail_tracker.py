"""The file tail's checkpoint (gateway/filetail.py: ConfirmTracker, Checkpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_journal.gateway import filetail
from cti_journal.gateway.filetail import Checkpoint, ConfirmTracker, Position

HEAD = b"i;2026-07-15 00:00:01;CONN;;;;;;;;;;;;\n"


@pytest.fixture
def tracker(tmp_path: Path) -> ConfirmTracker:
    return ConfirmTracker(Checkpoint(tmp_path / "day.log.cti-journal"))


def _saved(tracker: ConfirmTracker) -> Position | None:
    tracker.flush()
    return tracker.checkpoint.load()


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "cp")
    position = Position(b"\x00\xffbinary head \xc3\xbc\r\n", 123_456_789_012)
    checkpoint.save(position)
    assert checkpoint.load() == position
    assert not (tmp_path / "cp.tmp").exists()
    checkpoint.save(Position(HEAD, 5))
    assert checkpoint.load() == Position(HEAD, 5)
    with_tail = Position(HEAD, 77, b";;0\n")  # the last line's bytes, to find the day
    checkpoint.save(with_tail)
    assert checkpoint.load() == with_tail


def test_no_checkpoint_yet(tmp_path: Path) -> None:
    assert Checkpoint(tmp_path / "none").load() is None


@pytest.mark.parametrize("content", [b"", b"{not json", b"\x00\x00\x00", b'{"head": "AA=='])
def test_corrupt_checkpoint_reads_as_none(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cp"
    path.write_bytes(content)
    assert Checkpoint(path).load() is None


@pytest.mark.parametrize(
    "content",
    [
        b"[]",
        b"{}",
        b'{"head": "aGVhZAo="}',
        b'{"head": 5, "offset": 1}',
        b'{"head": "not base64!", "offset": 1}',
        b'{"head": "aGVhZAo=", "offset": "x"}',
        b'{"head": "aGVhZAo=", "offset": null}',
        b'{"head": "aGVhZAo=", "offset": -5}',
    ],
)
def test_checkpoint_of_the_wrong_shape_reads_as_none(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cp"
    path.write_bytes(content)
    assert Checkpoint(path).load() is None


def test_advances_only_over_the_contiguous_confirmed_prefix(tracker: ConfirmTracker) -> None:
    done = [tracker.expect(Position(HEAD, offset)) for offset in (10, 20, 30, 40)]
    assert _saved(tracker) is None
    done[1]()
    done[2]()
    assert _saved(tracker) is None  # 10 is not confirmed: nothing before 20 is safe
    done[0]()
    assert _saved(tracker) == Position(HEAD, 30)
    done[3]()
    assert _saved(tracker) == Position(HEAD, 40)


def test_out_of_order_confirms_in_reverse(tracker: ConfirmTracker) -> None:
    done = [tracker.expect(Position(HEAD, offset)) for offset in range(1, 6)]
    for confirm in reversed(done[1:]):
        confirm()
        assert _saved(tracker) is None
    done[0]()
    assert _saved(tracker) == Position(HEAD, 5)


def test_new_head_after_rotation(tracker: ConfirmTracker) -> None:
    old = tracker.expect(Position(HEAD, 100))
    new_head = HEAD.replace(b"07-15", b"07-16")
    new = tracker.expect(Position(new_head, 40))
    new()
    assert _saved(tracker) is None
    old()
    assert _saved(tracker) == Position(new_head, 40)


def test_the_first_confirm_saves_at_once_then_at_most_every_interval(
    tracker: ConfirmTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(filetail.time, "monotonic", lambda: now[0])
    done = [tracker.expect(Position(HEAD, offset)) for offset in (1, 2, 3)]
    done[0]()
    assert tracker.checkpoint.load() == Position(HEAD, 1)
    now[0] += filetail.CHECKPOINT_EVERY_S / 2
    done[1]()
    assert tracker.checkpoint.load() == Position(HEAD, 1)  # not yet: saves are rate-limited
    now[0] += filetail.CHECKPOINT_EVERY_S
    done[2]()
    assert tracker.checkpoint.load() == Position(HEAD, 3)


def test_flush_without_anything_confirmed_writes_nothing(tracker: ConfirmTracker) -> None:
    tracker.expect(Position(HEAD, 1))
    tracker.flush()
    assert not tracker.checkpoint.path.exists()
