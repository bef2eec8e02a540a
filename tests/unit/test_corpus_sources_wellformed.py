"""The issue-15 source corpus (`tests/corpus/sources/`) is well-formed by each format's spec.

Checks the data only -- vCard structure and folding (RFC 6350 / RFC 2426 / vCard 2.1), LDIF
(RFC 2849), the CSV exports' headers, dialect and encoding, the CRM pages, and that every
expectation in calls.tsv names a record that exists. It never runs a project reader: the corpus
must stand on its own so that it can judge the readers.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import quopri
import re
import uuid
from pathlib import Path

import pytest

from tests.corpus.sources import make_ldif, make_vcards
from tests.corpus.sources.loader import load_calls, load_world

SOURCES = Path(__file__).resolve().parents[1] / "corpus" / "sources"
# RFC 6350 3.3: name = iana-token / x-name, optionally prefixed by a group and a dot.
CONTENT_LINE = re.compile(r"^(?:[A-Za-z0-9-]+\.)?[A-Za-z0-9-]+(?:;[^:]*)?:.*$")
TEL_URI = re.compile(r"^tel:\+[0-9][0-9().-]*(?:;ext=[0-9().-]+)?$")  # RFC 3966 global number
LDIF_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*(?::: ?[A-Za-z0-9+/=]*|: ?.*)$")


def unfold_vcards(raw: bytes) -> list[list[str]]:
    """Split a vCard stream into cards of unfolded content lines, strictly."""
    text = raw.decode("utf-8")
    assert "\n" not in text.replace("\r\n", ""), "every line must end in CRLF"
    physical = text.split("\r\n")
    assert physical[-1] == "", "the stream must end with CRLF"
    lines: list[str] = []
    for line in physical[:-1]:
        if line[:1] in (" ", "\t"):
            assert lines, "a continuation line cannot come first"
            lines[-1] += line[1:]
        else:
            lines.append(line)
    cards: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        assert CONTENT_LINE.match(line), f"not a content line: {line!r}"
        if line.upper() == "BEGIN:VCARD":
            assert current is None, "BEGIN:VCARD inside a card"
            current = []
        elif line.upper() == "END:VCARD":
            assert current is not None, "END:VCARD without BEGIN"
            cards.append(current)
            current = None
        else:
            assert current is not None, f"content line outside a card: {line!r}"
            current.append(line)
    assert current is None, "card not closed"
    return cards


def props(card: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Property name (group stripped, upper-case) -> [(parameters, value)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in card:
        head, _, value = line.partition(":")
        name, _, params = head.partition(";")
        out.setdefault(name.split(".")[-1].upper(), []).append((params, value))
    return out


def check_card(card: list[str]) -> None:
    p = props(card)
    assert card[0].startswith("VERSION:"), "VERSION must follow BEGIN (RFC 6350 6.7.9)"
    version = p["VERSION"][0][1]
    assert version in ("2.1", "3.0", "4.0")
    assert len(p.get("UID", [])) == 1, f"one UID per card: {card}"
    if version != "2.1":
        assert len(p.get("FN", [])) == 1, "FN is required (RFC 6350 6.2.1, RFC 2426 3.1.1)"
    if version == "3.0":
        assert "N" in p, "N is required in 3.0 (RFC 2426 3.1.2)"
    if version == "2.1":
        for name in ("N", "FN", "ORG"):
            for params, value in p.get(name, []):
                if "QUOTED-PRINTABLE" in params.upper():
                    quopri.decodestring(value.encode()).decode("utf-8")
    for params, value in p.get("TEL", []):
        if "VALUE=uri" in params:
            assert version == "4.0"
            assert TEL_URI.match(value), value


def check_folding(raw: bytes, limit: int = 75) -> None:
    for line in raw.split(b"\r\n"):
        assert len(line) <= limit, f"line longer than {limit} octets: {line!r}"
        line.decode("utf-8")  # folding never splits a UTF-8 sequence


def test_carddav_cards_one_per_file_named_by_uid() -> None:
    files = sorted((SOURCES / "carddav").glob("*.vcf"))
    assert len(files) >= 10
    for path in files:
        raw = path.read_bytes()
        check_folding(raw)
        (card,) = unfold_vcards(raw)
        check_card(card)
        assert props(card)["UID"][0][1] == f"urn:uuid:{path.stem}"


def test_vcard_export_file() -> None:
    raw = (SOURCES / "export.vcf").read_bytes()
    check_folding(raw)
    cards = unfold_vcards(raw)
    versions = {props(c)["VERSION"][0][1] for c in cards}
    assert versions == {"2.1", "3.0"}
    for card in cards:
        check_card(card)
    assert any(line.startswith("item1.X-ABLabel:") for c in cards for line in c)
    assert any(raw_line.startswith(b" ") for raw_line in raw.split(b"\r\n")), "folding used"


def ldif_entries(text: str) -> list[list[str]]:
    # RFC 2849: version-spec, then records; its examples put the first dn on the next line,
    # which is also the only form slapadd takes.
    assert text.startswith("version: 1\ndn: ")
    entries: list[list[str]] = []
    for block in text.removeprefix("version: 1\n").split("\n\n"):
        if not block.strip():
            continue
        lines: list[str] = []
        for line in block.split("\n"):
            assert len(line) <= 76
            if line.startswith(" "):
                lines[-1] += line[1:]
            elif line:
                assert LDIF_LINE.match(line), line
                lines.append(line)
        entries.append(lines)
    return entries


def ldif_value(line: str) -> tuple[str, str | bytes]:
    attr, _, rest = line.partition(":")
    if rest.startswith(":"):
        return attr, base64.b64decode(rest[1:].strip(), validate=True)
    return attr, rest.strip()


def check_ldif(text: str) -> list[dict[str, list[str | bytes]]]:
    out = []
    for lines in ldif_entries(text):
        assert lines[0].startswith("dn:"), f"entry without dn: {lines[:2]}"
        entry: dict[str, list[str | bytes]] = {}
        for line in lines:
            attr, value = ldif_value(line)
            if isinstance(value, bytes) and attr != "objectGUID":
                value = value.decode("utf-8")
            entry.setdefault(attr, []).append(value)
        if "objectGUID" in entry:
            guid = entry["objectGUID"][0]
            assert isinstance(guid, bytes) and len(guid) == 16
        out.append(entry)
    return out


def test_ad_ldif() -> None:
    entries = check_ldif((SOURCES / "ad.ldif").read_text(encoding="utf-8"))
    people = [e for e in entries if "inetOrgPerson" in e["objectClass"]]
    assert len(people) == 20
    for e in people:
        guid = e["objectGUID"][0]
        assert isinstance(guid, bytes)
        assert str(uuid.UUID(bytes_le=guid)) == e["entryUUID"][0]
        assert "telephoneNumber" in e and "sn" in e and "cn" in e
    assert any(len(e.get("otherTelephone", [])) == 2 for e in people)


def test_make_ldif_is_deterministic_and_well_formed() -> None:
    first = io.StringIO()
    make_ldif.write(1200, 3, first)
    again = io.StringIO()
    make_ldif.write(1200, 3, again)
    assert first.getvalue() == again.getvalue()
    entries = check_ldif(first.getvalue())
    assert len(entries) == 1202  # the suffix and the OU come first
    numbers = [e["telephoneNumber"][0] for e in entries[2:]]
    assert len(set(numbers)) == 1200


def test_make_vcards_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    make_vcards.main(["40", str(tmp_path / "a"), "--single", str(tmp_path / "all.vcf")])
    make_vcards.main(["40", str(tmp_path / "b")])
    files = sorted((tmp_path / "a").glob("*.vcf"))
    assert len(files) == 40
    for path in files:
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
        check_folding(path.read_bytes())
    cards = unfold_vcards((tmp_path / "all.vcf").read_bytes())
    assert len(cards) == 40
    for card in cards:
        check_card(card)


def read_csv(name: str, encoding: str, delimiter: str) -> list[list[str]]:
    text = (SOURCES / name).read_bytes().decode(encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert rows and all(len(r) == len(rows[0]) for r in rows), f"{name}: ragged rows"
    return rows


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "must"),
    [
        ("outlook_en.csv", "cp1252", ",",
         ["First Name", "Last Name", "Company", "Business Phone", "Mobile Phone", "Home Phone"]),
        ("outlook_de.csv", "cp1252", ";",
         ["Vorname", "Nachname", "Firma", "Telefon geschäftlich", "Mobiltelefon"]),
        ("google.csv", "utf-8", ",",
         ["Name", "Given Name", "Family Name", "Phone 1 - Type", "Phone 1 - Value",
          "Organization 1 - Name"]),
        ("erp_companies.csv", "utf-8", ",", ["id", "name", "phone", "fax"]),
    ],
)  # fmt: skip
def test_csv_headers(name: str, encoding: str, delimiter: str, must: list[str]) -> None:
    header = read_csv(name, encoding, delimiter)[0]
    for column in must:
        assert column in header, f"{name}: no column {column!r}"


def test_german_outlook_is_windows_1252_not_utf8() -> None:
    raw = (SOURCES / "outlook_de.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "geschäftlich".encode("cp1252") in raw


def test_google_multi_values_joined() -> None:
    rows = read_csv("google.csv", "utf-8", ",")
    assert any(" ::: " in cell for row in rows[1:] for cell in row)


def test_crm_pages() -> None:
    pages = [json.loads((SOURCES / f"crm_page{i}.json").read_text("utf-8")) for i in (1, 2)]
    assert pages[0]["links"]["next"] and pages[1]["links"]["next"] is None
    ids = [item["id"] for page in pages for item in page["data"]]
    assert len(ids) == len(set(ids)) == pages[0]["meta"]["total"]
    for item in (i for page in pages for i in page["data"]):
        attrs = item["attributes"]
        assert attrs["phones"] and all({"type", "number"} <= set(p) for p in attrs["phones"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", attrs["updated_at"])


def test_calls_name_records_that_exist() -> None:
    world = load_world()
    records = {(s, rid) for p in world.persons for s, rid in p.records.items()}
    companies = {c.id for c in world.companies}
    calls = load_calls()
    assert len(calls) >= 100
    for call in calls:
        assert call.direction in ("in", "out")
        assert re.fullmatch(r"\+?[0-9]+", call.number), call.number
        if call.direction == "out":
            assert call.amtsholung == "0" and call.number.startswith("0")
        if call.expected.kind == "record":
            assert (call.expected.source, call.expected.record_id) in records, call
            assert call.expected.source in world.priorities
        elif call.expected.kind == "company":
            assert call.expected.company_id in companies
    kinds = {c.expected.kind for c in calls}
    assert kinds == {"record", "company", "none"}


def test_record_ids_unique_per_source() -> None:
    world = load_world()
    seen: set[tuple[str, str]] = set()
    for person in world.persons:
        for source, rid in person.records.items():
            assert rid and (source, rid) not in seen
            seen.add((source, rid))
