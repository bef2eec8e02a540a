"""The http contact source against a CRM stand-in on loopback (tests/support/crm.py, a real
HTTP server): paging by next link and by page number, updated_since, 429 with Retry-After, 500,
a reply slower than the time-out, a reply that is not JSON, a refused token; whatever fails,
the last complete part of the index stays in service. And the per-call query: a slow CRM costs
a message at most query_timeout_s, and then nothing while it stays slow."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cti_journal.lookup.main import load_contacts
from cti_journal.lookup.sources.base import (
    FULL_RELOAD_EVERY,
    SourceRefusedError,
    SourceUnavailableError,
)
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.lookup.sources.http import HttpContactSource
from cti_journal.lookup.sources.query import CallQueries
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.loader import load_settings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.normalize import NumberNormalizer
from tests.corpus.sources.loader import load_world
from tests.support.crm import Crm, Fault, running_crm

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "sources"


@pytest.fixture
def crm() -> Iterator[Crm]:
    with running_crm() as server:
        server.add("1", "Anna", "Alt", "ACME GmbH", ["089 111111"], "2026-11-01T08:00:00Z")
        server.add("2", "Bert", "Berg", None, ["+49 89 222222"], "2026-11-02T08:00:00Z")
        server.add("3", "Cora", "Cruz", None, ["0171 3333333"], "2026-11-03T08:00:00Z")
        yield server


def crm_settings(crm: Crm, **changes: Any) -> ContactSourceSettings:
    base = ContactSourceSettings(
        name="crm",
        type="http",
        url=crm.url,
        token=crm.token,
        first_name_path="attributes.name.first",
        last_name_path="attributes.name.last",
        company_path="attributes.company.name",
        phone_paths=("attributes.phones[*].number",),
        updated_path="attributes.updated_at",
        timeout_s=1.0,
    )
    return replace(base, **changes)


LOOKUP = LookupSettings(area_code="89", refresh_s=3600)


def holder_of(settings: ContactSourceSettings) -> tuple[IndexHolder, list[tuple[str, bool]]]:
    reports: list[tuple[str, bool]] = []
    holder = IndexHolder(
        LOOKUP,
        lambda name, ok, _records, _s: reports.append((name, ok)),
        sources=[HttpContactSource(settings)],
    )
    return holder, reports


def name_of(holder: IndexHolder, number: str) -> str | None:
    match = holder.current.find(number)
    return None if match is None else match.contact.name


def test_pages_by_next_link_and_reads_every_record(crm: Crm) -> None:
    rows = HttpContactSource(crm_settings(crm)).full_load()
    assert [(r.record_id, r.name, r.company, r.phones) for r in rows] == [
        ("1", "Anna Alt", "ACME GmbH", ("089 111111",)),
        ("2", "Bert Berg", "", ("+49 89 222222",)),
        ("3", "Cora Cruz", "", ("0171 3333333",)),
    ]
    assert [r.split("?")[-1] for r in crm.requests] == ["/api/contacts", "page=2"]


def test_pages_by_page_number_until_a_page_is_empty(crm: Crm) -> None:
    source = HttpContactSource(crm_settings(crm, page_param="page", next_path=""))
    assert len(source.full_load()) == 3
    assert [r.split("?")[-1] for r in crm.requests] == ["page=1", "page=2", "page=3"]


def test_the_corpus_crm_records_map_onto_their_numbers() -> None:
    """The issue-15 corpus's CRM pages (JSON:API-like, written without reading the reader)."""
    normalizer = NumberNormalizer.from_settings(LOOKUP)
    with running_crm() as server:
        for page in ("crm_page1.json", "crm_page2.json"):
            server.contacts += json.loads((CORPUS / page).read_text(encoding="utf-8"))["data"]
        rows = {r.record_id: r for r in HttpContactSource(crm_settings(server)).full_load()}
    expected = {p.records["crm"]: p for p in load_world().persons if "crm" in p.records}
    assert set(rows) == set(expected)
    for record_id, person in expected.items():
        keys = {f"+{n.key}" for f in rows[record_id].phones for n in normalizer.contact_numbers(f)}
        assert keys == set(person.phones_per_source["crm"]), record_id
        assert rows[record_id].name == f"{person.given} {person.family}"


