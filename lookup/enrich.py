"""Fill the look-up fields of one entry from a contact index: a pure function."""

from __future__ import annotations

from typing import Final, Protocol

from cti_journal.lookup.contacts import Match
from cti_journal.shared.message import JournalEntry, Lookup

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
    if entry.has_contact and not relookup:
        return entry.evolve(lookup=Lookup.PRESET), None
    if not entry.rufnummer:
        return entry.evolve(lookup=Lookup.SKIPPED), None
    if len(entry.rufnummer) + len(entry.amtsholung) > MAX_NUMBER_CHARS:
        return entry.evolve(lookup=Lookup.PRESET if entry.has_contact else Lookup.MISS), None
    match = index.find(entry.rufnummer, entry.amtsholung, incoming=entry.in_out == "i")
    if match is None or match.kind == "undecided":
        result = Lookup.PRESET if entry.has_contact else Lookup.MISS
        return entry.evolve(lookup=result), match
    contact = match.contact
    return (
        entry.evolve(
            name=contact.name if match.kind == "hit" else "",
            firma=contact.company,
            datensatz_id=contact.record_id,
            datensatz_tabelle=contact.label,
            lookup=Lookup.HIT if match.kind == "hit" else Lookup.COMPANY,
        ),
        match,
    )
