"""The writer's per-batch fast paths against the per-entry paths they replaced, over generated
entries: the generated row function against each value's full conversion (`_text`, `_integer`,
`_float`, `_moment`, every column type in every kind of SQL column), the value tuples against
the decoded message, and the settling of a batch against the per-entry grouping it replaced."""

from __future__ import annotations

import dataclasses
import functools
import threading
from dataclasses import MISSING
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.shared.columns import SPECS, ColumnType
from cti_journal.shared.errors import PermanentError
from cti_journal.shared.message import JournalEntry, decode_bundle, decode_bundle_fields
from cti_journal.writer.dialect import Dialect
from cti_journal.writer.mapping import MappedColumn
from cti_journal.writer.table import TablePlan
from cti_journal.writer.values import (
    _float,
    _integer,
    _moment,
    _text,
    entry_of,
    entry_values,
    values_of,
)
from cti_journal.writer.worker import WriterWorker, _Batch

PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
_INT_FIELDS = {"rufdauer_ms", "verbdauer_sec", "gebuehren"}
_ZEITPUNKT = (ColumnType.ZEITPUNKT, ColumnType.ZEITPUNKT_NUMERISCH)

# Texts as they come: empty, short, at and beyond a column's size, digits, signs, non-ASCII
# digits, blanks, and the numbers' edge cases.
texts = st.one_of(
    st.just(""),
    st.text(max_size=12),
    st.text(alphabet="0123456789+- ", max_size=25),
    st.text(alphabet="0123456789", min_size=18, max_size=40),
    st.text(alphabet="ab٤⁴ü ", max_size=8),
    st.sampled_from(["0", "-0", "+5", " 7 ", "2147483647", "-2147483648", "2147483648"]),
)
# What orjson decodes: None or an int of -2**63 .. 2**64 - 1 (beyond it, a float, refused)
numbers = st.one_of(
    st.none(),
    st.integers(-(2**31) - 2, 2**31 + 1),
    st.integers(-(2**63), 2**64 - 1),
    # every integer column's bounds and one beyond them
    st.sampled_from(sorted({v for b in (8, 16, 32, 64) for v in (
        -(2 ** (b - 1)) - 1, -(2 ** (b - 1)), 2 ** (b - 1) - 1, 2 ** (b - 1), 2**b - 1, 2**b, 0, -1,
    ) if -(2**63) <= v < 2**64})),
)  # fmt: skip
moments = st.one_of(
    st.builds(
        "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}".format,
        st.integers(1, 9999), st.integers(1, 12), st.integers(1, 28),
        st.integers(0, 23), st.integers(0, 59), st.integers(0, 59),
    ),
    st.sampled_from(["2026-02-30 10:00:00", "2026-13-01 00:00:00", "01.01.2026 12:00", ""]),
    st.text(max_size=20),
)  # fmt: skip


@st.composite
def entries(draw: st.DrawFn) -> JournalEntry:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(JournalEntry):
        if f.name in _INT_FIELDS:
            values[f.name] = draw(numbers)
        elif f.name == "received_at":
            values[f.name] = draw(st.floats(0, 2e9))
        elif f.name == "v":
            values[f.name] = 1
        elif f.name == "zeitpunkt":
            values[f.name] = draw(moments)
        elif f.name == "lookup":
            values[f.name] = draw(st.sampled_from(["pending", "hit", "miss"]))
        else:
            values[f.name] = draw(texts)
    return JournalEntry(**values)


@st.composite
def columns(draw: st.DrawFn) -> MappedColumn:
    kind = draw(st.sampled_from(["text", "integer", "float", "datetime"]))
    # half of the number columns take a number field (the usual mapping), the rest any field
    numeric = kind in ("integer", "float") and draw(st.booleans())
    ctype = draw(st.sampled_from(
        [t for t in ColumnType if SPECS[t].field in _INT_FIELDS] if numeric else list(ColumnType)
    ))  # fmt: skip
    nullable = draw(st.booleans())
    name = f"c_{ctype.name.lower()}"
    if kind == "text":
        size = draw(st.one_of(st.none(), st.integers(1, 40)))
        return MappedColumn(name, ctype, "text", size, nullable)
    if kind == "integer":
        bits = draw(st.sampled_from([8, 16, 32, 64]))
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if draw(st.booleans()):
            low, high = 0, 2**bits - 1  # unsigned
        return MappedColumn(name, ctype, "integer", None, nullable, low=low, high=high)
    if kind == "float":
        scale = draw(st.one_of(st.none(), st.integers(0, 8)))
        bound = draw(st.one_of(st.none(), st.sampled_from([99, 999999, 10**15])))
        low = -bound if bound is not None else None
        return MappedColumn(name, ctype, "float", None, nullable, low, bound, scale)
    return MappedColumn(name, ctype, "datetime", None, nullable, utc=draw(st.booleans()))


