"""Property tests of the wire format: arbitrary bytes never crash the parser, and every valid
entry survives format → parse unchanged."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.shared.errors import BadInputError
from cti_journal.shared.record import FIELDS, MAX_LONG, LineFormat

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
FORMATS = {
    "delimited": LineFormat(timezone="Europe/Berlin"),
    "json": LineFormat(kind="json", timezone="Europe/Berlin"),
    "cp1252": LineFormat(encoding="cp1252", separator="\t", timezone="Europe/Berlin"),
}
GOOD = b"i;2026-07-15 14:30:00;CONN;+49891234567;M\xc3\xbcller;;100;;;;5000;120;;12;0\n"


def _parse_all(raw: bytes) -> None:
    for fmt in FORMATS.values():
        with contextlib.suppress(BadInputError):
            fmt.parse(raw)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_bad_input(raw: bytes) -> None:
    _parse_all(raw)


@FUZZ
@given(st.data())
def test_mutated_good_lines_raise_only_bad_input(data: st.DataObject) -> None:
    """Small changes to a valid line reach deeper than random bytes."""
    raw = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        chunk = data.draw(
            st.one_of(
                st.binary(min_size=1, max_size=6),
                st.sampled_from([b";", b'"', b"\r", b"\n", b"\x00", b"9" * 5000, b"-", b"\xff"]),
            )
        )
        if action == "insert":
            raw[at:at] = chunk
        elif action == "replace":
            raw[at : at + len(chunk)] = chunk
        else:
            del raw[at : at + len(chunk)]
    _parse_all(bytes(raw))


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=5,
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([*FIELDS, "Gebuehren", "Journal_Name", "id", "other"]),
        JSON_VALUE,
        max_size=16,
    )
)
def test_arbitrary_json_objects_raise_only_bad_input(obj: dict[str, Any]) -> None:
    try:
        raw = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        return  # integers beyond 64 bits: not something a line can carry
    with contextlib.suppress(BadInputError):
        FORMATS["json"].parse(raw)


# -- round trip ----------------------------------------------------------------------------
# Printable text without the characters `str.strip` removes at the ends of a field; separators
# and quotes included. A fixed alphabet keeps generation fast on a busy machine.
_ALPHABET = list("aZ09 ;\",|'-+#/()üößÄ€é中😀")


def _text(max_size: int) -> st.SearchStrategy[str]:
    # short texts; the exact size limits are tested in test_record.py
    return st.text(st.sampled_from(_ALPHABET), max_size=min(max_size, 12)).map(str.strip)


_LONG = st.none() | st.integers(0, MAX_LONG)
_TIME = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31))


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    moment = draw(_TIME).replace(microsecond=0)
    return {
        "in_out": draw(st.sampled_from(["i", "o"])),
        "zeitpunkt": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "verb_zustand": draw(st.sampled_from(["CONN", "RING", "BUSY"])),
        "rufnummer": draw(_text(64)),
        "name": draw(_text(255)),
        "firma": draw(_text(255)),
        "lokale_rufnummer": draw(_text(64)),
        "weitergeleitet": draw(_text(64)),
        "datensatz_id": draw(_text(100)),
        "datensatz_tabelle": draw(_text(100)),
        "rufdauer_ms": draw(_LONG),
        "verbdauer_sec": draw(_LONG),
        "lcr": draw(_text(20)),
        "gebuehren": draw(_LONG),
        "amtsholung": draw(_text(8)),
    }


@FUZZ
@given(entries(), st.sampled_from(["delimited", "json"]), st.sampled_from([";", "|", "\t", ","]))
def test_valid_values_round_trip_exactly(values: dict[str, Any], kind: str, sep: str) -> None:
    fmt = LineFormat(kind=kind, separator=sep, timezone="UTC")  # type: ignore[arg-type]
    parsed = fmt.parse(fmt.format(values))
    utc = datetime.strptime(values["zeitpunkt"], "%Y-%m-%d %H:%M:%S")
    assert parsed.values == {**values, "utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ")}


@FUZZ
@given(_TIME)
def test_berlin_utc_is_one_or_two_hours_behind(moment: datetime) -> None:
    zeitpunkt = moment.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
    line = f"i;{zeitpunkt};CONN;;;;;;;;;;;;\n".encode()
    utc = datetime.strptime(FORMATS["delimited"].parse(line).values["utc"], "%Y-%m-%dT%H:%M:%SZ")
    assert datetime.strptime(zeitpunkt, "%Y-%m-%d %H:%M:%S") - utc in (
        timedelta(hours=1),
        timedelta(hours=2),
    )
