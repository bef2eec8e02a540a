"""Fill the look-up fields of one entry from a contact index: a pure function."""

from __future__ import annotations

from typing import Protocol

from cti_journal.lookup.contacts import Match
from cti_journal.shared.message import JournalEntry, Lookup


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
