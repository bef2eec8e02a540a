"""The gateway's batch path (`Preparer.prepare_lines` with shared/record.py `PlainLines`) against
the per-line path (`Preparer.prepare`, `LineFormat.parse`): over generated lines, hostile ones
included, both give the same messages (routing key, body bytes, headers, content type, identity
state) and leave the identifier in the same state."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.gateway import prepare as prepare_module
from cti_journal.gateway.lines import Line, LineSplitter
from cti_journal.gateway.prepare import ENTRY_BODY_MATCHES, Outgoing, Preparer
from cti_journal.gateway.spool import SpoolBuffer
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.record import FIELDS, INT_FIELDS, LineFormat, PlainLines
from cti_journal.simulator.calls import generate_calls

pytestmark = pytest.mark.unit

PROPERTY = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def _corpus_fields() -> list[str]:
    """Phone fields with the damage real data carries (tests/corpus/messy.tsv, written from
    outside the code): unicode digits, controls, quotes, odd spaces."""
    rows = (CORPUS / "messy.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [codecs.decode(row.split("\t")[0], "unicode_escape") for row in rows if row]


TEXT_ALPHABET = st.sampled_from(
    [*"aZé0189+- ,.;\"'\t\x00\x0b\x1c\x7f\x85\u00a0\u2028\ufeff\\]^", "Müller", "  "]
)
TEXT = st.one_of(
    st.just(""),
    st.lists(TEXT_ALPHABET, max_size=8).map("".join),
    st.sampled_from(_corpus_fields()),
    st.sampled_from(["Müller, Hans", "+49891234567", " 0891234 ", "ACME GmbH", '"q"', "a;b"]),
)
NUMBER = st.one_of(
    st.just(""),
    st.integers(0, 2**31 + 5).map(str),
    st.sampled_from(["2147483647", "2147483648", "9999999999", "00000000000012", "007", "-1",
                     " 5", "5 ", "٤٧", "⁴", "1e3", "0x10", "12345678901"]),
)  # fmt: skip
ZEITPUNKT = st.one_of(
    st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="seconds")),
    # Europe/Berlin and America/New_York DST changes: the gap and the repeated hour
    st.sampled_from(["2024-03-31 02", "2024-10-27 02", "2024-03-10 02", "2024-11-03 01"]).flatmap(
        lambda h: st.integers(0, 3599).map(lambda s: f"{h}:{s // 60:02d}:{s % 60:02d}")
    ),
    st.sampled_from(
        [
            "0001-01-01 00:00:30",  # UTC before year 1 east of Greenwich
            "9999-12-31 23:59:59",  # after 9999 west of it
            "1890-06-01 12:00:00",  # local mean time: offsets of seconds
            "2024-02-30 10:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 12:60:00",
            "2024-01-01 12:00:60",
            "2024-1-01 12:00:00",
            " 2024-01-01 12:00:00",
            "2024-01-01T12:00:00",
            "２０２４-01-01 12:00:00",
        ]
    ),
)
IN_OUT = st.sampled_from(["i", "o", "I", "O", " i", "o ", "x", "", "io"])
STATE = st.sampled_from(["CONN", "RING", "BUSY", "conn", " BUSY", "CONN ", "HOLD", ""])
# What a CTI server writes: the batch path's own ground, where it must agree byte for byte.
GOOD_TEXT = st.one_of(
    st.just(""),
    st.sampled_from(["Müller, Hans", "+49891234567", "0891234", "ACME GmbH", "a b", "x\u00a0y",
                     "\u2028", "é", "\\]^-", "'", "0", "Zürich; AG"[:6]]),
    st.lists(st.sampled_from([*"aZé0189+-,.'", " "]), max_size=6).map("".join).filter(
        lambda t: t == t.strip(" ")
    ),
)  # fmt: skip
GOOD = {
    "In_Out": st.sampled_from(["i", "o"]),
    "Zeitpunkt": ZEITPUNKT,
    "VerbZustand": st.sampled_from(["CONN", "RING", "BUSY"]),
}
HOSTILE = {"In_Out": IN_OUT, "Zeitpunkt": ZEITPUNKT, "VerbZustand": STATE}


def _field(draw: st.DrawFn, name: str, hostile: bool) -> str:
    if name in GOOD:
        return draw((HOSTILE if hostile else GOOD)[name])
    if name in INT_FIELDS:
        return draw(
            NUMBER if hostile else st.one_of(st.just(""), st.integers(0, 2**31 - 1).map(str))
        )
    return draw(TEXT if hostile else GOOD_TEXT)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """A line as a CTI server writes it, with up to two fields, its field count, its encoding
    or its end made hostile."""
    hostile = draw(st.sets(st.sampled_from(FIELDS), max_size=2))
    row = [_field(draw, name, name in hostile) for name in FIELDS]
    shape = draw(st.sampled_from(["ok"] * 8 + ["fewer", "more"]))
    if shape == "fewer":
        row.pop(draw(st.integers(0, len(row) - 1)))
    elif shape == "more":
        row.insert(draw(st.integers(0, len(row))), draw(TEXT))
    text = ";".join(row)
    if draw(st.integers(0, 20)) == 0:
        text = "\ufeff" + text
    raw = text.encode("utf-8")
    if draw(st.integers(0, 15)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + raw[at:]
    end = draw(st.sampled_from([b"\n"] * 4 + [b"\r\n", b"\r\r\n", b"\n\r\n"]))
    return raw.replace(b"\n", b" ") + end


def _preparer(timezone: str, preenriched: str) -> Preparer:
    settings = GatewaySettings(
        timezone=timezone,
        source_id="prop",
        name="gw-a",
        preenriched=preenriched,  # type: ignore[arg-type]
    )
    return Preparer(settings, make_metrics())


def _headers(out: Outgoing) -> dict[str, Any] | None:
    """A dead letter's headers but the wall-clock second it was made in."""
    return None if out.headers is None else {**out.headers, "x-cti-failed-at": ""}


