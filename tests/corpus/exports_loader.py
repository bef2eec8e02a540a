"""Read the outside corpus (issue 16) into plain data: no project imports, stdlib only.

`messy.tsv` holds single phone fields with escapes so that invisible characters stay visible;
`exports/` holds exported address books, each with a hand-written `<file>.expected.tsv`.
The formats are described in `tests/corpus/exports/README.md`. This module only *reads* the
corpus; it never decides what a field means (that was done by hand, in the expected files).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CORPUS_DIR = Path(__file__).resolve().parent
EXPORTS_DIR = CORPUS_DIR / "exports"
MESSY_TSV = CORPUS_DIR / "messy.tsv"

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
EXTENSION = re.compile(r"[0-9]{1,6}")
NO_FIELD = "-"  # the record has no phone field at all

Kind = Literal["numbers", "none", "ambiguous"]


@dataclass(frozen=True)
class Reading:
    """One number a careful person reads: a plain E.164 number, or a base with an extension."""

    number: str
    ext: str | None = None
    # The field's own text calls this extension the switchboard ("Zentrale", "Switchboard").
    switchboard: bool = False


@dataclass(frozen=True)
class Expected:
    kind: Kind
    readings: tuple[Reading, ...] = ()


@dataclass(frozen=True)
class MessyRow:
    line: int
    raw: str
    field: str
    expected: Expected
    family: str
    source: str


@dataclass(frozen=True)
class ExpectedEntry:
    line: int
    record: str
    field: str
    expected: Expected


@dataclass(frozen=True)
class ExportRecord:
    record: str
    fields: dict[str, str]


class CorpusError(ValueError):
    """The corpus file is not well-formed; the message names file and line."""


_ESCAPE = re.compile(r"\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|[tnr\\]|.?)")
_SIMPLE = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def decode_field(text: str) -> str:
    """Undo the TSV escapes: \\t \\n \\r \\\\ \\uXXXX \\UXXXXXXXX; anything else is an error."""

    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        if token in _SIMPLE:
            return _SIMPLE[token]
        if token[:1] in ("u", "U") and len(token) in (5, 9):
            return chr(int(token[1:], 16))
        raise CorpusError(f"unknown escape \\{token!s} in {text!r}")

    return _ESCAPE.sub(one, text)


def parse_expected(text: str) -> Expected:
    """`NONE`, `AMBIGUOUS`, or `|`-separated `+E164` / `ext=N` / `ext=N,sb` tokens."""
    if text == "NONE":
        return Expected("none")
    if text == "AMBIGUOUS":
        return Expected("ambiguous")
    readings: list[Reading] = []
    base: str | None = None
    base_has_ext = False
    for token in text.split("|"):
        if E164.fullmatch(token):
            if base is not None and not base_has_ext:
                readings.append(Reading(base))
            base, base_has_ext = token, False
        elif token.startswith("ext="):
            value, _, flag = token[4:].partition(",")
            if base is None or not EXTENSION.fullmatch(value) or flag not in ("", "sb"):
                raise CorpusError(f"bad extension token {token!r} in {text!r}")
            readings.append(Reading(base, value, flag == "sb"))
            base_has_ext = True
        else:
            raise CorpusError(f"bad token {token!r} in {text!r}")
    if base is None:
        raise CorpusError(f"no number in {text!r}")
    if not base_has_ext:
        readings.append(Reading(base))
    return Expected("numbers", tuple(readings))


def _tsv_rows(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[0].split("\t") != header:
        raise CorpusError(f"{path.name}:1: header must be {header}")
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise CorpusError(f"{path.name}:{number}: {len(cells)} columns, want {len(header)}")
        yield number, cells


def load_messy(path: Path = MESSY_TSV) -> list[MessyRow]:
    rows = []
    for number, (raw, expected, family, source) in _tsv_rows(
        path, ["field", "expected", "family", "source"]
    ):
        try:
            rows.append(
                MessyRow(number, raw, decode_field(raw), parse_expected(expected), family, source)
            )
        except CorpusError as error:
            raise CorpusError(f"{path.name}:{number}: {error}") from None
    return rows


def load_expected(path: Path) -> list[ExpectedEntry]:
    entries = []
    for number, (record, field, expected) in _tsv_rows(path, ["record", "field", "expected"]):
        try:
            entries.append(ExpectedEntry(number, record, field, parse_expected(expected)))
        except CorpusError as error:
            raise CorpusError(f"{path.name}:{number}: {error}") from None
    return entries


def export_files(directory: Path = EXPORTS_DIR) -> list[Path]:
    """Every export in the corpus (the files that have an expected-file next to them)."""
    return sorted(
        p.with_name(p.name.removesuffix(".expected.tsv")) for p in directory.glob("*.expected.tsv")
    )


# How each export is stored: encoding and delimiter as the exporting system writes them,
# and which column names the record (None: the 1-based record number, `r1`, `r2`, …).
_CSV_FORMATS: dict[str, tuple[str, str, str | None]] = {
    "outlook_de.csv": ("cp1252", ";", None),
    "outlook_en.csv": ("cp1252", ",", None),
    "google.csv": ("utf-8", ",", None),
    "thunderbird.csv": ("utf-8", ",", None),
    "salesforce_contacts.csv": ("utf-8", ",", "Id"),
    "odoo_res_partner.csv": ("utf-8", ",", "id"),
    "hubspot_contacts.csv": ("utf-8", ",", "Record ID"),
    "spreadsheet_kontakte.csv": ("cp1252", ";", "Nr"),
}


def load_export(path: Path) -> list[ExportRecord]:
    """One export's records with their raw field values, keyed like its expected-file."""
    if path.name in _CSV_FORMATS:
        return _load_csv(path, *_CSV_FORMATS[path.name])
    if path.suffix == ".vcf":
        return _load_vcard(path)
    if path.suffix == ".ldif":
        return _load_ldif(path)
    if path.suffix == ".json":
        return _load_telegram(path)
    raise CorpusError(f"{path.name}: no reader for this export")


