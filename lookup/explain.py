"""`cti-journal lookup explain`: why a contact field gives these numbers, why a call got that
name. For admins; it prints numbers in full, as they were typed on the command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from cti_journal.lookup.contacts import Contact, ContactRow, Match
from cti_journal.lookup.index import MAX_DIRECT_DIAL_DIGITS, ContactIndex
from cti_journal.lookup.sources.exports import ExportError
from cti_journal.lookup.sources.files import read_contacts
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.arguments import LOOKUP, load_settings
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.fields import ContactNumber
from cti_journal.shared.normalize import NumberNormalizer


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "fields", nargs="*", metavar="FIELD", help="a contact phone field as typed, e.g. "
        "'Tel. 089 123456-21 / 0171 2345678': the numbers it reads into and what is ignored",
    )  # fmt: skip
    parser.add_argument(
        "--call", metavar="NUMBER", help="a journal Rufnummer: the candidates tried and the "
        "record that wins (needs the contacts: -c FILE or --contacts CSV)",
    )  # fmt: skip
    parser.add_argument("--amtsholung", default="", help="the entry's Amtsholung (default empty)")
    parser.add_argument(
        "--direction", choices=("in", "out"), default="in", help="the entry's In_Out (default in)"
    )
    parser.add_argument(
        "--contacts", action="append", default=[], metavar="FILE", help="instead of the "
        "configured sources: a contacts file as a `file` source reads it - vCard, an Outlook "
        "(English or German) or Google CSV export, or a CSV with a header (id; name or "
        "first_name + last_name; company; every other column a phone field; a file with `name` "
        "and no `company` holds companies), any of , ; or tab, UTF-8/16 or Windows-1252; "
        "repeat for several, the first has the highest priority",
    )  # fmt: skip
    parser.add_argument("--area-code", help="the company's area code (instead of the config's)")
    parser.add_argument("--region", help="the home region, e.g. DE (instead of the config's)")
    parser.add_argument(
        "-c", "--config", default=argparse.SUPPRESS, help="TOML settings (region, area code, "
        "outside prefix, sources)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, LOOKUP).lookup
    if args.area_code is not None:
        settings = replace(settings, area_code=args.area_code.lstrip("0"))
    if args.region:
        settings = replace(settings, region=args.region.upper())
    if not args.fields and not args.call:
        raise ConfigError("lookup explain", "give a contact FIELD or --call NUMBER")
    normalizer = NumberNormalizer.from_settings(settings)
    area = f"0{settings.area_code.lstrip('0')}" if settings.area_code else "none"
    print(
        f"(region {settings.region}, area code {area}, outside prefix {settings.outside_prefix!r})"
    )
    for field in args.fields:
        for line in explain_field(normalizer, field):
            print(line)
    if args.call:
        index = _index(settings, normalizer, args.contacts)
        for line in explain_call(index, args.call, args.amtsholung, args.direction == "in"):
            print(line)
    return 0


# -- a contact field ----------------------------------------------------------------------------


def explain_field(normalizer: NumberNormalizer, field: str) -> list[str]:
    reading = normalizer.read(field)
    lines = [f"field {field!r}:"]
    for number in reading.numbers:
        lines.append(f"  {number!s:<22} {_meaning(number)}")
    for piece, why in reading.ignored:
        lines.append(f"  ignored {piece!r}: {why}")
    if not reading.numbers:
        why = (
            "refused whole" if reading.refused
            else "two readings: no key (cti-journal check counts these)" if reading.ambiguous
            else "this field finds no call"
        )  # fmt: skip
        lines.append(f"  → no number: {why}")
    return lines


def _meaning(number: ContactNumber) -> str:
    if number.marked and number.extension != "0":
        return (
            f"a switchboard on extension {number.extension} (the field says so): on a company "
            f"record key +{number.key}; on a person no key; base +{number.base}"
        )
    if not number.extension:
        return (
            f"a number: key +{number.key}; a person's own, or on a company record (company, no "
            "name) the company's main number and a switchboard base"
        )
    if number.switchboard:
        return (
            f"a switchboard: on a company record keys +{number.key} and +{number.key}0; on a "
            f"person no key (a person does not take the company's calls); base +{number.base}"
        )
    line = f"direct dial {number.extension} of the base +{number.base}: "
    if number.key:
        return line + f"key +{number.key} (its record's own); the base is the company's"
    return line + "base + extension is no possible number in its country: no key"


# -- a call -------------------------------------------------------------------------------------


def explain_call(index: ContactIndex, rufnummer: str, amtsholung: str, incoming: bool) -> list[str]:
    normalizer = index.normalizer
    direction = "incoming" if incoming else "outgoing"
    prefix = amtsholung or ("" if incoming else normalizer.outside_prefix)
    why = (
        "the entry's Amtsholung" if amtsholung
        else "none: an incoming number without Amtsholung carries none" if incoming
        else "lookup.outside_prefix (Amtsholung empty)"
    )  # fmt: skip
    lines = [f"call {rufnummer!r} ({direction}, Amtsholung {amtsholung!r})"]
    lines.append(f"  outside prefix {prefix!r}: {why}")
    number = normalizer.journal(rufnummer, amtsholung, incoming=incoming)
    if number is None:
        lines.append("  → not looked up: empty, suppressed (anonym, unknown…) or not a number")
        return lines
    if number.extension:
        contacts = index.extension(number.extension)
        lines.append(f"  an internal extension {number.extension}: internal sources only")
        return lines + _ranked(contacts) + _result(index.find(rufnummer, amtsholung))
    lines.append("  candidates, in order: " + ", ".join(f"+{k}" for k in number.keys))
    for key in number.keys:
        contacts = index.exact(key)
        lines.append(f"  exact +{key}: " + (f"{len(contacts)} record(s)" if contacts else "none"))
        if contacts and not index.decided(key):
            lines += _ranked(contacts, winner=False)
            lines.append(
                "    several persons claim this number and nothing decides (not a mobile, no "
                "company record's direct dial, not one person in several sources): no person "
                "is chosen (lookup.tie_break = none); the company owning the block takes the "
                "call, if any"
            )
            lines += _switchboards(index, (key,))
            break
        lines += _ranked(contacts)
        if contacts:
            break
    else:
        lines += _switchboards(index, number.keys)
    return lines + _result(index.find(rufnummer, amtsholung, incoming=incoming))


def _switchboards(index: ContactIndex, keys: tuple[int, ...]) -> list[str]:
    lines = []
    for key in keys:
        found = index.bases_of(key)
        if found is None:
            lines.append(
                f"  switchboard for +{key}: no base (itself or without its last 1–"
                f"{MAX_DIRECT_DIAL_DIGITS} digits)"
            )
            continue
        base, contacts = found
        lines.append(f"  switchboard for +{key}: base +{base}, {len(contacts)} record(s)")
        return lines + _ranked(contacts)
    return lines


def _ranked(contacts: list[Contact], *, winner: bool = True) -> list[str]:
    lines = []
    for i, c in enumerate(contacts):
        kind = "person" if c.name else "company record"
        who = c.name or c.company
        wins = "  ← wins" if i == 0 and winner else ""
        what = f"({kind}, priority {c.priority}){wins}"
        lines.append(f"    {i + 1}. {c.source} id {c.record_id} {who!r} {what}")
    if len(contacts) > 1 and winner:
        lines.append(
            "    order: a company record first for a company's main number; a person first for "
            "a mobile or a company record's direct dial; one person (or company) in several "
            "sources: source priority (lower wins), then the id; counted as ambiguous"
        )
    return lines


def _result(match: Match | None) -> list[str]:
    if match is None:
        return ["  → no match: Name, Firma, DatensatzID stay as they were"]
    c = match.contact
    if match.kind == "undecided":
        return [
            "  → no record: several persons claim the number, nothing decides and no company "
            "owns its block; Name, Firma, DatensatzID stay as they were (counted in "
            "cti_journal_lookup_undecided_total)"
        ]
    if match.undecided:
        return [
            f"  → switchboard match: Firma {c.company!r}, DatensatzID {c.record_id}, table "
            f"{c.label!r}; Name empty: several persons claim the number and nothing decides, "
            "so the company owning its block takes the call (counted in "
            "cti_journal_lookup_undecided_total)"
        ]
    if match.kind == "company":
        return [
            f"  → switchboard match: Firma {c.company!r}, DatensatzID {c.record_id}, table "
            f"{c.label!r}; Name empty (the record is not the caller)"
        ]
    return [
        f"  → hit: Name {c.name!r}, Firma {c.company!r}, DatensatzID {c.record_id}, "
        f"table {c.label!r}" + (" (ambiguous)" if match.ambiguous else "")
    ]


def _index(
    settings: LookupSettings, normalizer: NumberNormalizer, files: list[str]
) -> ContactIndex:
    if files:
        rows = [row for i, path in enumerate(files) for row in _csv_rows(Path(path), 10 * (i + 1))]
        return ContactIndex.build(rows, normalizer, settings.tie_break)
    if not settings.sources:
        raise ConfigError("lookup.sources", "no contact sources: give -c FILE or --contacts CSV")

    def report(source: str, ok: bool, records: int, seconds: float) -> None:
        state = f"{records} records in {seconds:.1f} s" if ok else "FAILED (see the log)"
        print(f"(source {source}: {state})", file=sys.stderr)

    holder = IndexHolder(settings, on_refresh=report)
    holder.refresh_now()
    return holder.current


def _csv_rows(path: Path, priority: int) -> list[ContactRow]:
    """A contacts file read as a `type = "file"` source reads it: vCard, Outlook or Google CSV,
    or a plain table, with its dialect and encoding from the content."""
    source = ContactSourceSettings(
        name=path.stem, type="file", path=str(path), label=path.stem, priority=priority
    )
    try:
        return read_contacts(path.read_bytes(), source)
    except OSError as exc:
        raise ConfigError("--contacts", f"cannot read {path}: {exc.strerror}") from exc
    except ExportError as exc:
        raise ConfigError("--contacts", f"{path}: {exc}") from exc
