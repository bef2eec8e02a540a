"""File sources: Outlook (English, German) and Google CSV exports and plain tables, read by
their columns whatever their encoding and dialect; the corpus (tests/corpus/sources/, written
from the formats' documentation by an author who did not read the reader) says which record
holds which numbers. Also: a changed file is read again, an unchanged one is not, deleted rows
leave the index, and a broken file keeps the last good read."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import SourceRefusedError, SourceUnavailableError
from cti_journal.lookup.sources.exports import ExportError, decode, read_csv
from cti_journal.lookup.sources.files import FileContactSource, read_contacts
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.normalize import NumberNormalizer
from tests.corpus.sources.loader import load_world

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "sources"
NORMALIZER = NumberNormalizer.from_settings(LookupSettings(area_code="89"))


def settings(path: Path | str, name: str = "export") -> ContactSourceSettings:
    return ContactSourceSettings(name=name, type="file", path=str(path))


def numbers(row: ContactRow) -> set[str]:
    return {f"+{n.key}" for field in row.phones for n in NORMALIZER.contact_numbers(field) if n.key}


@pytest.mark.parametrize(
    ("source", "file"),
    [
        ("outlook_en", "outlook_en.csv"),
        ("outlook_de", "outlook_de.csv"),
        ("google", "google.csv"),
        ("export_vcf", "export.vcf"),
        ("nextcloud", "carddav"),  # a folder of .vcf files, one card each
    ],
)
def test_corpus_exports_give_each_record_its_numbers(source: str, file: str) -> None:
    rows = {r.record_id: r for r in FileContactSource(settings(CORPUS / file, source)).full_load()}
    expected = {
        p.records[source]: (p, set(p.phones_per_source[source]))
        for p in load_world().persons
        if source in p.records
    }
    assert set(rows) == set(expected)
    for record_id, (person, phones) in expected.items():
        row = rows[record_id]
        # make_sources.py adds a second mobile to Google's row 2 (the ` ::: ` case) that
        # world.json does not list.
        extra = {"+4916090001123"} if (source, record_id) == ("google", "row:2") else set()
        # 0151 + 7 digits is no valid German mobile number (0151 numbers have 8): the number
        # reader ignores it; reported as a corpus question, not a file-reading matter.
        invalid = {"+491518571147"}
        assert numbers(row) == (phones | extra) - invalid, (source, record_id, row.phones)
        assert person.family in row.name


def test_german_excel_export_is_read_by_its_columns() -> None:
    """`;`, every field quoted, Windows-1252: the name and company come from their columns, the
    note with `;` and `"` in it is no phone field."""
    text, encoding = decode((CORPUS / "outlook_de.csv").read_bytes())
    assert encoding == "cp1252"
    first = next(read_csv(text, settings("x")))
    assert (first.record_id, first.name, first.company) == (
        "row:1",
        "Jon. Hofmann",
        "Schwabinger Werbeagentur",
    )
    assert first.phones == ("089 3838-191", "08151 9758105", "0171 30983060")


def test_google_multi_values_become_separate_fields() -> None:
    rows = list(FileContactSource(settings(CORPUS / "google.csv")).full_load())
    doris = next(r for r in rows if r.name == "Doris Dietrich")
    assert doris.phones == ("+49 89 7788 338", "0176 98825995", "+49 160 90001123")


HEADER = "Vorname;Nachname;Firma;Telefon geschäftlich;Mobiltelefon;Notizen"
LINE = 'Jürgen;Weiß;Bäckerei Öz;089 4711-22;0171 1234567;"Notiz; mit ""Zitat"""'


@pytest.mark.parametrize(
    ("encoding", "bom", "delimiter"),
    [
        ("utf-8", b"", ";"),
        ("utf-8", codecs.BOM_UTF8, ","),
        ("utf-16-le", codecs.BOM_UTF16_LE, "\t"),
        ("utf-16-le", b"", ";"),
        ("utf-16-be", codecs.BOM_UTF16_BE, ","),
        ("cp1252", b"", ";"),
        ("cp1252", b"", "\t"),
    ],
)
def test_encoding_and_dialect_come_from_the_content(
    encoding: str, bom: bytes, delimiter: str
) -> None:
    text = "\r\n".join(
        line.replace(";", delimiter) if delimiter != ";" else line for line in (HEADER, LINE)
    )
    if delimiter != ";":  # the note keeps its own `;` inside the quotes
        text = text.replace(f"Notiz{delimiter} mit", "Notiz; mit")
    (row,) = read_contacts(bom + text.encode(encoding), settings("x"))
    assert (row.name, row.company) == ("Jürgen Weiß", "Bäckerei Öz")
    assert row.phones == ("089 4711-22", "0171 1234567")


