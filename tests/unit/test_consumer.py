"""The one place that acks (shared/consumer.py), driven through a fake link."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.consumer import ATTEMPT, Consumer, Delivery, dead_letter_headers
from cti_journal.shared.errors import (
    BadInputError,
    ConnectionLostError,
    PermanentError,
    TransientError,
)
from cti_journal.shared.message import JournalEntry, encode_bundle
from cti_journal.shared.metrics import Metrics, make_metrics
from cti_journal.shared.topology import Topology


@dataclass
class Published:
    routing_key: str
    body: bytes
    headers: Mapping[str, Any] | None
    confirm: Callable[[bool], None]


@dataclass
class FakeLink:
    """The seam Consumer uses: publish/ack/nack_requeue/call_later/consume + settings."""

    broker: BrokerSettings = field(
        default_factory=lambda: BrokerSettings(retry_delays_ms=(100, 200, 300), max_attempts=3)
    )
    metrics: Metrics = field(default_factory=make_metrics)
    connected: bool = True
    published: list[Published] = field(default_factory=list)
    acks: list[tuple[int, bool]] = field(default_factory=list)
    nacks: list[int] = field(default_factory=list)
    timers: list[Callable[[], None]] = field(default_factory=list)
    consumed: list[tuple[str, int]] = field(default_factory=list)
    hold_s: float = 0.0  # the link's hold after a refused publish
    delays: list[float] = field(default_factory=list)

    def retry_in_s(self) -> float:
        return self.hold_s

    @property
    def topology(self) -> Topology:
        return Topology.from_settings(self.broker)

    def publish(
        self,
        routing_key: str,
        body: bytes,
        on_confirm: Callable[[bool], None],
        *,
        headers: Mapping[str, Any] | None = None,
    ) -> bool:
        if not self.connected:
            return False
        self.published.append(Published(routing_key, body, headers, on_confirm))
        return True

    def ack(self, tag: int, *, multiple: bool = False) -> None:
        self.acks.append((tag, multiple))

    def nack_requeue(self, tag: int) -> None:
        self.nacks.append(tag)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> object:
        self.delays.append(delay_s)
        self.timers.append(fn)
        return fn

    def consume(self, queue: str, prefetch: int, on_message: Any) -> None:
        self.consumed.append((queue, prefetch))
        self.on_message = on_message

    def run_timers(self) -> None:
        timers, self.timers = self.timers, []
        for fn in timers:
            fn()


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def received() -> list[Delivery]:
    return []


@pytest.fixture
def consumer(link: FakeLink, received: list[Delivery]) -> Consumer:
    c = Consumer(link, "lookup", 10, received.append)  # type: ignore[arg-type]
    c.start()
    return c


def _deliver(link: FakeLink, received: list[Delivery], *tags: int, **headers: Any) -> None:
    for tag in tags:
        link.on_message(f"body{tag}".encode(), headers, tag, False)
    assert len(received) >= len(tags)


def _metric(link: FakeLink, name: str, **labels: str) -> float | None:
    return link.metrics.registry.get_sample_value(f"cti_journal_{name}_total", labels)


def test_start_subscribes_to_the_stage_queue(link: FakeLink, consumer: Consumer) -> None:
    assert link.consumed == [("cti-journal.lookup", 10)]


def test_complete_acks(link: FakeLink, consumer: Consumer, received: list[Delivery]) -> None:
    _deliver(link, received, 1)
    assert (received[0].body, received[0].attempt, received[0].redelivered) == (b"body1", 0, False)
    consumer.complete(received[0])
    assert link.acks == []  # the ack goes out from the IOLoop, batched
    link.run_timers()
    assert link.acks == [(1, True)]
    assert consumer.unsettled == 0


def test_forward_acks_only_after_the_confirm(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 7)
    consumer.forward(received[0], "write", b"enriched", {"h": 1})
    (pub,) = link.published
    assert (pub.routing_key, pub.body, pub.headers) == ("write", b"enriched", {"h": 1})
    link.run_timers()
    assert link.acks == []
    pub.confirm(True)
    link.run_timers()
    assert link.acks == [(7, True)]
    assert link.nacks == []


def test_refused_publish_is_requeued_not_acked(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1, 2)
    consumer.forward(received[0], "write", b"x")
    consumer.complete(received[1])
    link.published[0].confirm(False)
    link.run_timers()
    assert link.nacks == [1]
    assert link.acks == [(2, True)]  # 1 is no longer outstanding at the broker


def test_a_refused_entry_is_given_back_only_after_the_links_hold(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    """Every requeue counts against x-delivery-limit: given back at once, a refused entry is
    dead-lettered by the broker within seconds of a cluster node's loss."""
    link.hold_s = 0.5
    _deliver(link, received, 1)
    consumer.forward(received[0], "write", b"x")
    link.published[0].confirm(False)
    assert link.nacks == [] and link.delays == [0.5]
    link.run_timers()
    assert link.nacks == [1]