def _same(batch: list[Outgoing], single: list[Outgoing]) -> None:
    assert len(batch) == len(single)
    for a, b in zip(batch, single, strict=True):
        assert (a.routing_key, a.body, _headers(a), a.content_type, a.identity) == (
            b.routing_key, b.body, _headers(b), b.content_type, b.identity
        )  # fmt: skip


def _compare(raws: list[bytes], timezone: str, preenriched: str) -> Preparer:
    fast, slow = _preparer(timezone, preenriched), _preparer(timezone, preenriched)
    batch = [Line(raw) for raw in raws]
    _same(fast.prepare_lines(batch, "tcp x", 1234.5), [slow.prepare(line, "tcp x", 1234.5)
                                                         for line in batch])  # fmt: skip
    assert list(fast.identifier._seen.items()) == list(slow.identifier._seen.items())
    assert fast.identifier.last_state == slow.identifier.last_state
    plain = fast._plain
    assert plain is not None
    FAST_LINES.extend(raw for raw in raws if plain.values(raw) is not None)
    received = fast.metrics.received.labels("prop")._value.get()
    assert received == slow.metrics.received.labels("prop")._value.get() == len(raws)
    return fast


FAST_LINES: list[bytes] = []  # the generated lines that took the batch path


def test_the_batch_path_is_on() -> None:
    assert ENTRY_BODY_MATCHES
    assert _preparer("Europe/Berlin", "write")._plain is not None


@PROPERTY
@given(
    st.lists(lines(), min_size=1, max_size=8).flatmap(
        lambda ls: st.lists(st.sampled_from(ls), min_size=1, max_size=12)  # identical lines too
    ),
    st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", ""]),
    st.sampled_from(["write", "lookup"]),
)
def test_batch_path_equals_per_line_path(raws: list[bytes], timezone: str, pre: str) -> None:
    _compare(raws, timezone, pre)


@PROPERTY
@given(st.lists(st.binary(max_size=200).map(lambda b: b + b"\n"), min_size=1, max_size=5))
def test_arbitrary_bytes_alike(raws: list[bytes]) -> None:
    _compare(raws, "Europe/Berlin", "write")


def test_the_properties_exercised_the_batch_path() -> None:
    """Equality holds trivially where every line falls back: the generated lines must have
    taken the batch path often enough for the properties above to mean something."""
    FAST_LINES.clear()
    for _ in range(3):  # one run of 400 examples gives 90–130 distinct such lines
        test_batch_path_equals_per_line_path()
        if len(set(FAST_LINES)) >= 100:
            break
    assert len(set(FAST_LINES)) >= 100


@PROPERTY
@given(lines(), st.sampled_from(["Europe/Berlin", "America/New_York", ""]))
def test_plain_values_equal_parse(raw: bytes, timezone: str) -> None:
    fmt = LineFormat(timezone=timezone)
    got = PlainLines(fmt).values(raw)
    if got is None:
        return  # `parse` decides (the property above checks the message)
    values, utc = got
    parsed = fmt.parse(raw)
    assert parsed.explicit_id is None
    expected: dict[str, Any] = parsed.values
    assert utc == expected.pop("utc")
    assert values == tuple(expected.values())


