"""Exported address books as CSV: Outlook (English or German headers), Google Contacts, and a
plain `id, name, company, phones…` table. Which one, the encoding and the CSV dialect all come
from the content, since an admin who copies an export to the server rarely knows them.

- Encoding: a BOM says UTF-8 or UTF-16; NUL bytes in every other position say UTF-16 without
  one; otherwise text that decodes as UTF-8 is UTF-8, and anything else is Windows-1252 (what
  Outlook and German Excel write as "ANSI"). The candidates are this closed set, and Windows-1252
  text with umlauts is practically never valid UTF-8, so a statistical detector
  (charset-normalizer, chardet) would add a dependency and only guesses where this decides.
- Dialect: csv.Sniffer proposes the delimiter (`;` `,` tab) and quoting from a sample; it
  guesses from character frequencies and can be misled by a long quoted note, so a delimiter
  counts only if the header it splits is one of the formats below (then `;`, `,`, tab in turn).
- Format by header: Google has `Phone N - Value`; Outlook `First Name`/`Last Name` or
  `Vorname`/`Nachname` and phone columns; plain has `id` and `name`, `first_name`/`last_name`
  or `company`. Outlook and Google exports carry no record id: a row's id is `row:N`, its
  1-based data row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from cti_journal.lookup.contacts import ContactRow
from cti_journal.shared.config import ContactSourceSettings

DELIMITERS: Final = (";", ",", "\t")
GOOGLE_SEPARATOR: Final = " ::: "
SNIFF_BYTES: Final = 16 * 1024
# Outlook's phone columns in both languages: every `…Phone…`, `…Fax…`, `Telefon…`, `Mobil…`,
# pager, ISDN, callback (`Rückmeldung`) and car phone (`Autotelefon`); not Telex, not Google's
# `Phonetic …` names.
_PHONE_COLUMN: Final = re.compile(
    r"(?<!\w)(phone|fax|telefon|mobil\w*|pager|isdn|callback|rückmeldung|autotelefon)(?!tic)",
    re.IGNORECASE,
)
_GOOGLE_VALUE: Final = re.compile(r"^Phone \d+ - Value$", re.IGNORECASE)
_PLAIN_NAMES: Final = frozenset({"id", "name", "first_name", "last_name", "company"})


class ExportError(ValueError):
    """The content is no export this module knows; the message says what was seen."""


class BrokenExportError(ExportError):
    """A known export that breaks off or is malformed part-way (an export job still writing,
    a cut-off copy): worth reading again later."""


@dataclass(frozen=True)
class Layout:
    """Which columns of a recognised header hold what."""

    kind: str  # "outlook", "google", "plain"
    id_column: int | None
    name_columns: tuple[int, ...]  # joined with spaces; empty: see `companies`
    company_column: int | None
    phone_columns: tuple[int, ...]
    companies: bool = False  # plain table with `name` and no `company`: its rows are companies
    split: str = ""  # several values in one phone cell joined by this


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "utf-16"
    sample = data[:4096]
    if sample.count(0) > len(sample) // 4:
        # ASCII-heavy UTF-16 without a BOM: the high byte of every character is 0.
        order = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
        return data.decode(order, errors="replace"), order
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Windows-1252 leaves 5 bytes undefined; they become U+FFFD rather than fail the file.
        return data.decode("cp1252", errors="replace"), "cp1252"


def layout_of(header: Sequence[str]) -> Layout | None:
    names = [h.strip().lstrip("\ufeff") for h in header]
    lower = [n.lower() for n in names]

    def col(*candidates: str) -> int | None:
        for c in candidates:
            if c.lower() in lower:
                return lower.index(c.lower())
        return None

    def cols(*candidates: str) -> tuple[int, ...]:
        return tuple(i for c in candidates if (i := col(c)) is not None)

    google = tuple(i for i, n in enumerate(names) if _GOOGLE_VALUE.match(n))
    if google:
        full = col("Name")
        return Layout(
            "google",
            None,
            (full,) if full is not None
            else cols("Given Name", "First Name", "Additional Name", "Middle Name",
                      "Family Name", "Last Name"),
            col("Organization 1 - Name", "Organization Name"),
            google,
            split=GOOGLE_SEPARATOR,
        )  # fmt: skip
    phones = tuple(i for i, n in enumerate(names) if _PHONE_COLUMN.search(n))
    if phones and (col("First Name", "Last Name", "Vorname", "Nachname") is not None):
        return Layout(
            "outlook",
            None,
            cols("First Name", "Vorname", "Middle Name", "Weitere Vornamen", "Last Name",
                 "Nachname"),
            col("Company", "Firma"),
            phones,
        )  # fmt: skip
    if col("id") is not None and _PLAIN_NAMES & (set(lower) - {"id"}):
        companies = col("name") is not None and col("company") is None
        named = cols("name") or cols("first_name", "last_name")
        used = {col(n) for n in _PLAIN_NAMES}
        return Layout(
            "plain",
            col("id"),
            () if companies else named,
            col("name") if companies else col("company"),
            tuple(i for i in range(len(names)) if i not in used),
            companies=companies,
        )
    return None


def _dialects(text: str) -> Iterator[type[csv.Dialect] | csv.Dialect]:
    sample = text[:SNIFF_BYTES]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS))
    except csv.Error:
        sniffed = None
    if sniffed is not None:
        yield sniffed
    for delimiter in DELIMITERS:
        if sniffed is None or delimiter != sniffed.delimiter:
            yield _excel(delimiter)


def _excel(delimiter: str) -> type[csv.Dialect]:
    return type("Export", (csv.excel,), {"delimiter": delimiter})


def read_csv(text: str, source: ContactSourceSettings) -> Iterator[ContactRow]:
    """The rows of an Outlook, Google or plain CSV export (lazily); ExportError if it is none of
    them, BrokenExportError while reading if a quoted field runs to the end of the file."""
    for dialect in _dialects(text):
        try:
            header = next(csv.reader(io.StringIO(text), dialect), [])
        except csv.Error:
            continue
        layout = layout_of(header) if len(header) > 1 else None
        if layout is not None:
            return _rows(text, dialect, layout, source)
    first = text.split("\n", 1)[0][:120]
    raise ExportError(
        f"no Outlook, Google or plain (id;name;company;phones) CSV header in the first line "
        f"({first!r})"
    )


def _rows(
    text: str,
    dialect: type[csv.Dialect] | csv.Dialect,
    layout: Layout,
    source: ContactSourceSettings,
) -> Iterator[ContactRow]:
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    try:
        next(reader)
        for n, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue  # a blank line (Excel adds them at the end)
            yield _row(cells, n, layout, source)
    except csv.Error as exc:
        raise BrokenExportError(f"CSV line {reader.line_num}: {exc}") from exc


def _cell(cells: Sequence[str], i: int | None) -> str:
    return cells[i].strip() if i is not None and i < len(cells) else ""


def _row(cells: Sequence[str], n: int, layout: Layout, source: ContactSourceSettings) -> ContactRow:
    record_id = _cell(cells, layout.id_column) if layout.id_column is not None else f"row:{n}"
    name = " ".join(part for i in layout.name_columns if (part := _cell(cells, i)))
    company = _cell(cells, layout.company_column)
    phones: list[str] = []
    for i in layout.phone_columns:
        value = _cell(cells, i)
        if layout.split:
            phones += [v.strip() for v in value.split(layout.split.strip()) if v.strip()]
        elif value:
            phones.append(value)
    return ContactRow(record_id, name, company, tuple(phones), source)
