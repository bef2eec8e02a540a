"""The two readers of shared/message.py give one verdict (issue 18).

The fast reader (msgspec) decodes and checks a common message in C; anything it refuses goes to
the reference reader (orjson and the checks in Python: main's reader as it was at 7e3c4e9, kept as
`_fields_slowly` / `JournalEntry._decode_slowly`). The danger is the fast reader taking what the
reference refuses, or reading it otherwise: here both are fed generated bodies, valid and
hostile (wrong types, bools for numbers, 64-bit edges, numbers orjson cannot read, lone
surrogates and invalid UTF-8, unknown fields, duplicate keys, missing fields, other versions,
odd bundles, flipped bytes), and must give the same entries, field types included, or the same
BadInputError."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args, get_type_hints

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.shared import message
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_ENTRIES,
    MAX_MESSAGE_BYTES,
    EntryFields,
    JournalEntry,
    Lookup,
    decode_bundle,
    decode_bundle_fields,
    encode_bundle,
    encode_fields,
)
from cti_journal.simulator.calls import generate_calls

MANY = settings(
    max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
FIELDS = [f.name for f in dataclasses.fields(JournalEntry)]
INT_FIELDS = ("rufdauer_ms", "verbdauer_sec", "gebuehren")
EDGES = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 2**53 + 1, 0, -1]
INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(EDGES))
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=10)
RAW_NUMBERS = [
    b"-0", b"1E2", b"1e400", b"-1e400", b"1e-400", b"1.0", b"0.1e1", b"-0.0", b"NaN", b"01",
    b"123456789012345678901234567890", b"18446744073709551616", b"-9223372036854775809",
]  # fmt: skip
RAW_STRINGS = [
    rb'"\ud800"', rb'"\udc00x"', rb'"\ud83d\ude00"', b'"\xff"', b'"\xc3\xa4"', rb'"\u0000"',
    b'"a\x01"', rb'"\/"', rb'"\x"', b'"unterminated',
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | INTS | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
TEXTS = st.one_of(st.just(""), st.just("0891234567"), TEXT)
# A field's good values, and its values at the edges (good or not: bools, 64-bit limits, ...).
VALID: dict[str, st.SearchStrategy[Any]] = {
    name: (
        st.one_of(st.just(1784118600.25), st.integers(0, 2**40), FLOATS)
        if name == "received_at"
        else st.one_of(st.none(), st.integers(-5, 10**6))
        if name in INT_FIELDS
        else st.sampled_from(sorted(Lookup.ALL))
        if name == "lookup"
        else st.just(1)
        if name == "v"
        else TEXTS
    )
    for name in FIELDS
}
EDGY: dict[str, st.SearchStrategy[Any]] = {
    name: (
        st.one_of(INTS, st.booleans())
        if name in (*INT_FIELDS, "received_at")
        else st.sampled_from(["Hit", "", "pending ", None])
        if name == "lookup"
        else st.sampled_from([0, 2, True, 1.0, "1", None, 2**64])
        if name == "v"
        else st.one_of(st.none(), st.integers(0, 9), st.booleans())
    )
    for name in FIELDS
}


def _json(value: Any) -> bytes:
    """JSON text for a value, integers of any size included (orjson writes only 64-bit ones)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return orjson.dumps(value)
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, list):
        return b"[" + b",".join(_json(v) for v in value) + b"]"
    return b"{" + b",".join(_json(k) + b":" + _json(v) for k, v in value.items()) + b"}"


HOSTILE = st.one_of(JSON_VALUES.map(_json), st.sampled_from(RAW_NUMBERS + RAW_STRINGS))


