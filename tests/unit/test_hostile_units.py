"""Issue 20 at unit level: the converter, flood logging, sender-scoped ids, listen defaults."""

from __future__ import annotations

import logging
import tomllib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.lines import Line
from cti_journal.gateway.prepare import Preparer, reparser
from cti_journal.gateway.sources import client_subject
from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.enrich import enrich
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.config import (
    ContactSourceSettings,
    GatewaySettings,
    LookupSettings,
    Settings,
)
from cti_journal.shared.consumer import Consumer, Delivery
from cti_journal.shared.convert import digits_value, local_time, whole_number
from cti_journal.shared.errors import BadInputError, ConfigError
from cti_journal.shared.labels import OTHER, BoundedLabels
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.normalize import NumberNormalizer
from cti_journal.shared.record import LineFormat
from cti_journal.writer.pairs import PairCheck
from tests.unit.test_consumer import FakeLink
from tests.unit.test_index import MemorySource


@pytest.mark.parametrize(
    "text",
    ["⁴⁷⁹⁵", "٤٧", "１２", "4" * 4301, "", " 1", "1_000", "+1", "-1", "0x10", "1.0", "²"],
)
def test_whole_number_takes_ascii_digits_only(text: str) -> None:
    with pytest.raises(BadInputError):
        whole_number(text, "field X", 2**31 - 1)


def test_whole_number_reads_leading_zeros_past_int_limit() -> None:
    """int() refuses 5,001 digits even when they are zeros: that was a ValueError per line."""
    assert whole_number("0" * 5000 + "1", "x", 10) == 1
    assert whole_number("-0" + "0" * 5000 + "7", "x", 10, minimum=-10) == -7


def test_a_5000_digit_duration_is_a_bad_line_not_a_crash() -> None:
    line = ("i;2026-11-25 10:00:00;CONN;089;;;;;;;" + "0" * 5000 + "1;1;;;\n").encode()
    assert LineFormat().parse(line).values["rufdauer_ms"] == 1


@pytest.mark.parametrize(
    "text", ["２０２６-11-25 10:00:00", "2026-11-25 1٠:00:00", "2026-02-30 10:00:00"]
)
def test_local_time_refuses_other_scripts_and_impossible_dates(text: str) -> None:
    with pytest.raises(BadInputError):
        local_time(text)


def test_digits_value_bounds_the_length() -> None:
    assert digits_value("0891234567") == 891234567
    with pytest.raises(BadInputError):
        digits_value("9" * 31)


def test_a_flood_of_garbage_lines_logs_one_line_per_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """5,000 garbage lines used to be 5,000 warnings; every one is still counted."""
    metrics = make_metrics()
    preparer = Preparer(GatewaySettings(), metrics)
    with caplog.at_level(logging.WARNING, "cti_journal.gateway.prepare"):
        for i in range(5000):
            preparer.prepare(Line(b"garbage %d\n" % i), "tcp x", 0.0)
        preparer.prepare(Line(b" \n"), "tcp x", 0.0)
    assert len(caplog.records) == 2  # "parse" once, "whitespace" once
    rejected = metrics.registry.get_sample_value(
        "cti_journal_entries_rejected_total", {"reason": "parse"}
    )
    assert rejected == 5000


def test_an_explicit_id_is_scoped_to_its_sender() -> None:
    ids = EventIdentifier("cti")
    a = ids.identify({}, "pbx1-000123", "cert:CN=pbx-a")
    b = ids.identify({}, "pbx1-000123", "cert:CN=pbx-b")
    assert a != b
    assert a == EventIdentifier("cti").identify({}, "pbx1-000123", "cert:CN=pbx-a")
    # the one configured server (tcp client, file): unchanged, so ids of a running deployment
    # and of both members of a gateway pair stay what they were
    assert ids.identify({}, "pbx1-000123") == EventIdentifier("cti").identify({}, "pbx1-000123")


def test_client_subject_is_stable_text() -> None:
    cert = {"subject": ((("countryName", "DE"),), (("commonName", "pbx-a"),))}
    assert client_subject(cert) == "countryName=DE,commonName=pbx-a"
    assert client_subject({}) == "" and client_subject(None) == ""


def test_listen_and_metrics_defaults_have_budgets() -> None:
    g = GatewaySettings()
    assert g.idle_timeout_s > 0 and g.line_timeout_s > 0 and g.handshake_timeout_s > 0
    s = Settings()
    assert s.metrics_address == "127.0.0.1"
    assert s.metrics_max_connections > 0 and s.metrics_idle_timeout_s > 0


