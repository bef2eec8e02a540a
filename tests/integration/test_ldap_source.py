"""The ldap source against a real slapd (tests/support/slapd.py): TLS with a test CA, a
1,000-entry size limit for ordinary users as Active Directory has, more entries than that."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from cti_journal.lookup.sources.base import SourceRefusedError, SourceUnavailableError
from cti_journal.lookup.sources.factory import make_source
from cti_journal.lookup.sources.ldap import LdapContactSource
from cti_journal.shared.config import ContactSourceSettings
from tests.corpus.sources.loader import load_world
from tests.integration.conftest import VOLUME_ENTRIES
from tests.support.slapd import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    BASE_DN,
    LIMITED_DN,
    READER_DN,
    READER_PASSWORD,
    Slapd,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3

SERVICE_ACCOUNTS = 2  # the readers are persons, too
CORPUS_PERSONS = 20


def settings(server: Slapd, **changes: object) -> ContactSourceSettings:
    base = ContactSourceSettings(
        name="ad",
        type="ldap",
        url=server.ldaps_url,
        base_dn=BASE_DN,
        bind_dn=READER_DN,
        password=READER_PASSWORD,
        ca_file=str(server.ca_file),
        timeout_s=10.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def admin(server: Slapd) -> ldap3.Connection:
    tls = ldap3.Tls(ca_certs_file=str(server.ca_file), validate=ssl.CERT_NONE)
    conn = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.ldaps_port, use_ssl=True, tls=tls),
        ADMIN_DN,
        ADMIN_PASSWORD,
    )
    assert conn.bind(), conn.result
    return conn


def test_paged_load_reads_past_the_size_limit(slapd: Slapd) -> None:
    # The limit is real: an unpaged search by the same reader stops at 1,000.
    tls = ldap3.Tls(ca_certs_file=str(slapd.ca_file), validate=ssl.CERT_NONE)
    server = ldap3.Server("127.0.0.1", port=slapd.ldaps_port, use_ssl=True, tls=tls)
    conn = ldap3.Connection(server, READER_DN, READER_PASSWORD, auto_bind=True)
    try:
        conn.search(BASE_DN, "(objectClass=person)", attributes=["cn"])
        assert (len(conn.entries), conn.result["description"]) == (1000, "sizeLimitExceeded")
    finally:
        conn.unbind()

    source = make_source(settings(slapd))
    assert isinstance(source, LdapContactSource)
    rows = list(source.full_load())
    assert len(rows) == VOLUME_ENTRIES + CORPUS_PERSONS + SERVICE_ACCOUNTS
    assert len({row.record_id for row in rows}) == len(rows)
    assert source.token is not None and source.token.startswith("modifyTimestamp:")


def test_corpus_records_ids_names_and_phones(slapd: Slapd) -> None:
    """objectGUID in its registry form equals the entryUUID the corpus gave each person; names
    that LDIF had to base64 come back as text; every AD phone attribute is read."""
    rows = {row.record_id: row for row in make_source(settings(slapd)).full_load()}
    world = load_world()
    in_ad = [p for p in world.persons if "ad" in p.records]
    assert len(in_ad) == CORPUS_PERSONS
    for person in in_ad:
        row = rows[person.records["ad"]]
        assert person.family in row.name
    berger = rows["48f165d5-7b00-47f4-b81e-f86f5c8cc1ab"]
    assert berger.name == "Berger, Johanna"
    assert berger.company == "Huber Maschinenbau GmbH"
    assert set(berger.phones) == {"+49 89 4711-215", "+49 151 70969969", "+49 8171 2303470", "215"}
    huber = rows["b6043106-a85f-48b6-9aa8-b2a668d605d4"]
    assert huber.company == "Kessler & Söhne KG"  # base64 in the LDIF
    assert huber.phones.count("+49 89 55667-372") == 1 and "+49 89 4400551" in huber.phones


def test_mapping_by_settings(slapd: Slapd) -> None:
    s = settings(
        slapd,
        phone_attributes=("mobile",),
        name_attribute="cn",
        company_attribute="o",
        id_attribute="entryUUID",
        filter="(sn=Berger)",
    )
    (row,) = list(make_source(s).full_load())
    assert (row.record_id, row.name, row.phones) == (
        "48f165d5-7b00-47f4-b81e-f86f5c8cc1ab",
        "Johanna Berger",
        ("+49 151 70969969",),
    )


def test_start_tls(slapd: Slapd) -> None:
    s = settings(slapd, url=slapd.ldap_url, start_tls=True, filter="(sn=Berger)")
    assert len(list(make_source(s).full_load())) == 1


def test_plain_bind_is_refused_by_the_server(slapd: Slapd) -> None:
    """Even with allow_plain the server (like a domain controller) refuses a simple bind in the
    clear; the message names the source and server, never the password."""
    s = settings(slapd, url=slapd.ldap_url, allow_plain=True)
    with pytest.raises(SourceRefusedError) as info:
        list(make_source(s).full_load())
    message = str(info.value)
    assert message.startswith(f"source ad (ldap://127.0.0.1:{slapd.ldap_port})")
    assert "confidentialityRequired" in message and READER_PASSWORD not in message


def test_wrong_password_is_refused(slapd: Slapd) -> None:
    with pytest.raises(SourceRefusedError, match="invalidCredentials") as info:
        list(make_source(settings(slapd, password="not-the-password")).full_load())
    assert "not-the-password" not in str(info.value)


def test_untrusted_certificate(slapd: Slapd, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        list(make_source(settings(slapd, ca_file="")).full_load())
    # The right CA but another name than the certificate's (127.0.0.1, localhost).
    other = settings(slapd, url=f"ldaps://127.0.0.2:{slapd.ldaps_port}")
    with pytest.raises(SourceUnavailableError, match="source ad"):
        list(make_source(other).full_load())


def test_size_limit_part_way_is_an_error_not_a_short_index(slapd: Slapd) -> None:
    """A reader whose paged search the server stops after 1,200 entries: the load raises, so the
    holder keeps the last complete part instead of swapping in 1,200 of 1,522."""
    s = settings(slapd, bind_dn=LIMITED_DN)
    source = make_source(s)
    seen = 0
    with pytest.raises(SourceUnavailableError, match="sizeLimitExceeded"):
        for _ in source.full_load():
            seen += 1
    assert 1000 <= seen <= 1200
    assert source.token is None


def test_page_size_over_the_servers_limit_is_an_error(slapd: Slapd) -> None:
    with pytest.raises(SourceUnavailableError, match="adminLimitExceeded"):
        list(make_source(settings(slapd, ldap_page_size=1000 + 1)).full_load())


def test_incremental_refresh_by_modify_timestamp(slapd: Slapd) -> None:
    source = make_source(settings(slapd))
    before = {row.record_id for row in source.full_load()}
    token = source.token
    conn = admin(slapd)
    dn = f"CN=Incremental {uuid.uuid4().hex[:8]},OU=Staff,{BASE_DN}"
    try:
        time.sleep(1.1)  # modifyTimestamp has whole seconds
        assert conn.add(
            dn,
            ["top", "person", "organizationalPerson", "inetOrgPerson"],
            {"sn": "Incremental", "telephoneNumber": "+49 89 5550101"},
        ), conn.result
        changes = source.changes(token)
        (added,) = [row for row in changes.upserts if row.record_id not in before]
        assert added.phones == ("+49 89 5550101",)
        assert all(row.record_id in before or row is added for row in changes.upserts)
        # The corpus entries (modifyTimestamp 2026-11-01) are not read again.
        assert "48f165d5-7b00-47f4-b81e-f86f5c8cc1ab" not in {r.record_id for r in changes.upserts}
        assert changes.deletions == [] and changes.token and changes.token > (token or "")

        time.sleep(1.1)
        assert conn.modify(dn, {"telephoneNumber": [(ldap3.MODIFY_REPLACE, ["+49 89 5550102"])]})
        again = source.changes(changes.token)
        assert [r.phones for r in again.upserts if r.record_id == added.record_id] == [
            ("+49 89 5550102",)
        ]
    finally:
        conn.delete(dn)
        conn.unbind()
    # Deletions show in a full load (the holder makes one every FULL_RELOAD_EVERY refreshes).
    assert not source.deletions
    assert added.record_id not in {row.record_id for row in source.full_load()}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_times_out(slapd: Slapd, silent_server: int) -> None:
    s = settings(slapd, url=f"ldap://127.0.0.1:{silent_server}", allow_plain=True, timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(
        SourceUnavailableError, match=f"source ad \\(ldap://127.0.0.1:{silent_server}"
    ):
        list(make_source(s).full_load())
    assert time.monotonic() - started < 5
