"""`observe_many` (shared/metrics.py) exposes what one `observe` per amount exposes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from cti_journal.shared.metrics import _LATENCY_BUCKETS, make_metrics, observe_many

PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
# Multiples of 1/1024 s (the bounds among them: 0.25, 0.5, 1, 2.5, 5, …): their sums are exact,
# so the exposition must match to the byte. The other amounts test the buckets and the count.
exact = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 2.0**20]),
    st.integers(0, 400 * 1024).map(lambda n: n / 1024),
)
near = st.sampled_from(_LATENCY_BUCKETS).flatmap(
    lambda b: st.sampled_from([b * (1 - 1e-12), b * (1 + 1e-12)])
)


def _both(batches: list[list[float]]) -> tuple[CollectorRegistry, CollectorRegistry]:
    one, bulk = CollectorRegistry(), CollectorRegistry()
    each, many = make_metrics(one, "writer"), make_metrics(bulk, "writer")
    for batch in batches:
        for amount in batch:
            each.end_to_end_seconds.observe(amount)
        observe_many(many.end_to_end_seconds, batch)
    return one, bulk


def _histogram_lines(registry: CollectorRegistry) -> list[str]:
    """The histogram's exposition, but the time it was created at (each registry's own)."""
    text = generate_latest(registry).decode()
    return [
        line
        for line in text.splitlines()
        if "cti_journal_end_to_end_seconds" in line and "_created" not in line
    ]


@PROPERTY
@given(st.lists(st.lists(exact, max_size=40), max_size=6))
def test_the_exposition_is_the_one_of_observing_each(batches):
    one, bulk = _both(batches)
    assert _histogram_lines(bulk) == _histogram_lines(one)
    assert len(_histogram_lines(one)) == 2 + len(_LATENCY_BUCKETS) + 1 + 2  # HELP, TYPE, …


@PROPERTY
@given(
    st.lists(
        st.lists(
            st.one_of(near, st.sampled_from(_LATENCY_BUCKETS), st.floats(0, 1e4)), max_size=40
        ),
        max_size=6,
    )
)
def test_any_amounts_land_in_the_same_buckets_and_sum(batches):
    one, bulk = _both(batches)
    name = "cti_journal_end_to_end_seconds"
    for bound in [*_LATENCY_BUCKETS, float("inf")]:
        le = "+Inf" if bound == float("inf") else str(float(bound))
        labels = {"le": le}
        assert bulk.get_sample_value(f"{name}_bucket", labels) == one.get_sample_value(
            f"{name}_bucket", labels
        ), le
    assert bulk.get_sample_value(f"{name}_count") == one.get_sample_value(f"{name}_count")
    total = one.get_sample_value(f"{name}_sum")
    assert abs(bulk.get_sample_value(f"{name}_sum") - total) <= 1e-9 * max(1.0, total)
