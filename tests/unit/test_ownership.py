"""Who owns a number several records list (issue 16, "no coin-flip owners"): with the default
`lookup.tie_break = "none"` no person is chosen where nothing in the data decides; the company
that owns the block takes the call, else no record does. `lowest_id` keeps the old rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_journal.cli.main import main
from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.enrich import enrich, enrich_match
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.worker import count_match
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.normalize import NumberNormalizer

NORMALIZER = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
CRM = ContactSourceSettings(name="crm", dsn="", table="kontakte", priority=10)
ERP = ContactSourceSettings(name="erp", dsn="", table="kunden", priority=20)
INTERN = ContactSourceSettings(name="intern", dsn="", table="tel", priority=5, internal=True)


def row(src: ContactSourceSettings, rid: str, name: str, company: str, *phones: str) -> ContactRow:
    return ContactRow(rid, name, company, phones, src)


def answer(index: ContactIndex, number: str) -> tuple[str, str, str] | None:
    match = index.find(number)
    if match is None:
        return None
    return match.kind, match.contact.record_id, match.contact.name


def test_the_default_is_none() -> None:
    assert LookupSettings().tie_break == "none"


def test_two_persons_on_a_team_line_give_the_company_owning_the_block() -> None:
    rows = [
        row(CRM, "1", "Anna Abel", "Hofmann AG", "069 4507-85 (Sekretariat)"),
        row(CRM, "2", "Bert Bauer", "Hofmann AG", "069 4507-85 (Sekretariat)"),
        row(ERP, "9", "", "Hofmann AG", "069 4507-0"),
    ]
    index = ContactIndex.build(rows, NORMALIZER)
    assert answer(index, "069450785") == ("company", "9", "")
    match = index.find("069450785")
    assert match is not None and match.undecided and match.ambiguous


def test_two_persons_sharing_a_number_and_no_company_give_no_record() -> None:
    rows = [
        row(CRM, "1", "Anna Abel", "", "089 7145264"),
        row(CRM, "2", "Bert Bauer", "", "089 714 52 64"),
    ]
    index = ContactIndex.build(rows, NORMALIZER)
    match = index.find("0897145264")
    assert match is not None and (match.kind, match.undecided) == ("undecided", True)
    entry = JournalEntry("e1", "t", 0.0, "i", "2026-01-01 00:00:00", "x", "", "0897145264")
    enriched, ambiguous = enrich(entry, index, relookup=False)
    assert (enriched.lookup, enriched.name, enriched.datensatz_id) == (Lookup.MISS, "", "")
    assert ambiguous


def test_the_old_coin_flip_only_by_explicit_setting() -> None:
    rows = [
        row(CRM, "1", "Anna Abel", "", "089 7145264"),
        row(CRM, "2", "Bert Bauer", "", "089 7145264"),
    ]
    assert answer(ContactIndex.build(rows, NORMALIZER, "lowest_id"), "0897145264") == (
        "hit",
        "1",
        "Anna Abel",
    )
    assert answer(ContactIndex.build(rows, NORMALIZER, "highest_id"), "0897145264") == (
        "hit",
        "2",
        "Bert Bauer",
    )


def test_a_direct_dial_on_a_person_and_on_the_company_record_is_the_persons() -> None:
    # the ERP lists the contact's direct dial on the company record, the CRM on the person;
    # the company record's source even has the better priority
    erp = ContactSourceSettings(name="erp", dsn="", table="kunden", priority=1)
    rows = [
        row(erp, "9", "", "Werner KG", "069 6052-0", "Ansprechpartner Hr. Kunz: 069 6052-57"),
        row(CRM, "4", "Karl Kunz", "Werner KG", "069 6052-57"),
    ]
    index = ContactIndex.build(rows, NORMALIZER)
    assert answer(index, "069605257") == ("hit", "4", "Karl Kunz")
    assert answer(index, "06960520") == ("hit", "9", "")  # the switchboard stays the company's


def test_the_companys_main_number_listed_by_a_person_is_the_companys() -> None:
    rows = [
        row(CRM, "4", "Karl Kunz", "Werner KG", "069 605200"),
        row(ERP, "9", "", "Werner KG", "069 605200"),
    ]
    assert answer(ContactIndex.build(rows, NORMALIZER), "069605200") == ("hit", "9", "")


def test_one_person_in_two_sources_is_one_person() -> None:
    rows = [
        row(ERP, "77", "Karl  Kunz", "", "0171 2345678"),
        row(CRM, "4", "Karl Kunz", "", "+49 171 2345678"),
    ]
    match = ContactIndex.build(rows, NORMALIZER).find("01712345678")
    assert match is not None
    assert (match.kind, match.contact.record_id, match.undecided) == ("hit", "4", False)


def test_a_mobile_on_a_person_and_a_company_record_is_the_persons() -> None:
    rows = [
        row(ERP, "9", "", "Kunz Einmann", "0171 2345678"),
        row(CRM, "4", "Karl Kunz", "Kunz Einmann", "0171 2345678"),
    ]
    assert answer(ContactIndex.build(rows, NORMALIZER), "01712345678") == ("hit", "4", "Karl Kunz")


def test_two_persons_on_one_internal_extension_give_no_record() -> None:
    rows = [row(INTERN, "1", "Anna", "", "App. 212"), row(INTERN, "2", "Bert", "", "212")]
    match = ContactIndex.build(rows, NORMALIZER).find("212")
    assert match is not None and match.kind == "undecided"


def test_a_base_two_companies_claim_is_nobodys() -> None:
    rows = [
        row(ERP, "8", "", "Alpha GmbH", "089 4523180-0"),
        row(ERP, "9", "", "Beta GmbH", "089 4523180-0"),
    ]
    index = ContactIndex.build(rows, NORMALIZER)
    match = index.find("089452318077")  # a direct dial nobody lists
    assert match is not None and match.kind == "undecided"


def test_the_worker_counts_undecided_calls() -> None:
    metrics = make_metrics()
    rows = [row(CRM, "1", "Anna", "", "089 7145264"), row(CRM, "2", "Bert", "", "089 7145264")]
    index = ContactIndex.build(rows, NORMALIZER)
    for number in ("0897145264", "0897145264", "0891111111"):
        entry = JournalEntry("e1", "t", 0.0, "i", "2026-01-01 00:00:00", "x", "", number)
        count_match(metrics, enrich_match(entry, index, relookup=False)[1])
    registry = metrics.registry
    assert registry.get_sample_value("cti_journal_lookup_undecided_total") == 2.0
    assert registry.get_sample_value("cti_journal_lookup_ambiguous_total") == 2.0


def test_explain_shows_the_candidates_and_why_none_won(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    persons = tmp_path / "crm.csv"
    persons.write_text(
        "id,first_name,last_name,company,phone\n"
        "1,Anna,Abel,Hofmann AG,069 4507-85\n"
        "2,Bert,Bauer,Hofmann AG,069 4507-85\n",
        encoding="utf-8",
    )
    companies = tmp_path / "erp.csv"
    companies.write_text("id,name,phone\n9,Hofmann AG,069 4507-0\n", encoding="utf-8")
    args = ["lookup", "explain", "--area-code", "089", "--contacts", str(persons)]
    assert main([*args, "--contacts", str(companies), "--call", "069450785"]) == 0
    out = capsys.readouterr().out
    assert "1. crm id 1 'Anna Abel'" in out and "2. crm id 2 'Bert Bauer'" in out
    assert "← wins" not in out.split("switchboard for")[0]
    assert "nothing decides" in out
    assert "→ switchboard match: Firma 'Hofmann AG', DatensatzID 9" in out
    assert "several persons claim the number" in out


def test_a_record_id_of_superscript_digits_ranks_without_an_exception() -> None:
    rows = [row(CRM, "²", "Anna", "", "089 7145264"), row(CRM, "3", "Bert", "", "089 7145264")]
    assert answer(ContactIndex.build(rows, NORMALIZER, "lowest_id"), "0897145264") == (
        "hit",
        "3",
        "Bert",
    )


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Berger, Johanna", "Johanna Berger", True),  # AD's `Family, Given`
        ("Jon. Hofmann", "Jonas Hofmann", True),  # an abbreviation
        ("J. Hofmann", "Jonas Hofmann", True),
        ("Hans Müller", "Petra Müller", False),  # a family sharing a home number
        ("Anna Abel", "Anna Abel-Bauer", False),
    ],
)
def test_one_person_written_two_ways_is_one_person(a: str, b: str, same: bool) -> None:
    rows = [row(CRM, "1", a, "", "089 7145264"), row(ERP, "2", b, "", "089 7145264")]
    match = ContactIndex.build(rows, NORMALIZER).find("0897145264")
    assert match is not None
    assert (match.kind == "hit", match.contact.record_id if same else "") == (
        same,
        "1" if same else "",
    )