def test_a_plain_table_with_ids_is_read_as_explain_reads_it() -> None:
    rows = read_contacts(
        b"id;name;phone;fax\r\n7;ACME GmbH;089 1234-0;089 1234-99\r\n", settings("x")
    )
    assert [(r.record_id, r.name, r.company, r.phones) for r in rows] == [
        ("7", "", "ACME GmbH", ("089 1234-0", "089 1234-99"))
    ]


def test_a_file_in_no_known_format_is_refused_naming_the_source(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Kunde Maier 089 123456\nKunde Huber 089 654321\n", encoding="utf-8")
    with pytest.raises(SourceRefusedError, match=r"source export \(.*notes.txt\).*no Outlook"):
        list(FileContactSource(settings(path)).full_load())
    with pytest.raises(SourceRefusedError, match="does not exist"):
        list(FileContactSource(settings(tmp_path / "missing.csv")).full_load())
    with pytest.raises(ExportError):
        read_contacts(b"", settings("x"))


def test_a_cut_off_export_is_a_transient_failure(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes(f'{HEADER}\r\n"Jürgen";"Weiß";"Bäcker'.encode())
    with pytest.raises(SourceUnavailableError) as caught:
        list(FileContactSource(settings(path)).full_load())
    assert not isinstance(caught.value, SourceRefusedError)


def _write(path: Path, *lines: str, mtime: int) -> None:
    path.write_text("\r\n".join((HEADER, *lines)), encoding="cp1252")
    os.utime(path, ns=(mtime, mtime))


def test_the_holder_reads_a_changed_file_and_drops_deleted_rows(tmp_path: Path) -> None:
    path = tmp_path / "outlook.csv"
    _write(path, "Anna;Alt;;089 111111;;", "Bert;Bleibt;;089 222222;;", mtime=10**18)
    source = FileContactSource(settings(path))
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[source])
    holder.start()
    try:
        assert holder.current.find("089111111") is not None
        before = holder.current
        holder.refresh_now()
        assert holder.current is before  # unchanged: no rebuild
        os.utime(path, ns=(2 * 10**18, 2 * 10**18))
        holder.refresh_now()
        assert holder.current is before  # touched, same bytes: no rebuild
        # Anna's row goes; Bert moves to row 1 and gets a new number; Carla is new.
        _write(path, "Bert;Bleibt;;089 333333;;", "Carla;Neu;;089 444444;;", mtime=3 * 10**18)
        holder.refresh_now()
        index = holder.current
        assert index.find("089111111") is None
        assert index.find("089222222") is None
        found = index.find("089333333")
        assert found is not None and (found.contact.name, found.contact.record_id) == (
            "Bert Bleibt",
            "row:1",
        )
        assert index.find("089444444") is not None
        assert index.records_of("export") == 2
        # A broken file (the export job still writing) keeps the last complete read.
        path.write_bytes(f'{HEADER}\r\n"Dora";"Halb'.encode("cp1252"))
        holder.refresh_now()
        assert holder.current is index
    finally:
        holder.stop()


def card(uid: str, name: str, tel: str) -> str:
    uid_line = f"UID:{uid}\r\n" if uid else ""
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\n{uid_line}FN:{name}\r\nTEL;TYPE=WORK:{tel}\r\nEND:VCARD\r\n"
    )


def test_a_vcard_folder_follows_added_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "a.vcf").write_text(card("uid-a", "Anna", "089 111111"), encoding="utf-8")
    (tmp_path / "b.vcf").write_text(card("", "Bert", "089 222222"), encoding="utf-8")
    (tmp_path / "c.vcf").write_text(card("", "Cora", "089 333333"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a card", encoding="utf-8")
    source = FileContactSource(settings(tmp_path))
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[source])
    holder.start()
    try:
        ids = {holder.current.find(n).contact.record_id for n in ("089111111", "089222222")}  # type: ignore[union-attr]
        assert ids == {"uid-a", "b.vcf#1"}  # without UID: its file and place, unique per folder
        (tmp_path / "a.vcf").unlink()
        (tmp_path / "d.vcf").write_text(card("uid-d", "Dora", "089 444444"), encoding="utf-8")
        holder.refresh_now()
        assert holder.current.find("089111111") is None
        assert holder.current.find("089444444") is not None
        assert holder.current.records_of("export") == 3
    finally:
        holder.stop()
