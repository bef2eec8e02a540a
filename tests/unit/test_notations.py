"""Contact fields as people write them, read against a corpus written from the standards and
export formats (DIN 5008, ITU-T E.123, the legacy slash, German and English extension words,
libphonenumber's own test forms), never computed by lookup/.

`tests/corpus/notations.tsv` is written by someone who did not read lookup/ (so that it cannot
inherit its blind spots); `tests/corpus/notations_lookup.tsv` by the look-up's author. Both:
`field <TAB> expected <TAB> source`, expected = space-separated `+E164` (a number),
`+E164~EXT` (a company base and a direct-dial extension), `+E164~0` (a marked switchboard) or
`NONE`; the company is in Munich (region DE, area code 089, outside prefix 0).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cti_journal.shared.normalize import NumberNormalizer

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
FILES = ("notations.tsv", "notations_lookup.tsv")
MUNICH = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")


def _rows(name: str) -> list[tuple[str, str, str]]:
    path = CORPUS / name
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = [r for r in reader if r and not r[0].startswith("#")]
    if rows and rows[0][:2] == ["field", "expected"]:
        rows = rows[1:]
    return [(r[0].replace("\\n", "\n"), r[1], r[2] if len(r) > 2 else "") for r in rows]


def _cases() -> list[object]:
    return [
        pytest.param(field, expected, source, id=f"{name}:{line}")
        for name in FILES
        for line, (field, expected, source) in enumerate(_rows(name), start=2)
    ]


def test_the_corpora_are_there_and_large() -> None:
    assert len(_rows("notations_lookup.tsv")) >= 100
    if not (CORPUS / "notations.tsv").exists():
        pytest.skip("tests/corpus/notations.tsv (the outside corpus) is not merged yet")
    assert len(_rows("notations.tsv")) >= 100


@pytest.mark.parametrize(("field", "expected", "source"), _cases())
def test_a_field_reads_into_exactly_the_expected_numbers(
    field: str, expected: str, source: str
) -> None:
    got = sorted(str(number) for number in MUNICH.contact_numbers(field))
    want = [] if expected.strip() == "NONE" else sorted(expected.split())
    reading = MUNICH.read(field)
    assert got == want, f"{field!r} ({source}): ignored {reading.ignored}"
    assert source.strip(), "every row names its source"


def test_the_fast_path_reads_as_the_general_reader() -> None:
    """`FieldReader.read` takes a shortcut for the commonest fields; on every field of both
    corpora, the world and the generated set it must give what `read_general` gives."""
    from tests.support.lookup_dataset import generate

    fields = [field for name in FILES for field, _, _ in _rows(name)]
    for world in ("world", "world_lookup"):
        for table, columns in (
            ("crm_persons", ("phone", "mobile")),
            ("erp_companies", ("phone", "fax")),
        ):
            path = CORPUS / world / f"{table}.csv"
            if path.exists():
                with path.open(encoding="utf-8", newline="") as fh:
                    fields += [row[c] for row in csv.DictReader(fh) for c in columns if row[c]]
    fields += [f for row in generate(calls=10).rows for f in row.phones]
    fields += ["089 1234567", "(089) 12 34 56", "+49 (0)89 1234567", "0049 89 1234567", "(0 89) 1"]
    reader = MUNICH._reader
    differ = [f for f in fields if reader.read(f).numbers != reader.read_general(f).numbers]
    assert differ == []
    assert sum(1 for f in fields if reader.read(f).numbers) > 5_000
