"""Bundles per routing key (gateway/publisher.py): interleaved keys (pre-enriched entries to the
writer, the others to the look-ups) still make full bundles, within a key the order read is
kept, and across refusals, reconnects and confirms in any order every entry is confirmed exactly
once and `unconfirmed`/`idle` stay right."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.gateway.intake import MemoryBuffer
from cti_journal.gateway.prepare import SKIP, Outgoing
from cti_journal.gateway.publisher import _REORDER_BUNDLES, GatewayPublisher
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.topology import DEAD, LOOKUP, WRITE

KEYS = st.sampled_from([LOOKUP, LOOKUP, LOOKUP, WRITE, WRITE, DEAD, SKIP])


class Link:
    """The publisher's seam (as tests/unit/test_publisher_count.py's), with refusals that make
    it hold until released and a reconnect that refuses whatever is in flight."""

    def __init__(self) -> None:
        self.timers: list[Callable[[], None]] = []
        self.flight: list[tuple[list[int], Callable[[bool], None]]] = []
        self.published: list[tuple[str, list[int]]] = []
        self.holding = False
        self.degraded = False

    @property
    def in_flight(self) -> int:
        return len(self.flight)

    def can_publish(self, window: int) -> bool:
        return not self.holding and len(self.flight) < window

    def publish(self, key: str, body: bytes, on_confirm: Callable[[bool], None], **_: Any) -> bool:
        numbers = orjson.loads(body)
        numbers = numbers if isinstance(numbers, list) else [numbers]
        self.published.append((key, numbers))
        self.flight.append((numbers, on_confirm))
        return True

    def call_later(self, _delay: float, fn: Callable[[], None]) -> None:
        self.timers.append(fn)

    def retry_in_s(self) -> float:
        return 0.0

    def run_timers(self) -> None:
        timers, self.timers = self.timers, []
        for fn in timers:
            fn()

    def confirm(self, index: int, ok: bool) -> list[int]:
        numbers, on_confirm = self.flight.pop(index % len(self.flight))
        self.holding = self.holding or not ok
        on_confirm(ok)
        return numbers if ok else []

    def reconnect(self) -> None:
        flight, self.flight = self.flight, []
        for _numbers, on_confirm in flight:
            on_confirm(False)
        self.holding = False


def _setup(bundle_max: int, window: int = 1000) -> tuple[GatewayPublisher, Link, MemoryBuffer]:
    link = Link()
    buffer = MemoryBuffer(1_000_000, lambda: None)
    metrics = make_metrics()
    publisher = GatewayPublisher(link, buffer, window, metrics, bundle_max)  # type: ignore[arg-type]
    return publisher, link, buffer


def _put(buffer: MemoryBuffer, keys: list[str], first: int, done: Counter[int]) -> None:
    def mark(n: int) -> Callable[[], None]:
        return lambda: done.update([n])

    numbers = range(first, first + len(keys))
    outs = [
        Outgoing(key, b"" if key == SKIP else b"%d" % n)
        for key, n in zip(keys, numbers, strict=True)
    ]
    buffer.put(outs, [mark(n) for n in numbers])


def _bundles_of(link: Link, key: str) -> list[list[int]]:
    return [numbers for k, numbers in link.published if k == key]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bundle_max=st.integers(1, 6),
    window=st.integers(1, 5),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.lists(KEYS, min_size=1, max_size=20)),
            st.tuples(st.just("confirm"), st.integers(0, 50), st.booleans()),
            st.tuples(st.just("reconnect")),
            st.tuples(st.just("timers")),
        ),
        max_size=40,
    ),
    seed=st.integers(0, 2**16),
)
def test_every_entry_is_confirmed_once_in_key_order(
    bundle_max: int, window: int, steps: list[tuple[Any, ...]], seed: int
) -> None:
    publisher, link, buffer = _setup(bundle_max, window)
    done: Counter[int] = Counter()
    keys: dict[int, str] = {}
    confirmed: Counter[int] = Counter()

    def check() -> None:
        skipped_done = sum(1 for n in done if keys[n] == SKIP)
        assert publisher.unconfirmed == len(keys) - len(done)
        assert publisher.confirmed == sum(confirmed.values()) + skipped_done
        assert publisher.idle == (len(done) == len(keys))

    for step in steps:
        if step[0] == "put":
            first = len(keys) + 1
            keys.update(zip(range(first, first + len(step[1])), step[1], strict=True))
            _put(buffer, step[1], first, done)
            publisher.wake()
        elif step[0] == "confirm" and link.flight:
            confirmed.update(link.confirm(step[1], step[2]))
        elif step[0] == "reconnect":
            link.reconnect()
        else:
            link.holding = False
            link.run_timers()
        assert max(done.values(), default=1) == 1
        check()

    rng = random.Random(seed)
    link.holding = False
    for _ in range(10_000):  # everything left is confirmed, in any order
        link.run_timers()
        publisher.drain()
        if not link.flight and not link.timers:
            break
        if link.flight:
            confirmed.update(link.confirm(rng.randrange(len(link.flight)), True))
    check()
    assert publisher.idle
    assert done == Counter(list(keys))  # every entry's source told once
    assert confirmed == Counter(n for n, key in keys.items() if key != SKIP)

    for key in (LOOKUP, WRITE, DEAD):
        first_sends: list[int] = []
        seen: set[int] = set()
        for numbers in _bundles_of(link, key):
            assert all(keys[n] == key for n in numbers)
            if numbers[0] not in seen:
                first_sends += numbers
                seen.update(numbers)
        assert first_sends == sorted(first_sends)  # the order read, within a key
    assert all(len(numbers) == 1 for numbers in _bundles_of(link, DEAD))
    assert all(len(numbers) <= bundle_max for _key, numbers in link.published)


@settings(max_examples=150, deadline=None)
@given(
    bundle_max=st.integers(1, 12),
    keys=st.lists(st.sampled_from([LOOKUP, WRITE]), max_size=300),
)
def test_bundles_are_full_while_a_key_has_entries_waiting(bundle_max: int, keys: list[str]) -> None:
    """With everything waiting, a key's bundle is short only if it is its last one, or if the
    next entry of its key lies more than the reorder bound behind its first entry."""
    publisher, link, buffer = _setup(bundle_max, window=1_000_000)
    _put(buffer, keys, 1, Counter())
    publisher.drain()
    bound = _REORDER_BUNDLES * bundle_max
    for key in (LOOKUP, WRITE):
        bundles = _bundles_of(link, key)
        assert [n for numbers in bundles for n in numbers] == [
            n for n, k in enumerate(keys, 1) if k == key
        ]
        for numbers, following in pairwise(bundles):
            assert len(numbers) == bundle_max or following[0] - numbers[0] > bound


def test_thirty_percent_pre_enriched_make_full_bundles() -> None:
    rng = random.Random(18)
    keys = [WRITE if rng.random() < 0.3 else LOOKUP for _ in range(10_000)]
    publisher, link, buffer = _setup(50, window=1_000_000)
    _put(buffer, keys, 1, Counter())
    publisher.drain()
    counts = Counter(keys)
    least = -(-counts[LOOKUP] // 50) + -(-counts[WRITE] // 50)  # 200 or 201
    assert len(link.published) <= least + 2
    assert sum(map(len, (numbers for _key, numbers in link.published))) == 10_000
