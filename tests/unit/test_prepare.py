"""Line → message (gateway/prepare.py): routing, dead letters, the spool's packing, dlq replay."""

from __future__ import annotations

import socket

import orjson
import pytest

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.gateway.lines import Line
from cti_journal.gateway.prepare import Outgoing, Preparer, reparser
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.record import LineFormat

RAW = b"i;2026-07-15 14:30:00;CONN;0891234567;;;100;;;;5000;120;;12;0\n"
ENRICHED = b"i;2026-07-15 14:30:00;CONN;0891234567;M\xc3\xbcller;ACME;100;;42;crm;5000;120;;12;0\n"
SETTINGS = GatewaySettings(timezone="Europe/Berlin", source_id="pbx1", max_dead_letter_bytes=16)


def _preparer(**changes: object) -> Preparer:
    settings = GatewaySettings(**{**SETTINGS.__dict__, **changes})  # type: ignore[arg-type]
    return Preparer(settings, make_metrics())


def _sample(p: Preparer, name: str, **labels: str) -> float | None:
    return p.metrics.registry.get_sample_value(f"cti_journal_{name}_total", labels)


def test_good_line_goes_to_lookup() -> None:
    p = _preparer()
    out = p.prepare(Line(RAW), "tcp 10.0.0.1:4711", 1784118600.5)
    assert (out.routing_key, out.headers, out.content_type) == ("lookup", None, "application/json")
    entry = JournalEntry.decode(out.body)
    values = LineFormat(timezone="Europe/Berlin").parse(RAW).values
    assert entry == JournalEntry(
        event_id=EventIdentifier("pbx1").identify(values),
        source="pbx1",
        received_at=1784118600.5,
        gateway=f"{socket.gethostname()}/tcp",  # gateway.name's default
        **values,
    )
    assert _preparer(name="gw-b").prepare(Line(RAW), "x", 1.0).body.count(b'"gateway":"gw-b"')
    assert entry.lookup == Lookup.PENDING
    assert entry.utc == "2026-07-15T12:30:00Z"
    assert _sample(p, "entries_received", source="pbx1") == 1.0


def test_identical_lines_get_distinct_ids_in_one_preparer() -> None:
    p = _preparer()
    ids = [JournalEntry.decode(p.prepare(Line(RAW), "x", 1.0).body).event_id for _ in range(3)]
    assert len(set(ids)) == 3


def test_observe_advances_the_counter_without_publishing() -> None:
    restarted = _preparer()
    restarted.observe(Line(RAW))
    restarted.observe(Line(b"garbage\n"))  # ignored
    restarted.observe(Line(b"12345", oversized=True))  # ignored
    fresh = _preparer()
    fresh.prepare(Line(RAW), "x", 1.0)
    second = fresh.prepare(Line(RAW), "x", 1.0)
    assert restarted.prepare(Line(RAW), "x", 1.0).body == second.body
    assert _sample(restarted, "entries_received", source="pbx1") == 1.0


def test_preenriched_entry_goes_straight_to_the_writer() -> None:
    out = _preparer().prepare(Line(ENRICHED), "x", 2.0)
    assert out.routing_key == "write"
    entry = JournalEntry.decode(out.body)
    assert (entry.lookup, entry.name, entry.datensatz_id) == (Lookup.PRESET, "Müller", "42")


def test_preenriched_entry_with_only_a_record_id_goes_to_the_writer() -> None:
    raw = RAW.replace(b";;;5000", b";77;;5000")
    out = _preparer().prepare(Line(raw), "x", 2.0)
    assert out.routing_key == "write"
    assert JournalEntry.decode(out.body).datensatz_id == "77"


def test_preenriched_lookup_setting_sends_it_to_lookup() -> None:
    out = _preparer(preenriched="lookup").prepare(Line(ENRICHED), "x", 2.0)
    assert out.routing_key == "lookup"
    assert JournalEntry.decode(out.body).lookup == Lookup.PENDING


def test_bad_line_is_dead_lettered_with_reason_and_truncated_raw_bytes() -> None:
    p = _preparer()
    raw = b"i;2026-02-30 10:00:00;CONN;;;;;;;;;;;;\n"
    out = p.prepare(Line(raw), "tcp 10.0.0.1:4711", 1784118600.25)
    assert out.routing_key == "dead"
    assert out.content_type == "application/octet-stream"
    assert out.body == raw[:16]
    headers = out.headers or {}
    assert headers["x-cti-reason"].startswith("field Zeitpunkt: '2026-02-30 10:00:00': ")
    assert headers["x-cti-error"] == "BadInputError"
    assert headers["x-cti-stage"] == "gateway"
    assert headers["x-cti-raw-bytes"] == len(raw)
    assert headers["x-cti-origin"] == "tcp 10.0.0.1:4711"
    assert headers["x-cti-source"] == "pbx1"
    assert headers["x-cti-received-at"] == "1784118600.250"
    assert headers["x-cti-attempt"] == 1
    assert _sample(p, "entries_rejected", reason="parse") == 1.0
    assert _sample(p, "entries_received", source="pbx1") == 1.0


def test_short_bad_line_is_kept_whole() -> None:
    out = _preparer().prepare(Line(b"x\n"), "x", 1.0)
    assert out.body == b"x\n"
    assert (out.headers or {})["x-cti-raw-bytes"] == 2
    assert (out.headers or {})["x-cti-reason"] == "1 fields separated by ';', expected 15"


