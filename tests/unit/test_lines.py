"""The bounded line splitter (gateway/lines.py)."""

from __future__ import annotations

import pytest

from cti_journal.gateway.lines import Line, LineSplitter


def _feed(splitter: LineSplitter, *chunks: bytes) -> list[Line]:
    return [line for chunk in chunks for line in splitter.feed(chunk)]


def test_whole_lines_with_offsets() -> None:
    lines = _feed(LineSplitter(100), b"a;1\nbb;2\r\nc\n")
    assert lines == [
        Line(b"a;1\n", end_offset=4),
        Line(b"bb;2\r\n", end_offset=10),
        Line(b"c\n", end_offset=12),
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_chunking_gives_the_same_lines(size: int) -> None:
    data = b"first line\nsecond\r\n\nthird one here\n" + b"x" * 30 + b"\n"
    whole = _feed(LineSplitter(100), data)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert _feed(LineSplitter(100), *chunks) == whole
    assert [line.end_offset for line in whole] == [11, 19, 35, 66]


def test_empty_lines_are_counted_and_whitespace_lines_are_kept() -> None:
    empty: list[int] = []
    splitter = LineSplitter(100, on_empty=lambda: empty.append(1))
    lines = _feed(splitter, b"\n\r\n  \t\nx\n\n")
    # whitespace is kept (the preparer dead-letters it); empty lines are only counted
    assert lines == [Line(b"  \t\n", end_offset=7), Line(b"x\n", end_offset=9)]
    assert len(empty) == 3
    assert splitter.offset == 10


def test_finish_returns_the_unfinished_last_line() -> None:
    splitter = LineSplitter(5)
    assert _feed(splitter, b"ok\nab") == [Line(b"ok\n", end_offset=3)]
    assert not splitter.at_boundary
    assert splitter.finish() == Line(b"ab", end_offset=5)
    assert splitter.at_boundary and splitter.finish() is None
    _feed(splitter, b"1234567")
    assert splitter.finish() == Line(b"12345", oversized=True, end_offset=12)


def test_partial_tail() -> None:
    splitter = LineSplitter(100)
    assert _feed(splitter, b"a\nbc") == [Line(b"a\n", end_offset=2)]
    assert splitter.partial == b"bc"
    assert splitter.offset == 4
    assert _feed(splitter, b"d\n") == [Line(b"bcd\n", end_offset=6)]
    assert splitter.partial == b""


def test_line_of_exactly_the_limit_is_not_oversized() -> None:
    splitter = LineSplitter(5)
    # limit counts the content without its newline
    assert _feed(splitter, b"12345\n") == [Line(b"12345\n", end_offset=6)]
    assert _feed(splitter, b"123", b"45", b"\n") == [Line(b"12345\n", end_offset=12)]


def test_oversized_line_in_one_chunk() -> None:
    splitter = LineSplitter(5)
    lines = _feed(splitter, b"1234567890\nok\n")
    assert lines == [
        Line(b"12345", oversized=True, end_offset=11),
        Line(b"ok\n", end_offset=14),
    ]


def test_oversized_line_across_chunks_is_reported_once_then_skipped() -> None:
    splitter = LineSplitter(8)
    chunks = [b"ok\nABCDEF", b"GHIJKL", b"M" * 10_000, b"NOP\nnext", b"\n"]
    lines = _feed(splitter, *chunks)
    assert [(line.raw, line.oversized) for line in lines] == [
        (b"ok\n", False),
        (b"ABCDEFGH", True),
        (b"next\n", False),
    ]
    assert lines[2].end_offset == sum(map(len, chunks))
    assert splitter.partial == b""


def test_megabytes_without_newline_hold_at_most_the_limit() -> None:
    splitter = LineSplitter(1024)
    reported = []
    for _ in range(200):
        reported += _feed(splitter, b"z" * 10_000)
        assert len(splitter.partial) <= 1024
    assert reported == []  # reported when its newline arrives, so its end_offset is known
    assert _feed(splitter, b"zz\nafter\n") == [
        Line(b"z" * 1024, oversized=True, end_offset=2_000_003),
        Line(b"after\n", end_offset=2_000_009),
    ]


def test_oversized_line_when_the_newline_is_in_a_later_chunk_at_the_limit() -> None:
    splitter = LineSplitter(4)
    assert _feed(splitter, b"1234") == []
    assert _feed(splitter, b"5\nx\n") == [
        Line(b"1234", oversized=True, end_offset=6),
        Line(b"x\n", end_offset=8),
    ]


def test_oversized_line_end_offset_is_past_its_newline() -> None:
    splitter = LineSplitter(4)
    lines = _feed(splitter, b"123456", b"789\n")
    assert lines == [Line(b"1234", oversized=True, end_offset=10)]