def test_simulated_lines_all_take_the_batch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CTI server's lines (the simulator's, which writes the documented format) never fall
    back: the batch path is the one that runs, and it equals the per-line one."""
    fmt = LineFormat(timezone="Europe/Berlin")
    raws = [fmt.format(values) for values in generate_calls(7, 3000, mean_gap_s=1.0)]
    fast = _compare(raws, "Europe/Berlin", "write")
    plain = fast._plain
    assert plain is not None
    assert all(plain.values(raw) is not None for raw in raws)
    calls: list[Line] = []
    monkeypatch.setattr(Preparer, "prepare", lambda self, line, *a: calls.append(line))
    fresh = _preparer("Europe/Berlin", "write")
    assert len(fresh.prepare_lines([Line(raw) for raw in raws], "tcp x", 1.0)) == len(raws)
    assert calls == []


def test_privacy_rules_take_the_per_line_path(monkeypatch: pytest.MonkeyPatch) -> None:
    preparer = _preparer("Europe/Berlin", "write")
    preparer.privacy = object()  # type: ignore[assignment]
    seen: list[Line] = []
    monkeypatch.setattr(Preparer, "prepare", lambda self, line, *a: seen.append(line))
    line = Line(b"i;2024-01-01 12:00:00;CONN;1;;;;;;;;;;;\n")
    preparer.prepare_lines([line], "tcp x", 1.0)
    assert seen == [line]


def test_a_changed_message_turns_the_batch_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare_module, "SCHEMA_VERSION", 2)
    assert not prepare_module._entry_body_matches()


class _ReferenceSplitter(LineSplitter):
    """`LineSplitter.feed` as it was before its inlined common case: every chunk via `_take`."""

    def feed(self, data: bytes) -> Iterator[Line]:
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline + 1
            chunk = data[start:end]
            self.offset += len(chunk)
            start = end
            yield from self._take(chunk, complete=newline >= 0)


@PROPERTY
@given(
    st.lists(
        st.lists(st.sampled_from([b"\n", b"\r", b"x", b"yy", b"\xff", b" "]), max_size=30).map(
            b"".join
        ),
        max_size=8,
    ),
    st.integers(1, 12),
)
def test_splitter_common_case_equals_the_general_one(chunks: list[bytes], limit: int) -> None:
    empty_fast: list[int] = []
    empty_ref: list[int] = []
    fast = LineSplitter(limit, on_empty=lambda: empty_fast.append(fast.offset))
    ref = _ReferenceSplitter(limit, on_empty=lambda: empty_ref.append(ref.offset))
    for chunk in chunks:
        assert list(fast.feed(chunk)) == list(ref.feed(chunk))
        assert (fast.offset, fast.at_boundary, fast.partial) == (
            ref.offset, ref.at_boundary, ref.partial
        )  # fmt: skip
    assert empty_fast == empty_ref
    assert fast.finish() == ref.finish()


@settings(max_examples=50, deadline=None, database=None)
@given(order=st.permutations(range(12)), bundle=st.integers(1, 12))
def test_spool_acknowledges_a_bundle_as_it_does_each_record(
    order: list[int], bundle: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The publisher acknowledges a confirmed bundle at once (`published`); the spool must end
    where acknowledging record by record ends, confirms out of order included."""
    states = []
    for per_bundle in (True, False):
        spool = SpoolBuffer(tmp_path_factory.mktemp("spool"), 1 << 20, lambda: None)
        spool.put([Outgoing("lookup", b"x" * (i + 1)) for i in range(12)])
        items = [item for _ in range(12) if (item := spool.get_nowait()) is not None]
        ordered = [items[i] for i in order]
        for at in range(0, len(ordered), bundle):
            part = ordered[at : at + bundle]
            if per_bundle:
                spool.published(part)
            else:
                for item in part:
                    assert item.on_published is not None
                    item.on_published()
        states.append((spool._acked, spool.pending, spool.unacked_bytes(), dict(spool._done)))
        spool.close()
    assert states[0] == states[1]
    assert states[0][:3] == (12, 0, 0.0)


def test_a_bug_on_the_batch_path_dead_letters_the_line_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = Line(b"i;2024-01-01 12:00:00;CONN;1;;;;;;;;;;;\n")

    def broken(*_args: object) -> bytes:
        raise ZeroDivisionError

    monkeypatch.setattr(prepare_module, "entry_body", broken)
    outs = _preparer("Europe/Berlin", "write").prepare_lines([good, good], "tcp x", 1.0)
    assert [o.routing_key for o in outs] == ["dead", "dead"]
    assert outs[0].headers is not None
    assert "unexpected ZeroDivisionError" in outs[0].headers["x-cti-reason"]
    monkeypatch.undo()
    monkeypatch.setattr(PlainLines, "values", broken)
    outs = _preparer("Europe/Berlin", "write").prepare_lines([good], "tcp x", 1.0)
    assert [o.routing_key for o in outs] == ["lookup"]  # `prepare` took it