@st.composite
def entries(draw: st.DrawFn) -> bytes:
    """A good entry, then up to three changes: a value of any JSON or hostile text, a field
    dropped, an unknown field, a key twice (orjson keeps the last), the keys shuffled, a value
    at its type's edges."""
    pairs = [(name.encode(), _json(draw(VALID[name]))) for name in FIELDS]
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.integers(0, 6))
        at = draw(st.integers(0, len(pairs) - 1)) if pairs else 0
        if change == 0 and pairs:
            pairs[at] = (pairs[at][0], draw(HOSTILE))
        elif change == 1 and pairs:
            del pairs[at]
        elif change == 2:
            key = draw(st.sampled_from([b"zusatz", b"V", b"lookup ", b"name\x00"]))
            pairs.insert(at, (key, draw(HOSTILE)))
        elif change == 3:
            name = draw(st.sampled_from(FIELDS))
            pairs.insert(at, (name.encode(), draw(VALID[name].map(_json) | HOSTILE)))
        elif change == 4:
            pairs = draw(st.permutations(pairs))
        elif change == 5 and pairs:
            name = pairs[at][0].decode()
            pairs[at] = (pairs[at][0], _json(draw(EDGY.get(name, JSON_VALUES))))
    return b"{" + b",".join(b'"' + k + b'":' + v for k, v in pairs) + b"}"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(entries(), min_size=0, max_size=3))
    if items and draw(st.integers(0, 4)) == 0:
        items[0] = draw(JSON_VALUES.map(_json))
    shape = draw(st.sampled_from(["one", "one", "bundle", "bundle", "raw"]))
    if shape == "one":
        body = draw(entries())
    elif shape == "bundle":
        body = b"[" + b",".join(items) + b"]"
    else:
        body = draw(JSON_VALUES.map(_json))
    body = draw(st.sampled_from([b"", b"", b" ", b"\n\t", b"\x0b", b"\xef\xbb\xbf"])) + body
    if draw(st.integers(0, 5)) == 0:  # a flipped, lost or added byte
        at = draw(st.integers(0, max(len(body) - 1, 0)))
        byte = bytes([draw(st.integers(0, 255))])
        edits = [body[:at] + byte + body[at + 1 :], body[:at] + body[at + 1 :]]
        body = draw(st.sampled_from([*edits, body[:at] + byte + body[at:]]))
    return body


def _old_decode_bundle(body: bytes) -> list[JournalEntry]:
    """main's decode_bundle (the size checks, then the reference reader)."""
    if len(body) > MAX_BUNDLE_BYTES:
        raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_BUNDLE_BYTES}")
    bundle = body.lstrip().startswith(b"[")
    if not bundle and len(body) > MAX_MESSAGE_BYTES:
        raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return [JournalEntry.assemble(d) for d in message._fields_slowly(body, bundle=bundle)]


def _old_decode(body: bytes) -> JournalEntry:
    if len(body) > MAX_MESSAGE_BYTES:
        raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return JournalEntry._decode_slowly(body)


def _typed(entry: JournalEntry) -> list[tuple[str, type, str]]:
    """Each field's type and repr: 1 and 1.0 differ, and so do 0.0 and -0.0."""
    return [(n, type(v), repr(v)) for n in FIELDS for v in [getattr(entry, n)]]


def _verdict(read: Any, body: bytes) -> tuple[str, Any]:
    try:
        got = read(body)
    except BadInputError as exc:
        return "bad input", str(exc)
    return "read", [_typed(e) for e in (got if isinstance(got, list) else [got])]


SEEN: dict[str, int] = {}


@MANY
@given(bodies())
def test_the_fast_reader_reads_what_the_reference_reads_and_refuses_the_rest(body: bytes) -> None:
    expected = _verdict(_old_decode_bundle, body)
    SEEN[expected[0]] = SEEN.get(expected[0], 0) + 1
    assert _verdict(decode_bundle, body) == expected
    assert _verdict(JournalEntry.decode, body) == _verdict(_old_decode, body)
    if expected[0] == "read":  # the look-up's form: the same fields, and encoded the same entries
        fields = decode_bundle_fields(body)
        assert [_typed(message._entry(f)) for f in fields] == expected[1]
        assert _verdict(decode_bundle, encode_fields(fields)) == expected


def test_the_generated_bodies_are_read_and_refused_alike() -> None:
    """The property above is not vacuous: a fair share of its bodies were good entries."""
    if not SEEN:  # run alone
        test_the_fast_reader_reads_what_the_reference_reads_and_refuses_the_rest()
    assert SEEN.get("read", 0) > 50
    assert SEEN.get("bad input", 0) > 50


