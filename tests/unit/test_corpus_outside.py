"""The reader on the outside corpus of issue 16 (tests/corpus/messy.tsv and tests/corpus/exports/,
written by a helper who had not read the reader): every field reads into exactly the numbers a
careful person reads from it, `AMBIGUOUS` and `NONE` fields into none.

A field's readings are compared as a set of (number, extension, switchboard word) — the corpus's
`+E164|ext=N|ext=N,sb` — so `089 4523180-12` is (+49894523180, 12) and `Zentrale:
0711 123456-100` (+49711123456, 100, switchboard). A `-0` is a switchboard whatever the text
says. Rows the reader deliberately does not read would be listed in DELIBERATELY_NOT_READ with
the reason; there are none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_journal.shared.fields import ContactNumber
from cti_journal.shared.normalize import NumberNormalizer
from tests.corpus import exports_loader as corpus

MUNICH = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
Item = tuple[str, str | None, bool]
# (where, why) of rows the reader deliberately does not read; `where` as in the test ids
DELIBERATELY_NOT_READ: dict[str, str] = {}


def item(number: ContactNumber) -> Item:
    if not number.extension:
        return f"+{number.key}", None, False
    return f"+{number.base}", number.extension, number.marked and number.extension != "0"


def wanted(expected: corpus.Expected) -> set[Item]:
    return {
        (r.number, r.ext, r.switchboard and r.ext != "0")
        for r in expected.readings
        if expected.kind == "numbers"
    }


def _cases() -> list[tuple[str, str, corpus.Expected]]:
    cases = [(f"messy.tsv:{r.line}", r.field, r.expected) for r in corpus.load_messy()]
    for path in corpus.export_files():
        expected_file = Path(f"{path}.expected.tsv")
        fields = {r.record: r.fields for r in corpus.load_export(path)}
        for entry in corpus.load_expected(expected_file):
            if entry.field != corpus.NO_FIELD:
                where = f"{path.name}:{entry.line}"
                cases.append((where, fields[entry.record][entry.field], entry.expected))
    return cases


CASES = _cases()


def test_the_corpus_is_as_large_as_the_issue_asks() -> None:
    assert sum(where.startswith("messy") for where, _, _ in CASES) >= 300
    assert len({where.split(":")[0] for where, _, _ in CASES}) - 1 >= 8


@pytest.mark.parametrize(("where", "field", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_field_reads_into_what_a_careful_person_reads(
    where: str, field: str, expected: corpus.Expected
) -> None:
    if where in DELIBERATELY_NOT_READ:
        pytest.skip(DELIBERATELY_NOT_READ[where])
    reading = MUNICH.read(field)
    got = {item(n) for n in reading.numbers}
    assert got == wanted(expected), f"{field!r}: ignored {reading.ignored}"
    if expected.kind == "ambiguous":
        # `check` reports these: the reader says why the field has no key
        assert reading.ambiguous or reading.refused or reading.ignored, field


def test_never_a_number_a_careful_person_would_not_read() -> None:
    """The figure the issue's target is about, over the whole corpus at once."""
    wrong = [
        (where, field)
        for where, field, expected in CASES
        if {item(n) for n in MUNICH.read(field).numbers} - wanted(expected)
    ]
    assert wrong == []
