"""The file tail across day.log's rotation into journal.log (gateway/filetail.py), step by step.

Each test stages the CTI server's moves at a chosen moment of the tail's own loop (a `stop`
event whose `wait` acts, or a hook after the restart's re-reading), so the interleavings that a
soak only meets by chance run the same way every time. journal.log always holds an earlier day
first, as it does on a server that has run for a while. What is checked: every line of day.log
handed to the publisher exactly once, whole, and none dead-lettered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cti_journal.gateway.filetail import Checkpoint, FileTailSource, Position
from cti_journal.gateway.intake import Done
from cti_journal.gateway.lines import Line
from cti_journal.gateway.prepare import Outgoing
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.topology import DEAD
from cti_journal.simulator.calls import generate_calls
from cti_journal.simulator.server import Simulator


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Realistic journal lines from the simulator, every one distinct (a call center has
    identical calls in the same second; here each line must be told apart by its bytes)."""
    path = tmp_path_factory.mktemp("calls") / "day.log"
    Simulator(generate_calls(41, 3000)).write_file(path)
    lines = list(dict.fromkeys(path.read_bytes().splitlines(keepends=True)))
    assert len(lines) > 2600
    return lines


class Recorder:
    """The publisher's side of the buffer: keeps what was handed over, confirms at once."""

    def __init__(self) -> None:
        self.abort = threading.Event()
        self.outs: list[Outgoing] = []

    def put(self, outs: list[Outgoing], on_published: list[Done | None] | None = None) -> bool:
        self.outs.extend(outs)
        for done in on_published or []:
            if done is not None:
                done()
        return True


class Tail(FileTailSource):
    """The file source, noting each line it hands over."""

    def __init__(self, day: Path) -> None:
        settings = GatewaySettings(source="file", path=str(day), timezone="Europe/Berlin")
        super().__init__(settings, make_metrics())
        self.lines: list[bytes] = []

    def _hand_over(
        self, lines: list[Line], head: bytes, buffer: object, path: Path | None = None
    ) -> bool:
        self.lines.extend(line.raw for line in lines)
        return super()._hand_over(lines, head, buffer, path)  # type: ignore[arg-type]


class Steps(threading.Event):
    """`stop` for the tail: each time the tail has read all there is and waits, the next step
    runs (the server's next move); after the last one, the tail is stopped once it has handed
    over `expected` lines, or after a bounded number of further waits."""

    def __init__(self, steps: list[Callable[[], None]], tail: Tail, expected: int) -> None:
        super().__init__()
        self.steps: Iterator[Callable[[], None]] = iter(steps)
        self.tail, self.expected, self.idle = tail, expected, 0

    def wait(self, timeout: float | None = None) -> bool:
        step = next(self.steps, None)
        if step is not None:
            step()
        elif len(self.tail.lines) >= self.expected or self.idle > 200:
            self.set()
        else:
            self.idle += 1
        return self.is_set()


def rotate(day: Path) -> None:
    """The server's day change: day.log's entries to the end of journal.log, day.log empty."""
    with open(day.with_name("journal.log"), "ab") as journal:
        journal.write(day.read_bytes())
    day.write_bytes(b"")


def append(day: Path, data: bytes) -> None:
    with open(day, "ab") as fh:
        fh.write(data)


