"""Issue 20, item 1: no outside input raises anything but BadInputError, anywhere it is read.

Hypothesis over Unicode (digits of every script: `Nd` decimals and `No` superscripts, which
`isdigit()` accepts and `int()` refuses) plus byte-level mutation of real lines and messages,
through every parser and converter that reads outside text without configuration: the line
format (delimited, JSON, cp1252), the whole gateway preparation (with a privacy rule over
LokaleRufnummer ranges, the finding's crash), message and bundle decoding, shared/convert.py.
`INPUTS` counts what one run tried (printed with `-s`)."""

from __future__ import annotations

import atexit
import contextlib
import sys
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cti_journal.gateway.lines import Line
from cti_journal.gateway.prepare import Preparer
from cti_journal.shared.config import GatewaySettings, PrivacyRule, PrivacySettings, Settings
from cti_journal.shared.convert import digits_value, is_digits, length, local_time, whole_number
from cti_journal.shared.errors import BadInputError
from cti_journal.shared.message import JournalEntry, decode_bundle, encode_bundle
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.record import FIELDS, MAX_LONG, LineFormat
from cti_journal.simulator.calls import generate_calls

FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
INPUTS: dict[str, int] = {}
atexit.register(lambda: INPUTS and print(f"\nfuzz inputs tried: {INPUTS}", file=sys.stderr))


def _count(name: str) -> None:
    INPUTS[name] = INPUTS.get(name, 0) + 1


ANY_DIGIT = st.characters(categories=["Nd", "No"])  # every script's digits, superscripts too
UNICODE = st.characters(exclude_categories=["Cs"])
FIELD_TEXT = st.one_of(
    st.text(ANY_DIGIT, min_size=1, max_size=12),
    st.text(UNICODE, max_size=16),
    st.sampled_from(["9" * 4301, "0" * 5000 + "1", "-1", "+5", "1e3", "٣", "⁴⁷⁹⁵", "0²²²²²²²"]),
)

TZ = "Europe/Berlin"
DELIMITED, JSON = LineFormat(timezone=TZ), LineFormat(kind="json", timezone=TZ)
CALLS = list(generate_calls(20, 40))
REAL_LINES = [DELIMITED.format(v) for v in CALLS] + [JSON.format(v, "pbx-1") for v in CALLS[:10]]
RULES = (
    PrivacyRule(name="team", stage="before", local=("4700-4799",), action="anonymise"),
    PrivacyRule(name="boss", stage="before", local=("2000-2099", "0891*"), action="drop"),
)


def _preparer(kind: str) -> Preparer:
    gateway = GatewaySettings(format=kind, timezone=TZ, preenriched="lookup")  # type: ignore[arg-type]
    rules = PrivacyRules.from_settings(Settings(privacy=PrivacySettings(rules=RULES)))
    return Preparer(gateway, make_metrics(), rules)


PREPARERS = {"delimited": _preparer("delimited"), "json": _preparer("json")}


def _prepare_only_bad_input(raw: bytes) -> None:
    """The gateway's whole path for one line: an entry, SKIP or a dead letter of a known
    reason; never an exception, never the catch-all 'unexpected' reason (a bug found)."""
    for kind, preparer in PREPARERS.items():
        _count(f"prepare-{kind}")
        out = preparer.prepare(Line(raw), "fuzz", 0.0)
        reason = (out.headers or {}).get("x-cti-reason", "")
        assert "while preparing the line" not in str(reason), (kind, raw, reason)
        if out.body and out.routing_key in ("lookup", "write"):
            _decode_only_bad_input(out.body)  # what the gateway sends, the workers read


def _decode_only_bad_input(body: bytes) -> None:
    _count("decode")
    for decode in (JournalEntry.decode, decode_bundle):
        try:
            decoded = decode(body)
        except BadInputError:
            continue
        for entry in decoded if isinstance(decoded, list) else [decoded]:
            JournalEntry.decode(entry.encode())  # what a worker forwards, the next one reads


# -- lines --------------------------------------------------------------------------------------
@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), FIELD_TEXT, min_size=1), st.integers(0, 39))
@example({"LokaleRufnummer": "⁴⁷⁹⁵"}, 0)  # the finding: a privacy rule's range and int()
@example({"Rufnummer": "0²²²²²²²", "Rufdauer_ms": "0" * 5000 + "1"}, 1)
def test_any_unicode_in_any_field_is_at_most_one_bad_entry(
    changes: dict[str, str], which: int
) -> None:
    values = dict(CALLS[which])
    fields = {name: str(values.get(_attr(name)) or "") for name in FIELDS}
    fields.update(changes)
    delimited = ";".join(v.replace(";", ",").replace("\n", " ") for v in fields.values())
    _prepare_only_bad_input((delimited + "\n").encode("utf-8", "surrogatepass"))
    _prepare_only_bad_input(orjson.dumps(fields) + b"\n")


