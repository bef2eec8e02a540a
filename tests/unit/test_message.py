"""The versioned message between the processes (shared/message.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import MAX_MESSAGE_BYTES, JournalEntry, Lookup, decode_bundle

FULL = JournalEntry(
    event_id="0123456789abcdef0123456789abcdef",
    source="cti",
    received_at=1784118600.25,
    in_out="i",
    zeitpunkt="2026-07-15 14:30:00",
    utc="2026-07-15T12:30:00Z",
    verb_zustand="CONN",
    rufnummer="+49891234567",
    name='Müller; "Meier"',
    firma="ACME GmbH",
    lokale_rufnummer="100",
    weitergeleitet="200",
    datensatz_id="42",
    datensatz_tabelle="Kontakte",
    rufdauer_ms=5000,
    verbdauer_sec=120,
    lcr="010xx",
    gebuehren=12,
    amtsholung="0",
    lookup=Lookup.HIT,
)
MINIMAL = JournalEntry("e", "cti", 1, "o", "2026-01-15 08:00:00", "2026-01-15T07:00:00Z", "BUSY")


def _body(**changes: Any) -> bytes:
    data = orjson.loads(FULL.encode())
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps(data)


_DELETE = object()


def test_round_trip_full() -> None:
    assert JournalEntry.decode(FULL.encode()) == FULL


def test_round_trip_minimal_keeps_none_and_int_time() -> None:
    decoded = JournalEntry.decode(MINIMAL.encode())
    assert decoded == MINIMAL
    assert (decoded.rufdauer_ms, decoded.gebuehren, decoded.lookup) == (None, None, "pending")


def test_encoded_form() -> None:
    data = orjson.loads(MINIMAL.encode())
    assert data["v"] == 1
    assert list(data) == [f.name for f in dataclasses.fields(JournalEntry)]


def test_missing_optional_fields_take_defaults() -> None:
    body = orjson.dumps(
        {
            "v": 1,
            "event_id": "e",
            "source": "cti",
            "received_at": 2.5,
            "in_out": "i",
            "zeitpunkt": "2026-01-15 08:00:00",
            "utc": "2026-01-15T07:00:00Z",
            "verb_zustand": "RING",
        }
    )
    entry = JournalEntry.decode(body)
    assert (entry.name, entry.rufdauer_ms, entry.lookup) == ("", None, Lookup.PENDING)


def test_a_newer_minor_version_is_read_and_its_unknown_fields_are_ignored() -> None:
    """Rolling upgrades: a gateway of version N+1 adds optional fields; a lookup or writer of
    version N reads its entries and re-encodes them in its own shape."""
    body = _body(caller_region="DE", privacy={"rule": 2, "action": "shorten"}, tags=["a"])
    entry = JournalEntry.decode(body)
    assert entry == JournalEntry.decode(_body())
    assert "caller_region" not in orjson.loads(entry.encode())
    assert decode_bundle(b"[" + body + b"," + _body(event_id="f") + b"]")[0] == entry


def test_an_unknown_field_does_not_excuse_a_known_field_of_the_wrong_type() -> None:
    with pytest.raises(BadInputError, match="'rufdauer_ms' has the wrong type"):
        JournalEntry.decode(_body(future=1, rufdauer_ms="5"))


def test_has_contact() -> None:
    assert FULL.has_contact
    assert not MINIMAL.has_contact
    assert dataclasses.replace(MINIMAL, datensatz_id="7").has_contact
    assert dataclasses.replace(MINIMAL, name="X").has_contact
    assert not dataclasses.replace(MINIMAL, firma="ACME").has_contact


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "message is not JSON"),
        (b"not json", "message is not JSON"),
        (b'{"v": 1,', "message is not JSON"),
        (b"\xff\xfe", "message is not JSON"),
        (b"[1]", "a bundle of entries where one entry was expected"),
        (b"null", "message is not a JSON object"),
        (_body(v=2), "message schema version 2 is newer than this worker reads (1): upgrade"),
        (_body(v="1"), "message schema version '1' is not one this worker reads (1)"),
        (_body(v=_DELETE), "message schema version None is not one this worker reads (1)"),
        (_body(v=True), "message schema version True is not one this worker reads (1)"),
        (_body(v=1.0), "message schema version 1.0 is not one this worker reads (1)"),
        (_body(v=0), "message schema version 0 is not one this worker reads (1)"),
        (_body(event_id=_DELETE), "message lacks fields: ['event_id']"),
        (_body(utc=_DELETE, source=_DELETE), "message lacks fields: ['source', 'utc']"),
        (_body(verb_zustand=_DELETE), "message lacks fields: ['verb_zustand']"),
        (_body(in_out=_DELETE), "message lacks fields: ['in_out']"),
        (_body(event_id=5), "message field 'event_id' has the wrong type: 5"),
        (_body(name=None), "message field 'name' has the wrong type: None"),
        (_body(rufdauer_ms="5000"), "message field 'rufdauer_ms' has the wrong type: '5000'"),
        (_body(rufdauer_ms=1.5), "message field 'rufdauer_ms' has the wrong type: 1.5"),
        (_body(gebuehren=True), "message field 'gebuehren' has the wrong type: True"),
        (_body(verbdauer_sec=False), "message field 'verbdauer_sec' has the wrong type: False"),
        (_body(received_at=True), "message field 'received_at' has the wrong type: True"),
        (_body(received_at="1.0"), "message field 'received_at' has the wrong type: '1.0'"),
        (_body(in_out=["i"]), "message field 'in_out' has the wrong type: ['i']"),
        (_body(lookup="maybe"), "message field 'lookup' is 'maybe'"),
        (_body(lookup=None), "message field 'lookup' has the wrong type: None"),
    ],
)
def test_invalid_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(BadInputError) as info:
        JournalEntry.decode(body)
    assert str(info.value).startswith(reason)


def test_oversized_body() -> None:
    body = _body(name="x" * MAX_MESSAGE_BYTES)
    with pytest.raises(BadInputError) as info:
        JournalEntry.decode(body)
    assert str(info.value) == f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}"


def test_body_at_the_size_limit_is_accepted() -> None:
    padding = MAX_MESSAGE_BYTES - len(_body(name=""))
    body = _body(name="x" * padding)
    assert len(body) == MAX_MESSAGE_BYTES
    assert JournalEntry.decode(body).name == "x" * padding


def test_every_lookup_value_decodes() -> None:
    for value in sorted(Lookup.ALL):
        assert JournalEntry.decode(_body(lookup=value)).lookup == value


def test_bundles_round_trip_and_single_entries_still_decode() -> None:
    from cti_journal.shared.message import decode_bundle, encode_bundle

    entries = [
        JournalEntry(
            event_id=f"{i:032x}",
            source="cti",
            received_at=1.5,
            in_out="i",
            zeitpunkt="2026-11-25 10:00:00",
            utc="2026-11-25T09:00:00Z",
            verb_zustand="CONN",
        )
        for i in range(3)
    ]
    assert decode_bundle(encode_bundle([e.encode() for e in entries])) == entries
    assert encode_bundle([entries[0].encode()]) == entries[0].encode()  # one stays an object
    assert decode_bundle(entries[0].encode()) == [entries[0]]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "a bundle holds 1 to 200 entries"),
        (b"[" + b",".join([b"{}"] * 201) + b"]", "a bundle holds 1 to 200 entries"),
        (b"[1]", "message is not a JSON object"),
        (b'[{"v": 1}]', "message lacks fields"),
        (b"[", "message is not JSON"),
    ],
)
def test_invalid_bundles(body: bytes, reason: str) -> None:
    from cti_journal.shared.message import decode_bundle

    with pytest.raises(BadInputError) as info:
        decode_bundle(body)
    assert str(info.value).startswith(reason)


def test_assemble_and_evolve_make_what_the_dataclass_makes() -> None:
    """The cheap constructors bypass the frozen dataclass's __init__; they must build equal,
    still frozen entries, fill defaults, and refuse unknown fields as replace does."""
    full = dataclasses.asdict(FULL)
    assert JournalEntry.assemble(full) == JournalEntry(**full)
    minimal = {k: full[k] for k in ("event_id", "source", "received_at", "in_out",
                                    "zeitpunkt", "utc", "verb_zustand")}  # fmt: skip
    assert JournalEntry.assemble(minimal) == JournalEntry(**minimal)
    assert JournalEntry.assemble(minimal).lookup == Lookup.PENDING
    changes = {"name": "Meier", "firma": "", "lookup": Lookup.HIT, "rufdauer_ms": None}
    evolved = FULL.evolve(**changes)
    assert evolved == dataclasses.replace(FULL, **changes)
    assert FULL.evolve() == FULL and FULL.evolve() is not FULL
    assert dataclasses.asdict(FULL) == full  # the original is untouched
    with pytest.raises(TypeError, match="no fields"):
        FULL.evolve(nmae="Meier")
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.name = "x"  # type: ignore[misc]
    assert evolved.encode() == orjson.dumps(dataclasses.asdict(evolved))