def reference_value(col: MappedColumn, entry: JournalEntry, on_truncate: Any) -> Any:
    """Each value's full conversion, as `writer/values.py` describes it, one call per value."""
    value = getattr(entry, SPECS[col.type].field)
    if col.sql_kind == "text":
        return _text(col, value, on_truncate)
    if col.sql_kind == "integer":
        return _integer(col, value)
    if col.sql_kind == "float":
        return _float(col, _moment(col, entry.zeitpunkt) if col.type in _ZEITPUNKT else value)
    return entry.utc if col.utc else _moment(col, entry.zeitpunkt)


def outcome(convert: Any) -> Any:
    """What a conversion gives: its values with their types, or its error (type, text, column)."""
    try:
        result = convert()
    except Exception as exc:  # compared, never swallowed: both sides must raise alike
        return ("raised", type(exc), str(exc), getattr(exc, "column", None))
    if isinstance(result, tuple):
        return [(type(v), v) for v in result]
    return [(type(result), result)]


@PROPERTY
@given(st.lists(columns(), min_size=1, max_size=20), st.lists(entries(), min_size=1, max_size=5))
def test_the_generated_row_is_each_value_converted_alone(cols, batch):
    fast_cuts: list[str] = []
    slow_cuts: list[str] = []
    plan = TablePlan("journal", Dialect.POSTGRESQL, tuple(cols), fast_cuts.append)
    again = TablePlan("journal", Dialect.POSTGRESQL, tuple(cols))  # `row`, for entry objects
    for entry in batch:
        fast = outcome(lambda entry=entry: plan.row_of(values_of(entry)))
        slow = outcome(
            lambda entry=entry: tuple(reference_value(c, entry, slow_cuts.append) for c in cols)
        )
        assert fast == slow
        assert outcome(lambda entry=entry: again.row(entry)) == fast
    assert fast_cuts == slow_cuts


@PROPERTY
@given(entries(), st.sets(st.sampled_from([f.name for f in dataclasses.fields(JournalEntry)])))
def test_the_values_of_a_decoded_message_are_the_entry_s(entry, left_out):
    """A sender may leave optional fields out: they take the entry's defaults, as in decode."""
    data = orjson.loads(entry.encode())
    defaults = {f.name for f in dataclasses.fields(JournalEntry) if f.default is not MISSING}
    for name in left_out & defaults:
        if name in data and name != "v":
            del data[name]
    body = orjson.dumps(data)
    (decoded,) = decode_bundle(body)
    (fields,) = decode_bundle_fields(body)
    assert entry_values(fields) == values_of(decoded)
    assert entry_of(entry_values(fields)) == decoded
    assert entry_of(entry_values(fields)).encode() == decoded.encode()


class _Consumer:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def complete(self, delivery: object) -> None:
        self.calls.append(("complete", delivery))

    def fail(self, delivery: object, error: BaseException) -> None:
        self.calls.append(("fail", delivery, error))

    def settle_parts(self, delivery: object, failures: list[tuple[bytes, BaseException]]) -> None:
        self.calls.append(("parts", delivery, failures))


def settled_before(deliveries, entries_, outcomes) -> list[tuple[Any, ...]]:
    """`WriterWorker._settle` as it was: per entry, grouped by the message it came in."""
    consumer = _Consumer()
    by_message: dict[int, tuple[Any, list[tuple[JournalEntry, Any]]]] = {}
    for delivery, entry, result in zip(deliveries, entries_, outcomes, strict=True):
        by_message.setdefault(id(delivery), (delivery, []))[1].append((entry, result))
    for delivery, results in by_message.values():
        failures = [(entry, error) for entry, error in results if error is not None]
        if not failures:
            consumer.complete(delivery)
        elif len(results) == 1:
            consumer.fail(delivery, failures[0][1])
        else:
            consumer.settle_parts(delivery, [(e.encode(), x) for e, x in failures])
    return consumer.calls