# -- finding 8: memory bounded by configuration, not by input ------------------------------------
def _long_number_entries(n: int) -> list[JournalEntry]:
    return [
        JournalEntry(
            event_id=f"e{i}",
            source="cti",
            received_at=0.0,
            in_out="i",
            zeitpunkt="2026-11-25 10:00:00",
            utc="2026-11-25T09:00:00Z",
            verb_zustand="CONN",
            rufnummer="089" + f"{i:08d}" + "9" * 8181,
            gateway="gw",
        )
        for i in range(n)
    ]


def _retained(build: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return after - before


def test_the_pair_check_keeps_digests_not_numbers() -> None:
    """16,000 lines of ~8 KB numbers used to keep the writer at 214 MB for good."""

    def observe() -> PairCheck:
        check = PairCheck()
        check.observe(_long_number_entries(2000))  # decoded from messages, then dropped
        return check

    assert _retained(observe) < 1_000_000  # was 2,000 x 8 KB = 16 MB


def test_a_number_too_long_to_be_one_is_never_read() -> None:
    """The number reader caches per distinct text: 8 KB numbers filled it to 312 MB."""
    reader = NumberNormalizer.from_settings(LookupSettings(area_code="89"))
    index = ContactIndex.build([], reader)

    def look_up() -> int:
        results = [enrich(e, index, relookup=False)[0] for e in _long_number_entries(2000)]
        assert all(r.lookup == Lookup.MISS for r in results)
        return len(results)

    assert _retained(look_up) < 1_000_000  # was the 16 MB of numbers in the reader's cache


def test_gateway_label_values_are_bounded_by_configuration() -> None:
    """10,000 distinct `gateway` values used to be 10,000 series (41 MB of /metrics)."""
    learnt = BoundedLabels(max_seen=3)
    assert [learnt(f"gw{i}") for i in range(5)] == ["gw0", "gw1", "gw2", OTHER, OTHER]
    assert learnt("gw1") == "gw1"
    named = BoundedLabels(["pbx-a/tcp", "pbx-b/tcp"])
    assert {named(f"x{i}") for i in range(10_000)} == {OTHER}
    assert named("pbx-b/tcp") == "pbx-b/tcp"


def test_a_source_beyond_max_contacts_stops_with_an_error_naming_the_setting() -> None:
    """2,000,000 contacts used to be 428 MB plus a second index, with no cap or clear error."""
    settings = ContactSourceSettings(name="crm", dsn="", table="k")
    rows = [ContactRow(str(i), f"N{i}", "", (f"089 {100000 + i}",), settings) for i in range(11)]
    source = MemorySource(settings, rows)
    holder = IndexHolder(LookupSettings(area_code="89", max_contacts=10), sources=[source])
    with pytest.raises(ConfigError, match=r"lookup\.max_contacts") as info:
        holder.start()
    assert "crm" in str(info.value) and "twice" in str(info.value)
    source.rows = rows[:10]
    holder.start()  # within the limit: loads
    try:
        source.rows = rows  # a refresh beyond it keeps the last good index
        holder.refresh_now()
        assert holder.current.records_of("crm") == 10
    finally:
        holder.stop()


def test_a_flood_of_dead_letters_logs_one_line_per_error_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 20 finding 13 in the workers: one warning per dead letter was a log flood."""
    link = FakeLink()
    consumer = Consumer(link, "lookup", 10, lambda _d: None)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "cti_journal.shared.consumer"):
        for tag in range(1, 2001):
            delivery = Delivery(b"{}", {}, False, tag, 0)
            consumer.fail(delivery, BadInputError(f"bad {tag}"))
    assert len(caplog.records) == 1
    dead = link.metrics.registry.get_sample_value(
        "cti_journal_dead_lettered_total", {"stage": "lookup", "error": "BadInputError"}
    )
    assert dead == 2000


def test_compose_and_kubernetes_open_the_metrics_port_explicitly() -> None:
    """The default is loopback now; where Prometheus or the kubelet scrape from outside the
    container, the shipped config must say so itself."""
    root = Path(__file__).resolve().parents[2] / "deploy"
    compose = tomllib.loads((root / "compose/cti-journal.toml").read_text(encoding="utf-8"))
    configmap = yaml.safe_load((root / "kubernetes/base/config.yaml").read_text(encoding="utf-8"))
    kubernetes = tomllib.loads(configmap["data"]["cti-journal.toml"])
    assert compose["metrics_address"] == kubernetes["metrics_address"] == "0.0.0.0"


def test_dlq_replay_reads_a_crafted_length_header_as_bad_input() -> None:
    """A dead letter's x-cti-raw-bytes compared as given: a string raised TypeError in replay."""
    reparse = reparser(Settings())
    line = b"i;2026-11-25 10:00:00;CONN;089123;;;;;;;1;1;;;\n"
    for header in ("9999", None, -1, 2**80, [1]):
        with pytest.raises(BadInputError):
            reparse(line, {"x-cti-raw-bytes": header})
    assert reparse(line, {"x-cti-raw-bytes": len(line)})[0] == "lookup"