def _attr(field: str) -> str:
    from cti_journal.shared.record import ATTR

    return ATTR[field]


def _mutate(data: st.DataObject, original: bytes) -> bytes:
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(raw)))
        chunk = data.draw(
            st.one_of(
                st.binary(min_size=1, max_size=8),
                st.text(ANY_DIGIT, min_size=1, max_size=6).map(str.encode),
                st.sampled_from([b";", b'"', b"\r", b"\x00", b"\xff", b"9" * 4400, b"-", b"{"]),
            )
        )
        action = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        if action == "insert":
            raw[at:at] = chunk
        elif action == "replace":
            raw[at : at + len(chunk)] = chunk
        else:
            del raw[at : at + len(chunk)]
    return bytes(raw)


@FUZZ
@given(st.data())
def test_mutated_real_lines_are_at_most_one_bad_entry(data: st.DataObject) -> None:
    line = data.draw(st.sampled_from(REAL_LINES))
    _prepare_only_bad_input(_mutate(data, line).replace(b"\n", b" ") + b"\n")


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_at_most_one_bad_entry(raw: bytes) -> None:
    _prepare_only_bad_input(raw.replace(b"\n", b"") + b"\n")


# -- messages -----------------------------------------------------------------------------------
REAL_BODIES = [
    out.body
    for raw in REAL_LINES
    if (out := PREPARERS["delimited"].prepare(Line(raw), "seed", 0.0)).routing_key == "lookup"
]
REAL_BUNDLE = encode_bundle(REAL_BODIES[:5])
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(UNICODE, max_size=12)
    | FIELD_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)  # fmt: skip


@FUZZ
@given(st.data())
def test_mutated_real_messages_and_bundles_raise_only_bad_input(data: st.DataObject) -> None:
    body = data.draw(st.sampled_from([*REAL_BODIES[:8], REAL_BUNDLE]))
    _decode_only_bad_input(_mutate(data, body))


@FUZZ
@given(st.sampled_from(REAL_BODIES[:8]), st.text(max_size=14), JSON_VALUE)
def test_any_value_in_any_message_field_raises_only_bad_input(
    body: bytes, key: str, value: Any
) -> None:
    obj = orjson.loads(body)
    target = key if key in obj or not obj else sorted(obj)[len(key) % len(obj)]
    obj[target] = value
    try:
        mutated = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        return  # integers beyond 64 bits: orjson cannot write them, a sender cannot either
    _decode_only_bad_input(mutated)
    _decode_only_bad_input(b"[" + mutated + b"," + body + b"]")


# -- converters ---------------------------------------------------------------------------------
CONVERTERS: dict[str, Callable[[str], object]] = {
    "whole_number": lambda t: whole_number(t, "x", MAX_LONG),
    "whole_number_signed": lambda t: whole_number(t, "x", 100, minimum=-100),
    "digits_value": digits_value,
    "local_time": local_time,
}


@FUZZ
@given(
    st.sampled_from(sorted(CONVERTERS)),
    st.one_of(FIELD_TEXT, st.text(UNICODE, max_size=24), st.just("2026-11-25 10:00:00"),
              st.text(ANY_DIGIT | st.sampled_from("-: "), min_size=19, max_size=19)),
)  # fmt: skip
def test_converters_yield_a_value_or_bad_input(name: str, text: str) -> None:
    _count("convert")
    try:
        value = CONVERTERS[name](text)
    except BadInputError:
        return
    assert text.isascii(), (name, text, value)  # only ASCII digits are ever read as numbers
    if isinstance(value, int):
        assert is_digits(text.lstrip("-")) and abs(value) <= MAX_LONG * 10**21


@FUZZ
@given(st.one_of(st.integers(), st.booleans(), st.none(), st.text(max_size=3), st.floats()))
def test_length_takes_only_small_whole_numbers(value: Any) -> None:
    _count("length")
    with contextlib.suppress(BadInputError):
        assert 0 <= length(value, "n", 1000) <= 1000