def _load_csv(
    path: Path, encoding: str, delimiter: str, id_column: str | None
) -> list[ExportRecord]:
    text = path.read_bytes().decode(encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    for index, row in enumerate(reader, start=1):
        record = row[id_column] if id_column else f"r{index}"
        fields = {key: value for key, value in row.items() if key and value}
        records.append(ExportRecord(record, fields))
    return records


def _unfold(text: str, continuation: str) -> list[str]:
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(continuation) and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def _vcard_value(value: str) -> str:
    return re.sub(r"\\([,;\\nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _load_vcard(path: Path) -> list[ExportRecord]:
    records: list[ExportRecord] = []
    fields: dict[str, str] = {}
    uid: str | None = None
    for line in _unfold(path.read_text(encoding="utf-8"), " "):
        name, _, value = line.partition(":")
        prop = name.split(";")[0].split(".")[-1].upper()
        if prop == "BEGIN":
            fields, uid = {}, None
        elif prop == "END":
            records.append(ExportRecord(uid or f"c{len(records) + 1}", fields))
        elif prop == "UID":
            uid = value
        elif prop in ("TEL", "URL"):
            count = sum(1 for key in fields if key.startswith(prop + "["))
            fields[f"{prop}[{count + 1}]"] = _vcard_value(value)
    return records


def _load_ldif(path: Path) -> list[ExportRecord]:
    records = []
    dn: str | None = None
    fields: dict[str, str] = {}
    for line in [*_unfold(path.read_text(encoding="utf-8"), " "), ""]:
        if not line:
            if dn is not None:
                records.append(ExportRecord(dn, fields))
            dn, fields = None, {}
            continue
        if line.startswith("#"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8")
        else:
            value = value[1:] if value.startswith(" ") else value
        if name == "dn":
            dn = value
        elif name not in ("changetype", "objectClass", "cn"):
            count = sum(1 for key in fields if key.startswith(name + "["))
            fields[f"{name}[{count + 1}]"] = value
    return records


def _load_telegram(path: Path) -> list[ExportRecord]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        ExportRecord(f"contacts.list[{index}]", {"phone_number": entry.get("phone_number", "")})
        for index, entry in enumerate(data["contacts"]["list"])
    ]
