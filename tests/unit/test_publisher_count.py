"""What a gateway says it holds at a stop (`GatewayPublisher.unconfirmed`): exit 1 and the count
without a spool depend on it, so entries a privacy rule dropped must not make it too low, and a
spool's records must not be counted twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cti_journal.gateway.intake import MemoryBuffer
from cti_journal.gateway.prepare import SKIP, Outgoing
from cti_journal.gateway.publisher import GatewayPublisher
from cti_journal.gateway.spool import SpoolBuffer
from cti_journal.shared.metrics import make_metrics


class Link:
    """The seam the publisher uses; publishes are held for the test to confirm or refuse."""

    def __init__(self) -> None:
        self.timers: list[Callable[[], None]] = []
        self.sent: list[Callable[[bool], None]] = []
        self.holding = False
        self.degraded = False
        self.in_flight = 0

    def can_publish(self, window: int) -> bool:
        return len(self.sent) < window

    def publish(
        self, _key: str, _body: bytes, on_confirm: Callable[[bool], None], **_: Any
    ) -> bool:
        self.sent.append(on_confirm)
        return True

    def call_later(self, _delay: float, fn: Callable[[], None]) -> None:
        self.timers.append(fn)

    def retry_in_s(self) -> float:
        return 0.0

    def run_timers(self) -> None:
        timers, self.timers = self.timers, []
        for fn in timers:
            fn()


def _publisher(buffer: Any) -> tuple[GatewayPublisher, Link]:
    link = Link()
    return GatewayPublisher(link, buffer, 1000, make_metrics(), 1), link  # type: ignore[arg-type]


def test_entries_dropped_by_a_rule_leave_the_count_right() -> None:
    buffer = MemoryBuffer(100, lambda: None)
    publisher, link = _publisher(buffer)
    buffer.put([Outgoing(SKIP, b"") for _ in range(3)] + [Outgoing("lookup", b"x")])
    publisher.drain()
    link.run_timers()  # the three dropped entries are done
    assert publisher.unconfirmed == 1
    link.sent[0](False)  # the broker refuses the one real entry
    assert publisher.unconfirmed == 1


def test_a_spool_counts_each_record_once(tmp_path: Path) -> None:
    spool = SpoolBuffer(tmp_path / "spool", 10_000_000, lambda: None)
    try:
        publisher, link = _publisher(spool)
        spool.put([Outgoing("lookup", b"x") for _ in range(5)])
        publisher.drain()
        assert len(link.sent) == 5
        assert publisher.unconfirmed == 5
        link.sent[0](True)
        assert publisher.unconfirmed == 4
    finally:
        spool.close()