@PROPERTY
@given(
    st.lists(
        st.lists(st.tuples(entries(), st.sampled_from([None, None, None, "dead", "retry"])),
                 min_size=1, max_size=6),
        min_size=1, max_size=8,
    )
)  # fmt: skip
def test_a_batch_is_settled_as_per_entry_grouping_settled_it(messages):
    errors = {None: None, "dead": PermanentError("no"), "retry": TimeoutError("later")}
    deliveries = [object() for _ in messages]
    worker = WriterWorker.__new__(WriterWorker)
    worker.consumer = _Consumer()  # type: ignore[assignment]
    worker._in_db = 2  # another batch is in the database: nothing is submitted
    worker._lock = threading.Lock()
    worker._batch = _Batch([], [], [])  # nothing gathered meanwhile
    worker._timer = None
    batch = _Batch(deliveries, [len(m) for m in messages], [])
    flat_entries, flat_deliveries, outcomes = [], [], []
    for delivery, message in zip(deliveries, messages, strict=True):
        for entry, result in message:
            batch.entries.append(values_of(entry))
            flat_entries.append(entry)
            flat_deliveries.append(delivery)
            outcomes.append(errors[result])
    worker._settle(batch, outcomes)
    assert worker.consumer.calls == settled_before(flat_deliveries, flat_entries, outcomes)


def _edge_columns() -> list[MappedColumn]:
    cols: list[MappedColumn] = []
    for ctype in ColumnType:
        name = f"c_{ctype.name.lower()}"
        for nullable in (True, False):
            for size in (None, 1, 4, 20):
                cols.append(MappedColumn(name, ctype, "text", size, nullable))
            for bits in (8, 16, 32, 64):
                for low, high in ((-(2 ** (bits - 1)), 2 ** (bits - 1) - 1), (0, 2**bits - 1)):
                    cols.append(MappedColumn(name, ctype, "integer", None, nullable, low, high))
            for scale, bound in ((None, None), (2, 99), (6, 999999)):
                low = -bound if bound is not None else None
                cols.append(MappedColumn(name, ctype, "float", None, nullable, low, bound, scale))
            for utc in (False, True):
                cols.append(MappedColumn(name, ctype, "datetime", None, nullable, utc=utc))
    return cols


def _edge_entries() -> list[JournalEntry]:
    ints = sorted({v for b in (8, 16, 32, 64) for k in (b - 1, b) for v in (-(2**k) - 1, -(2**k),
                   2**k - 1, 2**k) if -(2**63) <= v < 2**64} | {0, -1})  # fmt: skip
    strs = ["", " ", "x", "abcd", "abcde", "0", "+12", "-12", " 7 ", "4" * 20, "4" * 21, "٤٧"]
    base: dict[str, Any] = {
        "event_id": "e", "source": "s", "received_at": 0.0, "in_out": "i", "verb_zustand": "C",
        "zeitpunkt": "2026-01-01 12:00:00", "utc": "2026-01-01T11:00:00Z",
    }  # fmt: skip
    out = [JournalEntry(**base, rufdauer_ms=v, verbdauer_sec=v, gebuehren=v) for v in ints]
    out += [JournalEntry(**base, rufdauer_ms=None)]
    text_fields = [f.name for f in dataclasses.fields(JournalEntry)
                   if f.name not in _INT_FIELDS | {"received_at", "v", "lookup"}]  # fmt: skip
    for text in strs:
        out.append(JournalEntry(**{**base, **{name: text for name in text_fields}}))
    return out


def test_every_column_kind_at_its_edges_is_each_value_converted_alone():
    """Exhaustive over each column type in each kind of column at its bounds, and the values
    at and one beyond them: what generated entries reach only by chance."""
    cuts: list[str] = []
    for col in _edge_columns():
        plan = TablePlan("journal", Dialect.MARIADB, (col,), cuts.append)
        for entry in _edge_entries():
            fast = outcome(functools.partial(plan.row_of, values_of(entry)))
            slow = outcome(lambda c=col, e=entry: (reference_value(c, e, cuts.append),))
            assert fast == slow, (col, entry)
