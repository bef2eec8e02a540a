"""The outside corpus of issue 16 is well-formed (not: how the reader does on it).

Every export has an expected-file, every record of an export has at least one expected row,
every expected row names a record and a field that exist, every expected number is E.164 digits,
and every escape in `messy.tsv` decodes.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from tests.corpus import exports_loader as corpus

EXPORTS = corpus.export_files()
SYSTEMS = {
    "outlook_de.csv",
    "outlook_en.csv",
    "google.csv",
    "apple_contacts.vcf",
    "thunderbird.vcf",
    "thunderbird.csv",
    "ad_export.ldif",
    "salesforce_contacts.csv",
    "odoo_res_partner.csv",
    "hubspot_contacts.csv",
    "spreadsheet_kontakte.csv",
    "telegram_result.json",
    "whatsapp_shared_contacts.vcf",
}


def test_every_system_issue_16_asks_for_is_there() -> None:
    assert {path.name for path in EXPORTS} >= SYSTEMS
    assert all(path.exists() for path in EXPORTS)


@pytest.mark.parametrize("export", EXPORTS, ids=lambda p: p.name)
def test_expected_file_covers_every_record_and_names_only_real_fields(export: Path) -> None:
    records = {record.record: record for record in corpus.load_export(export)}
    entries = corpus.load_expected(export.with_name(export.name + ".expected.tsv"))
    assert records, f"{export.name}: no records read"
    assert {entry.record for entry in entries} == set(records)
    for entry in entries:
        fields = records[entry.record].fields
        if entry.field == corpus.NO_FIELD:
            assert entry.expected.kind == "none", f"line {entry.line}: `-` must be NONE"
        else:
            assert entry.field in fields, f"line {entry.line}: no field {entry.field!r}"
    assert len({(e.record, e.field) for e in entries}) == len(entries), "duplicate rows"


@pytest.mark.parametrize("export", EXPORTS, ids=lambda p: p.name)
def test_every_non_empty_phone_field_has_an_expectation(export: Path) -> None:
    # Phone fields are the ones the expected-file names somewhere in this export; a record that
    # fills such a field must say what it reads there, so that no field is silently skipped.
    entries = corpus.load_expected(export.with_name(export.name + ".expected.tsv"))
    phone_fields = {entry.field for entry in entries} - {corpus.NO_FIELD}
    covered = {(entry.record, entry.field) for entry in entries}
    for record in corpus.load_export(export):
        for field, value in record.fields.items():
            if field in phone_fields and value.strip():
                assert (record.record, field) in covered, f"{record.record} {field}={value!r}"


def test_messy_has_enough_rows_and_the_families_issue_16_names() -> None:
    rows = corpus.load_messy()
    assert len(rows) >= 300
    families = Counter(row.family for row in rows)
    for family in (
        "unicode_digits",
        "invisible_space",
        "bidi_marks",
        "dashes",
        "mojibake",
        "html_entities",
        "email_signature",
        "links",
        "spreadsheet",
        "several_numbers",
        "switchboard_compact",
        "switchboard_other_ext",
        "label_digits",
        "hostile_near",
    ):
        assert families[family] >= 5, family
    assert all(row.source for row in rows)


def test_messy_escapes_decode_and_hide_nothing() -> None:
    for row in corpus.load_messy():
        # The raw column is printable: every invisible character is written as an escape.
        hidden = [
            ch
            for ch in row.raw
            if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Zs") and ch != " "
        ]
        assert not hidden, f"line {row.line}: unescaped invisible character {hidden!r}"


def test_escape_decoding() -> None:
    assert corpus.decode_field(r"089\u00a0123\t\\n\U0001d7ce") == "089\u00a0123\t\\n\U0001d7ce"
    with pytest.raises(corpus.CorpusError):
        corpus.decode_field(r"089\x41")


def test_expected_values_parse() -> None:
    parsed = corpus.parse_expected("+498954321|ext=70|ext=71,sb|+491701234567")
    assert parsed.readings == (
        corpus.Reading("+498954321", "70"),
        corpus.Reading("+498954321", "71", switchboard=True),
        corpus.Reading("+491701234567"),
    )
    assert corpus.parse_expected("NONE").kind == "none"
    assert corpus.parse_expected("AMBIGUOUS").kind == "ambiguous"
    for bad in ("", "089123456", "ext=0", "+49 89 123", "+4989123456|ext=x", "+49|NONE"):
        with pytest.raises(corpus.CorpusError):
            corpus.parse_expected(bad)


def test_every_expected_number_is_e164_digits() -> None:
    expectations = [row.expected for row in corpus.load_messy()] + [
        entry.expected
        for export in EXPORTS
        for entry in corpus.load_expected(export.with_name(export.name + ".expected.tsv"))
    ]
    for expected in expectations:
        assert (expected.kind == "numbers") == bool(expected.readings)
        for reading in expected.readings:
            assert corpus.E164.fullmatch(reading.number)
            assert reading.ext is None or corpus.EXTENSION.fullmatch(reading.ext)
            assert reading.ext is not None or not reading.switchboard