def test_updated_since_reads_only_changes_and_a_full_read_sees_deletions(crm: Crm) -> None:
    holder, _reports = holder_of(crm_settings(crm))
    holder.start()
    try:
        crm.requests.clear()
        crm.add("2", "Bert", "Umgezogen", None, ["089 444444"], "2026-11-05T08:00:00Z")
        crm.remove("3")
        holder.refresh_now()
        assert crm.requests == ["/api/contacts?updated_since=2026-11-03T08%3A00%3A00Z"]
        assert name_of(holder, "089444444") == "Bert Umgezogen"
        assert name_of(holder, "089222222") is None
        assert name_of(holder, "01713333333") == "Cora Cruz"  # deletions need a full read
        for _ in range(FULL_RELOAD_EVERY - 1):
            holder.refresh_now()
        assert name_of(holder, "01713333333") is None
        assert name_of(holder, "089111111") == "Anna Alt"
    finally:
        holder.stop()


def test_429_waits_for_retry_after_and_then_reads(crm: Crm) -> None:
    crm.faults = [Fault(200), Fault(429, retry_after="1")]
    started = time.monotonic()
    rows = HttpContactSource(crm_settings(crm)).full_load()
    assert len(rows) == 3
    assert time.monotonic() - started >= 1.0
    assert len(crm.requests) == 3  # page 1, page 2 refused, page 2 again


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param([Fault(200), *[Fault(500)] * 4], id="500 on every attempt"),
        pytest.param([Fault(200), Fault(delay_s=2.5)], id="slower than timeout_s"),
        pytest.param([Fault(200), Fault(body=b'{"data": [')], id="bad JSON"),
    ],
)
def test_a_failing_page_keeps_the_last_complete_index(crm: Crm, fault: list[Fault]) -> None:
    holder, reports = holder_of(crm_settings(crm, updated_path=""))
    holder.start()
    try:
        good = holder.current
        crm.add("4", "Dora", "Neu", None, ["089 555555"], "2026-11-06T08:00:00Z")
        crm.remove("1")
        crm.faults = list(fault)
        holder.refresh_now()
        # Page 1 (with the change) was read, page 2 failed: nothing of the read is in service.
        assert holder.current is good
        assert name_of(holder, "089111111") == "Anna Alt"
        assert name_of(holder, "089555555") is None
        assert reports[-1] == ("crm", False)
        holder.refresh_now()
        assert name_of(holder, "089555555") == "Dora Neu"
        assert name_of(holder, "089111111") is None
        assert reports[-1] == ("crm", True)
    finally:
        holder.stop()


def test_redirects_are_followed_only_within_the_origin(crm: Crm) -> None:
    """urllib would send the token on to wherever a redirect points."""
    moved = crm_settings(crm, url=crm.url.replace("/api/contacts", "/api/old"))
    assert len(HttpContactSource(moved).full_load()) == 3
    crm.requests.clear()
    away = crm_settings(crm, url=crm.url.replace("/api/contacts", "/api/elsewhere"))
    with pytest.raises(SourceRefusedError, match="HTTP 302: a redirect to another host"):
        HttpContactSource(away).full_load()
    assert crm.requests == ["/api/elsewhere"]  # the token never went to `localhost`


def test_a_refused_token_stops_the_start_naming_the_source(crm: Crm) -> None:
    holder, _ = holder_of(crm_settings(crm, token="wrong", url=crm.url + "?api_key=hidden42"))
    with pytest.raises(ConfigError) as caught:
        load_contacts(holder, threading.Event())
    message = str(caught.value)
    assert "source crm (http://127.0.0.1" in message and "HTTP 401" in message
    assert "hidden42" not in message and "api_key=***" in message


def test_a_down_crm_is_waited_for_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with running_crm() as server:
        settings = crm_settings(server)
    holder, _ = holder_of(settings)  # the server is gone: connection refused
    with pytest.raises(SourceUnavailableError, match=r"source crm \(http://127.0.0.1:\d+/api"):
        holder.start()


