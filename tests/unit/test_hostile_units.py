"""Issue 20 at unit level: the converter, flood logging, sender-scoped ids, listen defaults."""

from __future__ import annotations

import logging

import pytest

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.lines import Line
from cti_journal.gateway.prepare import Preparer
from cti_journal.gateway.sources import client_subject
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.convert import digits_value, local_time, whole_number
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.record import LineFormat


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
