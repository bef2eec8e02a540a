"""The carddav source against a real Radicale (tests/support/radicale.py): https with a test CA,
basic auth, discovery, full load, sync-collection changes, a refused sync-token."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from cti_journal.lookup.sources.base import SourceRefusedError, SourceUnavailableError
from cti_journal.lookup.sources.carddav import CardDavContactSource, _multistatus
from cti_journal.lookup.sources.factory import make_source
from cti_journal.shared.config import ContactSourceSettings
from tests.corpus.sources.loader import load_world
from tests.support.radicale import PASSWORD, USER, Radicale

CORPUS_CARDS = 13


def settings(server: Radicale, url: str, **changes: object) -> ContactSourceSettings:
    base = ContactSourceSettings(
        name="nextcloud",
        type="carddav",
        url=url,
        username=USER,
        password=PASSWORD,
        ca_file=str(server.ca_file),
        timeout_s=10.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def card(uid: str, name: str, tel: str) -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{name}", f"TEL;TYPE=WORK:{tel}"]
    return "\r\n".join([*lines, "END:VCARD", ""])


def test_full_load_of_the_corpus_book(radicale: Radicale) -> None:
    source = make_source(settings(radicale, radicale.book_url("contacts")))
    assert isinstance(source, CardDavContactSource)
    rows = {row.record_id: row for row in source.full_load()}
    world = load_world()
    expected = {p.records["nextcloud"] for p in world.persons if "nextcloud" in p.records}
    assert set(rows) == expected and len(rows) == CORPUS_CARDS
    berger = rows["urn:uuid:017f9ee6-725e-409d-ba05-62d56abd685a"]
    assert (berger.name, berger.company) == ("Johanna Berger", "Huber Maschinenbau GmbH")
    assert berger.phones[0] == "+49 89 4711-215"  # tel: URI with ;ext=
    assert source.token and source.skipped_cards == 0


@pytest.mark.parametrize("where", ["root", "principal"])
def test_discovery_from_the_account(radicale: Radicale, where: str) -> None:
    """From the server root or the principal: current-user-principal → addressbook-home-set →
    every address book of the account."""
    radicale.make_book("second", {"x.vcf": card("disc-1", "Second Book", "+49 89 7000001")})
    url = radicale.root if where == "root" else f"{radicale.root}{USER}/"
    source = make_source(settings(radicale, url))
    ids = {row.record_id for row in source.full_load()}
    assert "disc-1" in ids and "urn:uuid:017f9ee6-725e-409d-ba05-62d56abd685a" in ids
    assert len(json.loads(source.token or "{}")) >= 2  # one sync-token per address book


def test_changes_by_sync_token(radicale: Radicale) -> None:
    book = f"sync-{uuid.uuid4().hex[:6]}"
    url = radicale.make_book(book)
    for i in range(3):
        assert radicale.put(book, f"c{i}.vcf", card(f"s{i}", f"Person {i}", f"+49 89 600000{i}"))
    source = make_source(settings(radicale, url))
    assert {row.record_id for row in source.full_load()} == {"s0", "s1", "s2"}
    token = source.token
    assert source.changes(token).upserts == []  # nothing changed

    radicale.put(book, "c1.vcf", card("s1", "Person One", "+49 89 6000011"))  # changed
    radicale.delete(book, "c2.vcf")  # deleted
    radicale.put(book, "c3.vcf", card("s3", "Person 3", "+49 89 6000003"))  # added
    changes = source.changes(token)
    assert {(r.record_id, r.name, r.phones) for r in changes.upserts} == {
        ("s1", "Person One", ("+49 89 6000011",)),
        ("s3", "Person 3", ("+49 89 6000003",)),
    }
    assert changes.deletions == ["s2"]
    assert changes.token and changes.token != token
    assert source.changes(changes.token).upserts == []


def test_refused_token_leads_to_a_full_load(radicale: Radicale) -> None:
    book = f"refused-{uuid.uuid4().hex[:6]}"
    url = radicale.make_book(book)
    radicale.put(book, "a.vcf", card("r-a", "A", "+49 89 6100001"))
    radicale.put(book, "b.vcf", card("r-b", "B", "+49 89 6100002"))
    source = make_source(settings(radicale, url))
    list(source.full_load())
    radicale.delete(book, "b.vcf")
    # A token the server does not know (expired, or the book was recreated): 403 valid-sync-token.
    stale = json.dumps({url: "http://radicale.org/ns/sync/" + "0" * 64})
    changes = source.changes(stale)
    assert [r.record_id for r in changes.upserts] == ["r-a"]
    assert changes.deletions == ["r-b"]  # the full load shows what is gone
    assert changes.token and changes.token != stale


def test_wrong_password_is_refused(radicale: Radicale) -> None:
    s = settings(radicale, radicale.book_url(), password="not-it")
    with pytest.raises(SourceRefusedError, match="HTTP 401") as info:
        list(make_source(s).full_load())
    assert str(info.value).startswith("source nextcloud (https://127.0.0.1:")
    assert "not-it" not in str(info.value)


def test_unknown_address_book(radicale: Radicale) -> None:
    s = settings(radicale, f"{radicale.root}{USER}/no-such-book/")
    with pytest.raises(SourceRefusedError):
        list(make_source(s).full_load())


def test_untrusted_certificate(radicale: Radicale) -> None:
    s = settings(radicale, radicale.book_url(), ca_file="")
    with pytest.raises(SourceUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        list(make_source(s).full_load())


def test_server_down(radicale: Radicale) -> None:
    from tests.support.harness import free_port

    s = settings(radicale, f"https://127.0.0.1:{free_port()}/cti/contacts/", timeout_s=2.0)
    with pytest.raises(SourceUnavailableError, match="source nextcloud"):
        list(make_source(s).full_load())


def test_xml_with_a_dtd_is_refused() -> None:
    """An entity-expansion bomb in a reply: defusedxml refuses the DTD instead of expanding."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>&b;</d:href></d:response>'
        b"</d:multistatus>"
    )
    import io

    with pytest.raises(SourceUnavailableError, match="DTDForbidden"):
        list(_multistatus(io.BytesIO(bomb), "source x", None))