def _gateway_bodies() -> list[bytes]:
    from cti_journal.gateway.lines import Line
    from cti_journal.gateway.prepare import Preparer
    from cti_journal.shared.config import GatewaySettings
    from cti_journal.shared.metrics import make_metrics
    from cti_journal.shared.record import LineFormat

    fmt = LineFormat(timezone="Europe/Berlin")
    prep = Preparer(GatewaySettings(timezone="Europe/Berlin", source_id="b"), make_metrics())
    out = [prep.prepare(Line(fmt.format(v)), "corpus", 1.5).body for v in generate_calls(7, 600)]
    return [body for body in out if body]


def test_real_gateway_messages_take_the_fast_reader_and_read_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies = _gateway_bodies()
    bundles = [encode_bundle(bodies[i : i + 50]) for i in range(0, len(bodies), 50)]
    expected = [_verdict(_old_decode_bundle, b) for b in bundles + bodies]

    def refused(body: bytes, *, bundle: bool) -> list[dict[str, Any]]:
        raise AssertionError("the reference reader was asked")

    monkeypatch.setattr(message, "_fields_slowly", refused)
    assert [_verdict(decode_bundle, b) for b in bundles + bodies] == expected
    assert all(verdict == "read" for verdict, _ in expected)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "message schema version 2 is newer than this worker reads (1): upgrade"),
        ({"v": True}, "message schema version True is not one this worker reads (1)"),
        ({"rufdauer_ms": True}, "message field 'rufdauer_ms' has the wrong type: True"),
        ({"received_at": "1"}, "message field 'received_at' has the wrong type: '1'"),
        ({"lookup": "found"}, "message field 'lookup' is 'found'"),
        ({"utc": None}, "message field 'utc' has the wrong type: None"),
    ],
)
def test_a_refused_entry_says_why_as_before(change: dict[str, Any], reason: str) -> None:
    body = orjson.dumps({**orjson.loads(_gateway_bodies()[0]), **change})
    for read in (decode_bundle, JournalEntry.decode, decode_bundle_fields):
        with pytest.raises(BadInputError) as caught:
            read(body)
        assert str(caught.value).startswith(reason)


def test_unknown_fields_and_uint64_are_read_by_the_reference_reader() -> None:
    """What the fast reader leaves to the reference one is still read (tolerant reader)."""
    data = orjson.loads(_gateway_bodies()[0])
    newer = orjson.dumps({**data, "zusatz": {"a": [1]}, "gebuehren": 2**64 - 1})
    (fields,) = decode_bundle_fields(newer)
    assert fields.gebuehren == 2**64 - 1
    assert orjson.loads(encode_fields([fields])) == {**data, "gebuehren": 2**64 - 1}


def test_a_bundle_holds_1_to_the_limit() -> None:
    body = _gateway_bodies()[0]
    assert len(decode_bundle(b"[" + b",".join([body] * MAX_BUNDLE_ENTRIES) + b"]")) == 200
    for count in (0, MAX_BUNDLE_ENTRIES + 1):
        with pytest.raises(BadInputError, match=f"1 to 200 entries, not {count}"):
            decode_bundle(b"[" + b",".join([body] * count) + b"]")


def test_entry_fields_are_the_journal_entry_fields() -> None:
    """One schema in two forms: the same names in the same order, the same defaults (but `v`,
    required on the wire), and `lookup` one of Lookup.ALL."""
    struct = msgspec.structs.fields(EntryFields)
    assert [f.name for f in struct] == FIELDS
    defaults = {f.name: f.default for f in dataclasses.fields(JournalEntry) if f.name != "v"}
    assert {f.name: f.default for f in struct if f.name != "v"} == {
        n: msgspec.NODEFAULT if d is dataclasses.MISSING else d for n, d in defaults.items()
    }
    assert next(f for f in struct if f.name == "v").required
    assert set(get_args(get_type_hints(EntryFields)["lookup"])) == Lookup.ALL