def test_token_from_a_file(tmp_path: Path, crm: Crm) -> None:
    (tmp_path / "token").write_text(crm.token + "\n", encoding="utf-8")
    (tmp_path / "token").chmod(0o600)  # a secret file open to others is refused
    config = tmp_path / "cti.toml"
    config.write_text(
        f'[[lookup.sources]]\nname = "crm"\ntype = "http"\nurl = "{crm.url}"\n'
        f'token_file = "{tmp_path / "token"}"\nname_path = "attributes.name.last"\n'
        'phone_paths = ["attributes.phones[*].number"]\n',
        encoding="utf-8",
    )
    (source,) = load_settings(config, {}).lookup.sources
    assert len(HttpContactSource(source).full_load()) == 3


# -- per-call query ----------------------------------------------------------------------------


def entry(number: str, event: str = "e1") -> JournalEntry:
    return JournalEntry(
        event_id=event,
        source="cti",
        received_at=0.0,
        in_out="i",
        zeitpunkt="2026-11-10 10:00:00",
        utc="2026-11-10T09:00:00Z",
        verb_zustand="CONN",
        rufnummer=number,
    )


def queries_of(crm: Crm, timeout_s: float = 0.3) -> CallQueries:
    settings = crm_settings(
        crm,
        url="",
        updated_path="",
        query_url=f"http://127.0.0.1:{crm.port}/api/search?phone={{number}}",
        query_timeout_s=timeout_s,
        timeout_s=5.0,  # the request itself: a late answer still fills the cache
        records_path="data[*]",
    )
    return CallQueries(replace(LOOKUP, sources=(settings,)))


def test_a_query_finds_what_the_index_does_not_and_caches_it(crm: Crm) -> None:
    queries = queries_of(crm, timeout_s=1.0)
    empty = IndexHolder(LOOKUP, sources=[]).current
    try:
        finder = queries.finder(empty, [entry("089222222")], relookup=False)
        match = finder.find("089222222", incoming=True)
        assert match is not None and (match.contact.name, match.contact.source) == (
            "Bert Berg",
            "crm",
        )
        assert crm.requests == ["/api/search?phone=%2B4989222222"]
        queries.finder(empty, [entry("089222222")], relookup=False)
        assert len(crm.requests) == 1  # cached
        assert (
            queries.finder(empty, [entry("089999999")], relookup=False).find(
                "089999999", incoming=True
            )
            is None
        )
    finally:
        queries.close()


def test_a_slow_crm_costs_a_message_at_most_the_timeout_then_nothing(
    crm: Crm, caplog: pytest.LogCaptureFixture
) -> None:
    crm.query_delay_s = 1.5
    queries = queries_of(crm, timeout_s=0.3)
    empty = IndexHolder(LOOKUP, sources=[]).current
    caplog.set_level(logging.INFO)
    try:
        started = time.monotonic()
        bundle = [entry("089222222", "a"), entry("089111111", "b"), entry("01713333333", "c")]
        finder = queries.finder(empty, bundle, relookup=False)
        first = time.monotonic() - started
        assert 0.25 <= first < 0.6  # one wait for the whole bundle, not one per entry
        assert finder.find("089222222", incoming=True) is None
        started = time.monotonic()
        for i in range(20):
            queries.finder(empty, [entry(f"08970000{i:02d}")], relookup=False)
        assert time.monotonic() - started < 0.2  # slow: no message waits for it
        (query,) = queries.queries
        assert query.slow and query.stats.late == 3
        # The late answers still arrive and fill the cache.
        deadline = time.monotonic() + 5
        while not query.cached(4989222222)[0]:
            assert time.monotonic() < deadline, "the late answer never reached the cache"
            time.sleep(0.05)
        found = queries.finder(empty, [entry("089222222")], relookup=False)
        match = found.find("089222222", incoming=True)
        assert match is not None and match.contact.name == "Bert Berg"
        for number in ("222222", "111111", "3333333"):
            assert number not in caplog.text  # numbers only masked in the log
    finally:
        queries.close()