def test_oversized_line_is_dead_lettered_as_too_long() -> None:
    p = _preparer(max_line_bytes=20)
    out = p.prepare(Line(b"A" * 20, oversized=True), "x", 1.0)
    assert out.routing_key == "dead"
    assert out.body == b"A" * 16
    assert (out.headers or {})["x-cti-reason"] == (
        "line longer than gateway.max_line_bytes (20 bytes)"
    )
    assert _sample(p, "entries_rejected", reason="too_long") == 1.0
    assert (
        _sample(p, "entries_rejected", reason="parse") == 0.0
    )  # at 0 from the start, never counted


def test_bad_lines_do_not_advance_the_identity_counter() -> None:
    p = _preparer()
    p.prepare(Line(b"bad\n"), "x", 1.0)
    first = JournalEntry.decode(p.prepare(Line(RAW), "x", 1.0).body).event_id
    assert first == JournalEntry.decode(_preparer().prepare(Line(RAW), "x", 1.0).body).event_id


@pytest.mark.parametrize(
    "out",
    [
        Outgoing("lookup", b'{"v":1}'),
        Outgoing("retry.write.2", b"", {"x-cti-attempt": 3, "h": "ü"}),
        Outgoing("dead", b"\x00\xff raw", {"x-cti-reason": "r"}, "application/octet-stream"),
    ],
)
def test_outgoing_pack_unpack_round_trip(out: Outgoing) -> None:
    assert Outgoing.unpack(out.pack()) == out


def test_packed_layout() -> None:
    packed = Outgoing("write", b"BODY", {"a": 1}).pack()
    assert packed == b"\x00\x05\x00\x00\x00\x07" + b"write" + b'{"a":1}' + b"BODY"


def _reparse(**changes: object):  # type: ignore[no-untyped-def]
    settings = Settings(
        gateway=GatewaySettings(**{**SETTINGS.__dict__, **changes})  # type: ignore[arg-type]
    )
    return reparser(settings)


def test_reparser_replays_a_fixed_line() -> None:
    bad = RAW.replace(b"2026-07-15", b"15.07.2026")
    dead = _preparer().prepare(Line(bad), "x", 1.0)
    reparse = _reparse(max_dead_letter_bytes=4096)
    with pytest.raises(BadInputError, match=r"^still does not parse: field Zeitpunkt: "):
        reparse(bad, {"x-cti-raw-bytes": len(bad)})
    # the cause fixed (e.g. a field order setting), the same raw line goes through
    key, body = reparse(RAW.rstrip(b"\n"), {"x-cti-raw-bytes": len(RAW) - 1})
    assert key == "lookup"
    assert JournalEntry.decode(body).zeitpunkt == "2026-07-15 14:30:00"
    assert dead.routing_key == "dead"


def test_reparser_with_changed_settings() -> None:
    piped = RAW.replace(b";", b"|")
    reparse = _reparse(separator="|")
    key, body = reparse(piped, {})
    assert key == "lookup"
    assert JournalEntry.decode(body).rufnummer == "0891234567"
    assert orjson.loads(body)["source"] == "pbx1"


def test_reparser_refuses_truncated_lines() -> None:
    reparse = _reparse()
    with pytest.raises(BadInputError, match="only the first bytes of this line were kept"):
        reparse(RAW[:16], {"x-cti-raw-bytes": len(RAW)})


def test_whitespace_lines_are_dead_lettered_and_empty_lines_counted() -> None:
    p = _preparer()
    splitter = p.splitter()
    outs = [p.prepare(line, "tcp x", 1.0) for line in splitter.feed(b"\n \t\r\n\r\n" + RAW)]
    assert [o.routing_key for o in outs] == ["dead", "lookup"]
    assert outs[0].body == b" \t\r\n"
    assert (outs[0].headers or {})["x-cti-reason"] == "a line of only whitespace"
    assert _sample(p, "blank_lines", reason="empty") == 2
    assert _sample(p, "blank_lines", reason="whitespace") == 1
    assert _sample(p, "entries_rejected", reason="whitespace") == 1


def test_an_unfinished_last_line_is_a_dead_letter_that_replays(caplog) -> None:
    p = _preparer(max_dead_letter_bytes=4096)
    cut = RAW.rstrip(b"\n")
    out = p.prepare_unfinished(Line(cut), "client 10.0.0.9:5000", 1.0)
    assert (out.routing_key, out.body) == ("dead", cut)
    assert "middle of a line" in (out.headers or {})["x-cti-reason"]
    assert _sample(p, "entries_rejected", reason="unfinished") == 1
    reparse = reparser(Settings(gateway=p.settings))
    assert reparse(out.body, out.headers or {})[0] == "lookup"  # once an admin checked it


def test_rejected_lines_are_logged_with_numbers_masked(caplog) -> None:
    p = _preparer(max_dead_letter_bytes=4096)
    p.prepare(Line(b"i;2026-07-15 14:30:00;CONN;0891234567\n"), "tcp x", 1.0)
    assert "0891234567" not in caplog.text and "*******567" in caplog.text


def test_every_rejection_reason_is_a_series_at_zero_before_the_first_bad_line() -> None:
    """The dashboard's rejection panels show 0, not "no data" (the container tier evaluates
    every panel on a running stack: an empty one looks broken)."""
    p = _preparer()
    for reason in ("too_long", "whitespace", "parse", "unfinished"):
        assert _sample(p, "entries_rejected", reason=reason) == 0.0
