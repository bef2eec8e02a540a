"""Fill the look-up fields of one entry from a contact index: a pure function."""

from __future__ import annotations

from typing import Final, Protocol

from cti_journal.lookup.contacts import Match
from cti_journal.shared.message import EntryFields, JournalEntry, Lookup

# A journal number longer than this is no phone number (E.164: 15 digits; with separators, an
# outside-line prefix and an extension far less than this). It is passed on as a miss, never
# read: the number reader caches what it read per distinct text, and 16,000 lines of 8 KB
# numbers must not cost 265 MB of cache (issue 20, finding 8).
MAX_NUMBER_CHARS: Final = 64


class Finder(Protocol):
    def find(
        self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False
    ) -> Match | None: ...


def enrich(entry: JournalEntry, index: Finder, *, relookup: bool) -> tuple[JournalEntry, bool]:
    """The entry with Name, Firma, DatensatzID, DatensatzTabelle filled, and whether the match
    was ambiguous. A miss passes the entry on with those fields as they were, and so does a
    number that several persons claim with nothing deciding (no coin flip, issue 16)."""
    entry, match = enrich_match(entry, index, relookup=relookup)
    return entry, match is not None and match.ambiguous


def enrich_match(
    entry: JournalEntry, index: Finder, *, relookup: bool
) -> tuple[JournalEntry, Match | None]:
    """`enrich`, with the match itself (for the worker's counters)."""
    changes, match = lookup_changes(
        index, entry.rufnummer, entry.amtsholung, entry.in_out, entry.has_contact,
        relookup=relookup,
    )  # fmt: skip
    return entry.evolve(**changes), match


def enrich_fields(data: EntryFields, index: Finder, *, relookup: bool) -> Match | None:
    """`enrich_match` on an entry's decoded fields (shared/message.py `decode_bundle_fields`),
    in place: the worker's way when no rule needs an entry object - the fields it does not
    change pass through without an object being built, derived and encoded. The fields are
    changed only once the look-up succeeded: if it raises, they are the entry as it came."""
    changes, match = lookup_changes(
        index, data.rufnummer, data.amtsholung, data.in_out,
        bool(data.name or data.datensatz_id), relookup=relookup,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(data, name, value)
    return match


def lookup_changes(
    index: Finder, rufnummer: str, amtsholung: str, in_out: str, has_contact: bool, *,
    relookup: bool,
) -> tuple[dict[str, str], Match | None]:  # fmt: skip
    """The fields the look-up sets for an entry with these values, and the match."""
    if has_contact and not relookup:
        return {"lookup": Lookup.PRESET}, None
    if not rufnummer:
        return {"lookup": Lookup.SKIPPED}, None
    if len(rufnummer) + len(amtsholung) > MAX_NUMBER_CHARS:
        return {"lookup": Lookup.PRESET if has_contact else Lookup.MISS}, None
    match = index.find(rufnummer, amtsholung, incoming=in_out == "i")
    if match is None or match.kind == "undecided":
        return {"lookup": Lookup.PRESET if has_contact else Lookup.MISS}, match
    contact = match.contact
    hit = match.kind == "hit"
    return {
        "name": contact.name if hit else "",
        "firma": contact.company,
        "datensatz_id": contact.record_id,
        "datensatz_tabelle": contact.label,
        "lookup": Lookup.HIT if hit else Lookup.COMPANY,
    }, match
