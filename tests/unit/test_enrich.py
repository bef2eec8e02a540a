"""Filling the look-up fields of one entry (lookup/enrich.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import orjson
import pytest

from cti_journal.lookup.contacts import Contact, Match
from cti_journal.lookup.enrich import enrich, enrich_fields, enrich_match
from cti_journal.shared.message import JournalEntry, Lookup, decode_bundle_fields, encode_fields

ENTRY = JournalEntry(
    event_id="e1",
    source="cti",
    received_at=1.0,
    in_out="i",
    zeitpunkt="2026-07-15 14:30:00",
    utc="2026-07-15T12:30:00Z",
    verb_zustand="CONN",
    rufnummer="0891234567",
    amtsholung="0",
    rufdauer_ms=5000,
)
PERSON = Contact("17", "Erika Müller", "ACME GmbH", "Kontakte", "crm", 100)


@dataclass
class FakeIndex:
    match: Match | None
    calls: list[tuple[str, str, bool]] = field(default_factory=list)

    def find(self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False) -> Match | None:
        self.calls.append((rufnummer, amtsholung, incoming))
        return self.match


def test_hit_fills_all_four_fields() -> None:
    index = FakeIndex(Match(PERSON, "hit", ambiguous=False))
    entry, ambiguous = enrich(ENTRY, index, relookup=False)
    assert entry == replace(
        ENTRY,
        name="Erika Müller",
        firma="ACME GmbH",
        datensatz_id="17",
        datensatz_tabelle="Kontakte",
        lookup=Lookup.HIT,
    )
    assert ambiguous is False
    assert index.calls == [("0891234567", "0", True)]


def test_ambiguous_hit_is_reported() -> None:
    _, ambiguous = enrich(ENTRY, FakeIndex(Match(PERSON, "hit", ambiguous=True)), relookup=False)
    assert ambiguous is True


def test_company_match_fills_everything_but_the_name() -> None:
    switchboard = Contact("5", "Zentrale", "ACME GmbH", "Firmen", "crm", 100)
    entry, _ = enrich(ENTRY, FakeIndex(Match(switchboard, "company", False)), relookup=False)
    assert (entry.name, entry.firma, entry.datensatz_id, entry.datensatz_tabelle) == (
        "",
        "ACME GmbH",
        "5",
        "Firmen",
    )
    assert entry.lookup == Lookup.COMPANY


def test_miss_passes_the_entry_on_unchanged() -> None:
    entry, ambiguous = enrich(ENTRY, FakeIndex(None), relookup=False)
    assert entry == replace(ENTRY, lookup=Lookup.MISS)
    assert ambiguous is False


def test_preenriched_entry_passes_without_a_lookup() -> None:
    preset = replace(ENTRY, name="Vom Client", datensatz_id="99", datensatz_tabelle="Outlook")
    index = FakeIndex(Match(PERSON, "hit", False))
    entry, _ = enrich(preset, index, relookup=False)
    assert entry == replace(preset, lookup=Lookup.PRESET)
    assert index.calls == []


def test_relookup_replaces_preset_data_on_a_hit() -> None:
    preset = replace(ENTRY, name="Vom Client", datensatz_id="99")
    entry, _ = enrich(preset, FakeIndex(Match(PERSON, "hit", False)), relookup=True)
    assert (entry.name, entry.datensatz_id, entry.lookup) == ("Erika Müller", "17", Lookup.HIT)


def test_relookup_miss_keeps_the_preset_data() -> None:
    preset = replace(ENTRY, name="Vom Client", datensatz_id="99")
    index = FakeIndex(None)
    entry, _ = enrich(preset, index, relookup=True)
    assert entry == replace(preset, lookup=Lookup.PRESET)
    assert index.calls == [("0891234567", "0", True)]


def test_anonymous_caller_is_skipped() -> None:
    anonymous = replace(ENTRY, rufnummer="")
    index = FakeIndex(Match(PERSON, "hit", False))
    entry, ambiguous = enrich(anonymous, index, relookup=False)
    assert entry == replace(anonymous, lookup=Lookup.SKIPPED)
    assert (ambiguous, index.calls) == (False, [])


def test_the_input_entry_is_not_mutated() -> None:
    before = replace(ENTRY)
    enrich(ENTRY, FakeIndex(Match(PERSON, "hit", False)), relookup=False)
    assert before == ENTRY


def test_an_incoming_call_without_amtsholung_keeps_its_leading_zero() -> None:
    """Vienna calling (0043 1 2345678, no Amtsholung) is not Kiel (0431 2345678) with the
    outside prefix 0 stripped; an outgoing call dialled the same way is."""
    from cti_journal.lookup.contacts import ContactRow
    from cti_journal.lookup.index import ContactIndex
    from cti_journal.shared.config import ContactSourceSettings
    from cti_journal.shared.normalize import NumberNormalizer

    crm = ContactSourceSettings(name="crm", dsn="", table="kontakte", phone_columns=("tel",))
    kiel = ContactRow("1", "Kiel GmbH Empfang", "", ("0431 2345678",), crm)
    index = ContactIndex.build([kiel], NumberNormalizer("DE", "89", "0"))
    incoming = replace(ENTRY, in_out="i", rufnummer="004312345678", amtsholung="")
    outgoing = replace(incoming, in_out="o")
    assert enrich(incoming, index, relookup=False)[0].lookup == Lookup.MISS
    assert enrich(outgoing, index, relookup=False)[0].name == "Kiel GmbH Empfang"


@pytest.mark.parametrize(
    ("changes", "match", "relookup"),
    [
        ({}, Match(PERSON, "hit", ambiguous=True), False),
        ({}, Match(PERSON, "company", ambiguous=False), False),
        ({}, None, False),
        ({"name": "Preset", "datensatz_id": "9"}, Match(PERSON, "hit", ambiguous=False), False),
        ({"name": "Preset"}, Match(PERSON, "hit", ambiguous=False), True),
        ({"datensatz_id": "9"}, None, True),
        ({"rufnummer": ""}, Match(PERSON, "hit", ambiguous=False), False),
        ({"rufnummer": "1" * 70}, Match(PERSON, "hit", ambiguous=False), False),
        ({"in_out": "o", "amtsholung": ""}, Match(PERSON, "hit", ambiguous=False), False),
    ],
)
def test_the_workers_pass_through_of_fields_equals_enrich_match(
    changes: dict[str, str], match: Match | None, relookup: bool
) -> None:
    """The worker enriches decoded fields in place and encodes the dict: the same entry, match
    and index calls as `enrich_match` on the object; entries from a gateway that left out
    optional fields included."""
    entry = ENTRY.evolve(**changes)
    reference = FakeIndex(match)
    expected, expected_match = enrich_match(entry, reference, relookup=relookup)
    for body in (entry.encode(), _without_optional_defaults(entry)):
        data = decode_bundle_fields(body)[0]
        index = FakeIndex(match)
        assert enrich_fields(data, index, relookup=relookup) == expected_match
        assert JournalEntry.decode(encode_fields([data])) == expected
        assert index.calls == reference.calls


def _without_optional_defaults(entry: JournalEntry) -> bytes:
    data = orjson.loads(entry.encode())
    defaults = {"name": "", "firma": "", "datensatz_id": "", "lookup": Lookup.PENDING}
    return orjson.dumps({k: v for k, v in data.items() if defaults.get(k, object()) != v})