@pytest.mark.parametrize(
    "error",
    [BadInputError("field Name: control character"), PermanentError("too long", column="Name")],
)
def test_permanent_failures_are_dead_lettered_then_acked(
    link: FakeLink, consumer: Consumer, received: list[Delivery], error: Exception
) -> None:
    _deliver(link, received, 3)
    consumer.fail(received[0], error)
    (pub,) = link.published
    assert (pub.routing_key, pub.body) == ("dead", b"body3")
    headers = dict(pub.headers or {})
    assert headers["x-cti-reason"] == str(error)
    assert headers["x-cti-error"] == type(error).__name__
    assert headers["x-cti-stage"] == "lookup"
    assert headers[ATTEMPT] == 1
    if isinstance(error, PermanentError):
        assert headers["x-cti-column"] == "Name"
    else:
        assert "x-cti-column" not in headers
    link.run_timers()
    assert link.acks == []
    pub.confirm(True)
    link.run_timers()
    assert link.acks == [(3, True)]
    assert _metric(link, "dead_lettered", stage="lookup", error=type(error).__name__) == 1.0
    assert _metric(link, "retried", stage="lookup") == 0.0  # at 0 from the start, never counted


def test_transient_failures_retry_with_growing_delay_then_dead_letter(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    error = ConnectionLostError("database gone")
    _deliver(link, received, 1)
    consumer.fail(received[0], error)
    _deliver(link, received, 2, **{ATTEMPT: 1, "x-keep": "kept"})
    consumer.fail(received[1], TransientError("deadlock"))
    _deliver(link, received, 3, **{ATTEMPT: 2})
    consumer.fail(received[2], error)
    keys = [p.routing_key for p in link.published]
    assert keys == ["retry.lookup.0", "retry.lookup.1", "dead"]
    assert link.published[0].headers == {ATTEMPT: 1, "x-cti-last-error": "database gone"}
    assert link.published[1].headers == {
        ATTEMPT: 2,
        "x-keep": "kept",
        "x-cti-last-error": "deadlock",
    }
    assert (link.published[2].headers or {})[ATTEMPT] == 3
    assert (link.published[2].headers or {})["x-cti-error"] == "ConnectionLostError"
    assert all(p.body == f"body{i}".encode() for i, p in enumerate(link.published, 1))
    for pub in link.published:
        pub.confirm(True)
    link.run_timers()
    assert link.acks == [(3, True)]
    assert _metric(link, "retried", stage="lookup") == 2.0
    assert _metric(link, "dead_lettered", stage="lookup", error="ConnectionLostError") == 1.0


def test_retry_key_stays_at_the_last_delay() -> None:
    topology = Topology("p", (1, 2, 3), 20)
    assert [topology.retry_key("write", a) for a in (0, 1, 2, 3, 4, 9)] == [
        "retry.write.0",
        "retry.write.0",
        "retry.write.1",
        "retry.write.2",
        "retry.write.2",
        "retry.write.2",
    ]


def test_garbage_attempt_header_counts_as_first(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1, **{ATTEMPT: "x"})
    assert received[0].attempt == 0
    consumer.fail(received[0], TransientError("t"))
    assert link.published[0].routing_key == "retry.lookup.0"


def test_acks_cover_only_the_contiguous_settled_prefix(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1, 2, 3, 4, 5)
    d = {delivery._tag: delivery for delivery in received}
    consumer.complete(d[2])
    consumer.complete(d[3])
    link.run_timers()
    assert link.acks == []  # 1 is not settled: acking 3 multiple would ack it too
    consumer.complete(d[1])
    consumer.complete(d[5])
    link.run_timers()
    assert link.acks == [(3, True)]
    assert consumer.unsettled == 2
    consumer.complete(d[4])
    link.run_timers()
    assert link.acks == [(3, True), (5, True)]
    assert consumer.unsettled == 0


def test_one_flush_per_burst(link: FakeLink, consumer: Consumer, received: list[Delivery]) -> None:
    _deliver(link, received, 1, 2, 3)
    for delivery in received:
        consumer.complete(delivery)
    assert len(link.timers) == 1
    link.run_timers()
    assert link.acks == [(3, True)]


def test_deliveries_of_a_lost_channel_are_never_acked(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1, 2)
    consumer.forward(received[0], "write", b"x")
    consumer.lost()
    assert consumer.unsettled == 0
    link.published[0].confirm(True)  # a late confirm of the old channel
    consumer.complete(received[1])
    consumer.fail(received[1], BadInputError("x"))
    link.run_timers()
    assert link.acks == []
    assert len(link.published) == 1  # nothing published for a void delivery
    # the new channel starts its tags at 1 again
    consumer.start()
    _deliver(link, received, 1)
    consumer.complete(received[2])
    link.run_timers()
    assert link.acks == [(1, True)]


def test_confirm_false_of_a_lost_channel_is_not_nacked(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1)
    consumer.forward(received[0], "write", b"x")
    consumer.lost()
    link.published[0].confirm(False)
    link.run_timers()
    assert (link.nacks, link.acks) == ([], [])


def test_publish_while_disconnected_neither_acks_nor_nacks(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1)
    link.connected = False
    consumer.forward(received[0], "write", b"x")
    link.run_timers()
    assert (link.published, link.acks, link.nacks) == ([], [], [])
    assert consumer.unsettled == 1


def test_dead_letter_headers() -> None:
    error = PermanentError("x" * 5000, column="Journal_Name")
    headers = dead_letter_headers("write", error, attempt=4, extra={"x-more": 1})
    assert headers["x-cti-reason"] == "x" * 2000
    assert headers["x-cti-column"] == "Journal_Name"
    assert headers[ATTEMPT] == 4
    assert headers["x-more"] == 1
    assert set(headers) == {
        "x-cti-stage",
        "x-cti-error",
        "x-cti-reason",
        "x-cti-host",
        "x-cti-failed-at",
        ATTEMPT,
        "x-cti-column",
        "x-more",
    }


def test_a_requeued_tag_is_never_acked(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    """RabbitMQ closes the channel (PRECONDITION_FAILED - unknown delivery tag) for an ack of a
    tag it no longer holds, multiple or not; a nacked tag must not be the one acked."""
    _deliver(link, received, 1, 2)
    consumer.complete(received[0])
    consumer.forward(received[1], "write", b"x")
    link.published[0].confirm(False)
    link.run_timers()
    assert link.nacks == [2]
    assert link.acks == [(1, True)]
    _deliver(link, received, 3)
    consumer.forward(received[2], "write", b"y")
    link.published[1].confirm(False)
    link.run_timers()
    assert link.nacks == [2, 3]
    assert link.acks == [(1, True)]
    assert consumer.unsettled == 0


def test_settle_parts_sends_each_failed_entry_its_own_way_then_acks_the_bundle(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1)
    consumer.settle_parts(
        received[0],
        [
            (b"poison", PermanentError("value too large", column="X")),
            (b"busy", TransientError("lock")),
        ],
    )
    assert [(p.routing_key, p.body) for p in link.published] == [
        ("dead", b"poison"),
        ("retry.lookup.0", b"busy"),
    ]
    assert link.published[0].headers is not None
    assert link.published[0].headers["x-cti-column"] == "X"
    link.published[0].confirm(True)
    link.run_timers()
    assert link.acks == []  # not before every part is confirmed
    link.published[1].confirm(True)
    link.run_timers()
    assert link.acks == [(1, True)]


def test_settle_parts_gives_the_bundle_back_when_a_part_is_refused(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    _deliver(link, received, 1)
    consumer.settle_parts(received[0], [(b"a", PermanentError("x")), (b"b", PermanentError("y"))])
    link.published[0].confirm(False)
    link.published[1].confirm(True)
    link.run_timers()
    assert link.nacks == [1]  # redelivered: its committed entries are skipped by the ledger


def test_entries_decodes_a_bundle_and_dead_letters_what_is_not_entries(
    link: FakeLink, consumer: Consumer, received: list[Delivery]
) -> None:
    entry = JournalEntry("e", "cti", 1, "o", "2026-01-15 08:00:00", "2026-01-15T07:00:00Z", "BUSY")
    link.on_message(encode_bundle([entry.encode(), entry.encode()]), {}, 1, False)
    link.on_message(b"not json", {}, 2, False)
    assert consumer.entries(received[0]) == [entry, entry]
    assert link.published == []
    assert consumer.entries(received[1]) is None
    assert [(p.routing_key, p.body) for p in link.published] == [("dead", b"not json")]
    assert (link.published[0].headers or {})["x-cti-error"] == "BadInputError"


def test_the_stages_retry_and_dead_letter_series_exist_at_zero(
    link: FakeLink, consumer: Consumer
) -> None:
    """So the dashboard's retry and dead-letter panels show 0 rather than no data."""
    assert _metric(link, "retried", stage="lookup") == 0.0
    for error in ("BadInputError", "PermanentError"):
        assert _metric(link, "dead_lettered", stage="lookup", error=error) == 0.0
