"""Per-source metrics of the lookup: records, failures, the time of the last complete load and
the source's max_age_s, which the alert CtiJournalContactSourceStale compares."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from cti_journal.lookup.main import publish_source_limits, refresh_reporter
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.metrics import LOOKUP, make_metrics


def test_a_complete_load_sets_its_time_and_a_failure_does_not() -> None:
    registry = CollectorRegistry()
    metrics = make_metrics(registry, LOOKUP)
    sources = (
        ContactSourceSettings(name="crm", type="file", path="x.csv", max_age_s=900),
        ContactSourceSettings(name="ad", type="file", path="y.csv"),
    )
    publish_source_limits(metrics, LookupSettings(sources=sources))
    report = refresh_reporter(metrics)

    def sample(name: str, source: str) -> float | None:
        return registry.get_sample_value(f"cti_journal_{name}", {"source": source})

    assert sample("contact_source_max_age_seconds", "crm") == 900
    assert sample("contact_source_max_age_seconds", "ad") == 3600
    assert sample("contact_refresh_failures_total", "crm") == 0  # present before a failure
    before = time.time()
    report("crm", True, 120, 0.5)
    stamp = sample("contact_source_last_success_timestamp_seconds", "crm")
    assert stamp is not None and before <= stamp <= time.time()
    report("crm", False, 120, 0.0)
    assert sample("contact_source_last_success_timestamp_seconds", "crm") == stamp
    assert sample("contact_refresh_failures_total", "crm") == 1
    assert sample("contacts", "crm") == 120