def run(tail: Tail, stop: threading.Event) -> Recorder:
    recorder = Recorder()
    thread = threading.Thread(target=tail.run, args=(recorder, stop), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the tail did not stop"
    return recorder


def assert_each_once(tail: Tail, recorder: Recorder, expected: list[bytes]) -> None:
    dead = [out.body[:80] for out in recorder.outs if out.routing_key == DEAD]
    assert dead == [], "a line was cut: the tail resumed inside it"
    assert tail.lines == expected


@pytest.fixture
def day(tmp_path: Path, calls: list[bytes]) -> Path:
    day = tmp_path / "Journal" / "day.log"
    day.parent.mkdir()
    (day.with_name("journal.log")).write_bytes(b"".join(calls[:10]))  # an earlier day
    return day


def test_a_line_half_written_at_the_day_change_is_read_whole(day: Path, calls: list[bytes]) -> None:
    """The tail sees the day's last line half written (a write reaches the page cache in
    pieces); the day changes before it reads again: the line's rest is only in journal.log."""
    today, tomorrow = calls[10:20], calls[20:25]
    last = today[-1]
    day.write_bytes(b"".join(today[:-1]) + last[:25])

    def day_change() -> None:
        append(day, last[25:])
        rotate(day)
        append(day, b"".join(tomorrow))

    tail = Tail(day)
    recorder = run(tail, Steps([day_change], tail, len(today) + len(tomorrow)))
    assert_each_once(tail, recorder, today + tomorrow)


def test_a_restart_just_before_the_day_change_resumes_in_journal_log(
    day: Path, calls: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soak's case: the gateway restarts, finds day.log still on its checkpoint's day,
    re-reads the lines before the checkpoint, and then the day changes."""
    # Long enough that the day's start is not in the handle's buffer when the tail is there.
    today, tomorrow = calls[10:2500], calls[2500:2503]
    day.write_bytes(b"".join(today))
    done = 2000  # confirmed before the restart
    Checkpoint(day.with_name("day.log.cti-journal")).save(
        Position(today[0], len(b"".join(today[:done])))
    )
    rescan = FileTailSource._rescan

    def rescan_then_day_change(self: FileTailSource, fh: object, end: int) -> object:
        result = rescan(self, fh, end)  # type: ignore[arg-type]
        rotate(day)
        append(day, b"".join(tomorrow))
        return result

    monkeypatch.setattr(FileTailSource, "_rescan", rescan_then_day_change)
    tail = Tail(day)
    expected = today[done:] + tomorrow
    recorder = run(tail, Steps([], tail, len(expected)))
    assert_each_once(tail, recorder, expected)


def test_a_short_day_overtaken_by_the_next_before_the_tail_looks(
    day: Path, calls: list[bytes]
) -> None:
    """day.log emptied in place and the next day already longer than the old one when the
    tail looks again: its handle now reads the next day's bytes, not the old day's rest."""
    today, tomorrow = calls[10:12], calls[12:30]
    day.write_bytes(b"".join(today))

    def day_change() -> None:
        rotate(day)
        append(day, b"".join(tomorrow))

    tail = Tail(day)
    recorder = run(tail, Steps([day_change], tail, len(today) + len(tomorrow)))
    assert_each_once(tail, recorder, today + tomorrow)


def test_the_day_changed_while_the_gateway_was_down(day: Path, calls: list[bytes]) -> None:
    today, tomorrow = calls[10:30], calls[30:35]
    day.write_bytes(b"".join(today))
    done = 12
    Checkpoint(day.with_name("day.log.cti-journal")).save(
        Position(today[0], len(b"".join(today[:done])))
    )
    rotate(day)
    append(day, b"".join(tomorrow))
    tail = Tail(day)
    expected = today[done:] + tomorrow
    recorder = run(tail, Steps([], tail, len(expected)))
    assert_each_once(tail, recorder, expected)


def test_a_day_whose_first_line_comes_again_is_found_at_its_start(
    day: Path, calls: list[bytes]
) -> None:
    """Identical calls in the same second: the day's first line is also its second. Its rest
    is looked up in journal.log by that line; the later copy is not where the day starts."""
    first = calls[10]
    today, tomorrow = [first, first, *calls[11:30]], calls[30:33]
    day.write_bytes(b"".join(today))
    done = 9
    Checkpoint(day.with_name("day.log.cti-journal")).save(
        Position(first, len(b"".join(today[:done])), today[done - 1])
    )
    rotate(day)
    append(day, b"".join(tomorrow))
    tail = Tail(day)
    expected = today[done:] + tomorrow
    recorder = run(tail, Steps([], tail, len(expected)))
    assert_each_once(tail, recorder, expected)


def test_a_checkpoint_without_the_last_line_still_finds_the_day(
    day: Path, calls: list[bytes]
) -> None:
    """A checkpoint written before it kept the last line's bytes: the day's start is the
    latest copy of its first line from which the offset ends a line within journal.log."""
    today, tomorrow = calls[10:30], calls[30:33]
    day.write_bytes(b"".join(today))
    done = 15
    path = day.with_name("day.log.cti-journal")
    Checkpoint(path).save(Position(today[0], len(b"".join(today[:done]))))
    assert b"tail" not in path.read_bytes()
    rotate(day)
    append(day, b"".join(tomorrow))
    tail = Tail(day)
    expected = today[done:] + tomorrow
    recorder = run(tail, Steps([], tail, len(expected)))
    assert_each_once(tail, recorder, expected)


def test_the_soak_seed_7_loss(day: Path, calls: list[bytes]) -> None:
    """As in the soak (`bench.soak --cluster --seed 7`, entries 8,000 and 8,001 identical): the
    day changes right after its last two lines were written, before the tail read them."""
    first = calls[10]
    today = [first, first, *calls[11:40]]
    day.write_bytes(b"".join(today[:-2]))

    def day_change() -> None:
        append(day, b"".join(today[-2:]))
        rotate(day)

    tail = Tail(day)
    recorder = run(tail, Steps([day_change], tail, len(today)))
    assert_each_once(tail, recorder, today)


def test_the_cti_link_gauge_says_whether_day_log_is_there(day: Path, calls: list[bytes]) -> None:
    """A file source reports its CTI link as up while day.log exists, so that the CTI-link
    alert does not fire for a gateway that reads the server's journal file."""
    tail = Tail(day)
    gauge = tail.connected
    missing = Steps([], tail, 1)
    missing.idle = 200  # day.log never appears: stop after the first wait
    run(tail, missing)
    assert gauge._value.get() == 0
    day.write_bytes(b"".join(calls[10:12]))
    run(tail, Steps([], tail, 2))
    assert gauge._value.get() == 1
