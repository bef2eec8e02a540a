"""One contact world spread across every kind of source (issue 15): the company in the ERP
(ODBC), persons in AD (a real slapd), a Nextcloud address book (a real Radicale over CardDAV),
a vCard export, Outlook (English, German) and Google CSV exports, and a CRM over HTTP (the
loopback stand-in). tests/corpus/sources/ was written from the formats' specifications by an
author who did not read the reader; `calls.tsv` says which record each call must find, by the
priorities in `world.json`. Measured: right records, right company fall-backs, and wrong
contacts (a record other than the expected one, or any where none is expected) — there must be
none of those."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pyodbc
import pytest

from cti_journal.lookup.contacts import Match
from cti_journal.lookup.sources.factory import make_source
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from tests.corpus.sources.loader import Call, load_calls, load_world
from tests.support.crm import Crm, running_crm
from tests.support.radicale import PASSWORD, USER, Radicale
from tests.support.slapd import BASE_DN, READER_DN, READER_PASSWORD, Slapd

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "sources"
WORLD = load_world()
FILES = {
    "export_vcf": "export.vcf",
    "outlook_en": "outlook_en.csv",
    "outlook_de": "outlook_de.csv",
    "google": "google.csv",
}


@pytest.fixture
def crm() -> Iterator[Crm]:
    with running_crm() as server:
        for page in ("crm_page1.json", "crm_page2.json"):
            server.contacts += orjson.loads((CORPUS / page).read_bytes())["data"]
        yield server


def _erp(dsn: str) -> None:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        # The file names its table in a comment; the INSERTs follow.
        conn.execute(
            "CREATE TABLE erp_companies (id INTEGER PRIMARY KEY, name VARCHAR(100), "
            "phone VARCHAR(40), fax VARCHAR(40))"
        )
        for statement in (CORPUS / "erp_companies.sql").read_text(encoding="utf-8").split(";\n"):
            lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
            if "".join(lines).strip():
                conn.execute("\n".join(lines))
    finally:
        conn.close()


def _sources(slapd: Slapd, dsn: str, crm: Crm, radicale: Radicale) -> list[ContactSourceSettings]:
    p = WORLD.priorities
    sources = [
        ContactSourceSettings(
            name="ad", type="ldap", url=slapd.ldaps_url, base_dn=f"OU=Staff,{BASE_DN}",
            bind_dn=READER_DN, password=READER_PASSWORD, ca_file=str(slapd.ca_file),
            priority=p["ad"],
        ),
        ContactSourceSettings(
            name="erp", dsn=dsn, table="erp_companies", company_column="name",
            phone_columns=("phone", "fax"), priority=p["erp"],
        ),
        ContactSourceSettings(
            name="crm", type="http", url=crm.url, token=crm.token,
            first_name_path="attributes.name.first", last_name_path="attributes.name.last",
            company_path="attributes.company.name",
            phone_paths=("attributes.phones[*].number",), priority=p["crm"],
        ),
        ContactSourceSettings(
            name="nextcloud", type="carddav", url=radicale.book_url("contacts"), username=USER,
            password=PASSWORD, ca_file=str(radicale.ca_file), priority=p["nextcloud"],
        ),
    ]  # fmt: skip
    for name, file in FILES.items():
        sources.append(
            ContactSourceSettings(name=name, type="file", path=str(CORPUS / file), priority=p[name])
        )
    return sources


def _verdict(call: Call, match: Match | None) -> str:
    """'right', 'company' (a right fall-back), 'missed' or 'wrong: …'."""
    want = call.expected
    got = (
        "NONE"
        if match is None
        else f"COMPANY:{match.contact.record_id}"
        if match.kind == "company" or (match.contact.source == "erp" and not match.contact.name)
        else f"{match.contact.source}:{match.contact.record_id}"
    )
    if want.kind == "none":
        return "right" if got == "NONE" else f"wrong: {got}"
    if want.kind == "company":
        expected = f"COMPANY:{want.company_id}"
        return "company" if got == expected else "missed" if got == "NONE" else f"wrong: {got}"
    expected = f"{want.source}:{want.record_id}"
    if got == expected:
        return "right"
    same_person = any(
        p.records.get(want.source) == want.record_id
        and got.partition(":")[2] == p.records.get(got.partition(":")[0])
        for p in WORLD.persons
    )
    # The same person from another source is no wrong contact, only the wrong priority.
    return "missed" if got == "NONE" else f"other source: {got}" if same_person else f"wrong: {got}"


def test_every_call_of_the_world_finds_its_record(
    slapd: Slapd, sqlite_dsn: str, crm: Crm, radicale: Radicale
) -> None:
    _erp(sqlite_dsn)
    settings = LookupSettings(
        region=WORLD.region, area_code=WORLD.own_area_code, refresh_s=3600,
        sources=tuple(_sources(slapd, sqlite_dsn, crm, radicale)),
    )  # fmt: skip
    holder = IndexHolder(settings, sources=[make_source(s) for s in settings.sources])
    holder.start()
    try:
        for source in settings.sources:
            assert holder.current.records_of(source.name) > 0, source.name
        verdicts = {}
        for call in load_calls():
            match = holder.current.find(
                call.number, call.amtsholung, incoming=call.direction == "in"
            )
            if match is not None and match.kind == "undecided":
                match = None  # the worker writes no record then (lookup/enrich.py): no coin flip
            verdicts[f"{call.direction} {call.number} ({call.why})"] = _verdict(call, match)
    finally:
        holder.stop()
    counts: dict[str, int] = {}
    for verdict in verdicts.values():
        kind = verdict.split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
    print(f"{len(verdicts)} calls: {counts}")
    others = {k: v for k, v in verdicts.items() if v not in ("right", "company")}
    for k, v in others.items():
        print(f"  {k}: {v}")
    # Every source's records are read to their numbers (tests/unit/test_source_files.py and the
    # type's own tests); what is left are the ownership rules of issue 16 (team lines of two
    # persons, a person's direct dial listed on a company record, a block known only from a
    # direct dial) and one number the corpus writes invalid. They may only get better.
    assert set(others) <= set(KNOWN_OWNERSHIP), {
        k: others[k] for k in set(others) - set(KNOWN_OWNERSHIP)
    }
    assert counts["right"] + counts.get("company", 0) >= len(verdicts) - len(KNOWN_OWNERSHIP)


KNOWN_OWNERSHIP = {
    "in +49894711300 (P04 team)": "two persons' team line in a block: the company's (rule 2)",
    "in 0049893322110 (P16 work)": "a person's direct dial on a company record (rule 1)",
    "in +4989778812 (P19 work)": "a person's direct dial on a company record (rule 1)",
    "in +49893322110 (company 1006's only number, which is P16's own direct dial)": "rule 1",
    "out 077880 (company 1007 switchboard: block known from the hyphen in '089 7788-12')": (
        "a block known from a direct dial on the company record (rule 4)"
    ),
    "out 0089778877 (unknown direct dial in 1007)": "the same block (rule 4)",
    "in 00491518571147 (P36 mobile)": "0151 + 7 digits: no valid German mobile number",
}
