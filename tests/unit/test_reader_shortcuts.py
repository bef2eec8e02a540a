"""The field reader's shortcuts (issue 18: the 1,000,000-contact index built in ≤ 20 s) read
every field as the reader without them does, and an index built with them answers every call as
one built without them.

The reference is the same reader with `shortcuts=False`: every field through every rule of
`read_general`'s segment path, every pattern applied. The fields come from outside the code under
test where they can: both notation corpora, the outside corpus of issue 16 (messy.tsv, the
exports), the two worlds' CRM and ERP tables; then the generated benchmark set, and hypothesis's
strings over the characters that decide the shortcuts (digits, every separator, `+`, letters
that are labels, extension words or dates' neighbours).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.normalize import NumberNormalizer
from tests.corpus import exports_loader
from tests.support.lookup_dataset import SETTINGS, generate, iter_rows

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
FAST = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
REFERENCE = NumberNormalizer(region="DE", area_code="89", outside_prefix="0", shortcuts=False)


def _notations() -> list[str]:
    fields: list[str] = []
    for name in ("notations.tsv", "notations_lookup.tsv"):
        path = CORPUS / name
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
                fields += [r[0].replace("\\n", "\n") for r in rows if r and r[0] != "field"]
    return fields


def _outside() -> list[str]:
    fields = [r.field for r in exports_loader.load_messy()]
    for path in exports_loader.export_files():
        for record in exports_loader.load_export(path):
            fields += [f for f in record.fields.values() if f]
    return fields


def _world_rows(world: str) -> list[ContactRow]:
    crm = ContactSourceSettings(name="crm", priority=10)
    erp = ContactSourceSettings(name="erp", priority=20)
    rows: list[ContactRow] = []
    with (CORPUS / world / "crm_persons.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            name = f"{r['first_name']} {r['last_name']}".strip()
            rows.append(ContactRow(r["id"], name, r["company"], (r["phone"], r["mobile"]), crm))
    with (CORPUS / world / "erp_companies.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append(ContactRow(r["id"], "", r["name"], (r["phone"], r["fax"]), erp))
    return rows


def _world_calls(world: str) -> list[tuple[str, str, bool]]:
    with (CORPUS / world / "calls.tsv").open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["number"], r["amtsholung"], r["direction"] == "in") for r in rows]


def _reads(normalizer: NumberNormalizer, field: str) -> tuple[object, ...]:
    reading = normalizer.read(field)
    return tuple(reading.numbers), tuple(reading.extensions)


def _differ(fields: Iterable[str]) -> list[str]:
    return [f for f in fields if _reads(FAST, f) != _reads(REFERENCE, f)]


def test_every_corpus_field_reads_as_without_shortcuts() -> None:
    fields = _notations() + _outside()
    for world in ("world", "world_lookup"):
        fields += [p for row in _world_rows(world) for p in row.phones if p]
    assert len(fields) > 2_000
    assert _differ(fields) == []


def test_every_generated_field_reads_as_without_shortcuts() -> None:
    fields = [p for row in generate(calls=10).rows for p in row.phones]
    fields += [p for row in iter_rows(20_000) for p in row.phones]
    assert _differ(fields) == []


_PIECES = st.sampled_from(
    [*"0123456789", *"0123456789", " ", "-", "/", ".", "(", ")", "+", "+49 ", "0049 ", "(0)",
     " - ", "-0", "Tel. ", "Tel.: ", "Fax ", "x", "Dw. ", " (Zentrale)", " oder ", ":", "12.03.",
     "2024", ",", "E+", "89", "171", "030", "0711", "Büro: ", "Tel: ", "Handy: ",
     " (nur vormittags)", " (Verwaltung oder Empfang)", " (Zentrale)", "(", "App. ", " (E+)",
     " (x)", " (sms:+)"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=14).map("".join))
@example("0351-48332-12")
@example("(089-1234567")
@example("+49 89-12345")
@example("0160.240.2718")
@example("01.02.2020")
@example("+4989123456")
@example("+0")
@example("Tel. 089 1234567")
@example("Büro: +49 (0)89 1234567-0")
@example("0711 123456-12 (Zentrale)")
@example("Tel.: 0171 1234567 ")
@example("Tel. 01 2345 (nur vormittags)")
def test_any_field_of_digits_and_separators_reads_as_without_shortcuts(field: str) -> None:
    assert _reads(FAST, field) == _reads(REFERENCE, field)


def _answers(index: ContactIndex, calls: Iterable[tuple[str, str, bool]]) -> list[object]:
    return [index.find(number, amt, incoming=incoming) for number, amt, incoming in calls]


@pytest.mark.parametrize("tie_break", ["none", "lowest_id"])
def test_an_index_built_with_shortcuts_answers_every_call_as_one_without(tie_break: str) -> None:
    """Both worlds' contacts and calls, and the generated set's: every look-up's record, kind
    and flags; and the same numbers indexed."""
    for world in ("world", "world_lookup"):
        rows, calls = _world_rows(world), _world_calls(world)
        fast = ContactIndex.build(rows, FAST, tie_break)
        reference = ContactIndex.build(rows, REFERENCE, tie_break)
        assert (len(fast), fast.bases, fast.records) == (
            len(reference), reference.bases, reference.records,
        )  # fmt: skip
        assert _answers(fast, calls) == _answers(reference, calls)
    data = generate()
    generated = [(c.rufnummer, c.amtsholung, False) for c in data.calls]
    fast_n = NumberNormalizer.from_settings(SETTINGS)
    reference_n = NumberNormalizer(
        SETTINGS.region, SETTINGS.area_code, SETTINGS.outside_prefix,
        SETTINGS.max_extension_digits, SETTINGS.own_number, shortcuts=False,
    )  # fmt: skip
    fast = ContactIndex.build(data.rows, fast_n, tie_break)
    reference = ContactIndex.build(data.rows, reference_n, tie_break)
    assert len(fast) == len(reference) and fast.bases == reference.bases
    found = _answers(fast, generated)
    assert found == _answers(reference, generated)
    assert sum(m is not None for m in found) > 1_000
    # every indexed number, probed as the network delivers it
    keys = itertools.islice((f"+{key}" for key, _ in fast._exact.pairs()), 50_000)
    probes = [(k, "", True) for k in keys]
    assert _answers(fast, probes) == _answers(reference, probes)
