"""The contact index: exact and switchboard matches, ties, internal extensions, refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.base import FULL_RELOAD_EVERY, ChangeSet, SourceUnavailableError
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.lookup.sources.odbc import select_statement
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.normalize import NumberNormalizer

NORMALIZER = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
CRM = ContactSourceSettings(name="crm", dsn="", table="kontakte", priority=10)
ERP = ContactSourceSettings(name="erp", dsn="", table="kunden", label="Kunden", priority=20)
INTERN = ContactSourceSettings(name="intern", dsn="", table="tel", priority=5, internal=True)


def row(
    source: ContactSourceSettings, rid: str, name: str, company: str, *phones: str
) -> ContactRow:
    return ContactRow(rid, name, company, phones, source)


def build(*rows: ContactRow, tie_break: str = "lowest_id") -> ContactIndex:
    return ContactIndex.build(rows, NORMALIZER, tie_break)


def found(index: ContactIndex, number: str, amt: str = "") -> tuple[str, str, str, bool] | None:
    match = index.find(number, amt)
    if match is None:
        return None
    return match.kind, match.contact.source, match.contact.record_id, match.ambiguous


def test_exact_hit_carries_the_record() -> None:
    index = build(row(CRM, "7", "Hans Müller", "ACME GmbH", "+49 (0)89 1234-56"))
    match = index.find("089123456")
    assert match is not None
    assert (match.kind, match.ambiguous) == ("hit", False)
    c = match.contact
    assert (c.record_id, c.name, c.company, c.label, c.source, c.priority) == (
        "7",
        "Hans Müller",
        "ACME GmbH",
        "kontakte",
        "crm",
        10,
    )
    assert len(index) == 1


def test_miss_and_anonymous() -> None:
    index = build(row(CRM, "7", "Hans", "", "089 123456"))
    assert index.find("089 654321") is None
    assert index.find("anonym") is None
    assert index.find("") is None


def test_direct_dial_matches_the_company_record() -> None:
    index = build(
        row(ERP, "1", "", "ACME GmbH", "089 123456-0"),
        row(CRM, "2", "Eva Maier", "ACME GmbH", "089 123456-77"),
    )
    assert found(index, "08912345677") == ("hit", "crm", "2", False)
    assert found(index, "08912345612") == ("company", "erp", "1", False)
    assert found(index, "0891234560") == ("hit", "erp", "1", False)
    # The base itself is the switchboard the record marks: the company's own number.
    assert found(index, "089123456") == ("hit", "erp", "1", False)


def test_plain_number_of_a_company_record_is_a_switchboard() -> None:
    index = build(row(ERP, "1", "", "ACME GmbH", "089 123456"))
    assert found(index, "0891234567") == ("company", "erp", "1", False)


def test_a_marked_switchboard_may_be_short() -> None:
    # Vienna: +43 1 22305-0 marks a base of 8 digits itself.
    index = build(row(ERP, "1", "", "Braun AG", "+43 1 22305-0"))
    assert found(index, "+43122305908") == ("company", "erp", "1", False)
    assert index.find("+4312230") is None


def test_what_never_registers_a_switchboard() -> None:
    index = build(
        row(CRM, "1", "Eva Maier", "ACME GmbH", "089 123456"),  # a person's plain number
        row(ERP, "2", "", "", "089 222222-0"),  # no company
        row(ERP, "3", "", "Mobil GmbH", "0171 2345678"),  # a mobile
        row(ERP, "4", "", "Kurz KG", "089 1234"),  # a plain main number of 8 digits: too short
    )
    assert index.bases == 0
    for number in ("0891234567", "08922222212", "017123456789", "089123412"):
        assert index.find(number) is None


def test_direct_dial_beyond_five_digits_is_no_company_match() -> None:
    index = build(row(ERP, "1", "", "ACME GmbH", "089 123456-0"))
    assert found(index, "08912345612345") == ("company", "erp", "1", False)
    assert index.find("089123456123456") is None


def test_priority_decides_and_flags_ambiguity() -> None:
    index = build(
        row(ERP, "1", "Hans Huber", "", "089 123456"),
        row(CRM, "9", "Hans", "", "089/123456"),
    )
    assert found(index, "089123456") == ("hit", "crm", "9", True)


def test_a_company_records_number_is_the_companys_whatever_the_priorities() -> None:
    """A person whose only number is the switchboard does not take the company's calls."""
    index = build(
        row(ERP, "1", "", "ACME GmbH", "089 123456"),
        row(CRM, "9", "Hans", "ACME GmbH", "089/123456"),
    )
    assert found(index, "089123456") == ("hit", "erp", "1", True)


def test_a_person_listing_a_marked_switchboard_does_not_own_it() -> None:
    index = build(row(CRM, "9", "Hans", "ACME GmbH", "089 123456-0"))
    assert found(index, "089123456") == ("company", "crm", "9", False)
    assert found(index, "0891234560") == ("company", "crm", "9", False)


@pytest.mark.parametrize(("tie_break", "winner"), [("lowest_id", "9"), ("highest_id", "10")])
def test_tie_break_on_ids_numerically(tie_break: str, winner: str) -> None:
    index = build(
        row(CRM, "10", "A", "", "089 123456"),
        row(CRM, "9", "B", "", "089 123456"),
        tie_break=tie_break,
    )
    assert found(index, "089123456") == ("hit", "crm", winner, True)


def test_same_record_twice_is_not_ambiguous() -> None:
    index = build(row(CRM, "1", "A", "", "089 123456", "Fax 089/123456"))
    assert found(index, "089123456") == ("hit", "crm", "1", False)


def test_company_record_wins_a_switchboard_over_a_person_listing_it() -> None:
    index = build(
        row(ERP, "1", "", "ACME GmbH", "089 123456-0"),
        row(CRM, "2", "Eva Maier", "ACME GmbH", "089 123456-77, 089 123456-0"),
    )
    # The person's `-0` makes her no owner and no competitor of the company's number.
    assert found(index, "08912345612") == ("company", "erp", "1", False)
    assert found(index, "0891234560") == ("hit", "erp", "1", False)
    assert found(index, "08912345677") == ("hit", "crm", "2", False)


def test_extensions_only_from_internal_sources() -> None:
    index = build(
        row(INTERN, "1", "Kollegin", "", "App. 123"),
        row(CRM, "2", "Kunde", "", "123", "089 123456"),
    )
    assert found(index, "123") == ("hit", "intern", "1", False)
    assert index.find("124") is None
    assert found(index, "089123456") == ("hit", "crm", "2", False)


def test_pbx_prefix_forms_find_the_same_record() -> None:
    index = build(
        row(CRM, "1", "Wien", "", "+43 1 2345678"),
        row(CRM, "2", "München", "", "1234567"),
    )
    for delivered, amt in [("0043 1 2345678", ""), ("00043 1 2345678", "0"), ("+4312345678", "")]:
        assert found(index, delivered, amt) == ("hit", "crm", "1", False)
    for delivered in ("1234567", "01234567", "0891234567", "00891234567", "+49891234567"):
        assert found(index, delivered) == ("hit", "crm", "2", False)


def test_updated_changes_one_source_only() -> None:
    index = build(
        row(CRM, "1", "Alt", "", "089 111111"),
        row(CRM, "2", "Bleibt", "", "089 222222"),
        row(ERP, "1", "", "ACME GmbH", "089 333333"),
    )
    changed = index.updated(CRM, [row(CRM, "1", "Neu", "", "089 444444")], replace="changed")
    assert changed.find("089111111") is None
    assert found(changed, "089444444") == ("hit", "crm", "1", False)
    assert found(changed, "089222222") == ("hit", "crm", "2", False)
    assert found(changed, "08933333312") == ("company", "erp", "1", False)
    assert found(index, "089111111") == ("hit", "crm", "1", False)  # the old index is untouched

    reloaded = changed.updated(CRM, [row(CRM, "3", "Einzig", "", "089 555555")], replace="all")
    assert reloaded.find("089222222") is None
    assert reloaded.find("089444444") is None
    assert found(reloaded, "089555555") == ("hit", "crm", "3", False)
    assert (reloaded.records_of("crm"), reloaded.records_of("erp")) == (1, 1)


# -- the holder, with in-memory sources ---------------------------------------------------------


class MemorySource:
    """A ContactSource over a list; `fail` makes the next loads raise as a dead database does."""

    def __init__(self, settings: ContactSourceSettings, rows: list[ContactRow]) -> None:
        self._settings = settings
        self.rows = rows
        self.fail = False
        self.loads: list[Any] = []
        self._mark: Any = None

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def settings(self) -> ContactSourceSettings:
        return self._settings

    @property
    def incremental(self) -> bool:
        return bool(self._settings.modified_column)

    @property
    def deletions(self) -> bool:
        return False

    @property
    def token(self) -> str | None:
        return None if self._mark is None else str(self._mark)

    def full_load(self) -> Iterable[ContactRow]:
        return self._load(None)

    def changes(self, token: str | None) -> ChangeSet:
        rows = list(self._load(None if token is None else int(token)))
        return ChangeSet(rows, [], self.token)

    def _load(self, since: Any | None) -> Iterable[ContactRow]:
        self.loads.append(since)
        if self.fail:
            raise SourceUnavailableError(f"source {self._settings.name}: cannot connect")
        rows = list(self._rows(since))
        marks = [r.modified for r in rows if r.modified is not None]
        if marks:
            self._mark = max([self._mark or 0, *marks])  # type: ignore[type-var]
        return rows

    def _rows(self, since: Any | None) -> Iterator[ContactRow]:
        for r in self.rows:
            if since is None or (r.modified is not None and r.modified >= since):  # type: ignore[operator]
                yield r


def test_holder_refresh_keeps_last_good_data_of_a_failing_source() -> None:
    crm = MemorySource(CRM, [row(CRM, "1", "Hans", "", "089 111111")])
    erp = MemorySource(ERP, [row(ERP, "5", "", "ACME GmbH", "089 222222")])
    reports: list[tuple[str, bool, int]] = []
    holder = IndexHolder(
        LookupSettings(area_code="89", refresh_s=3600),
        lambda name, ok, records, _s: reports.append((name, ok, records)),
        sources=[crm, erp],
    )
    holder.start()
    try:
        assert found(holder.current, "089111111") == ("hit", "crm", "1", False)
        crm.rows.append(row(CRM, "2", "Neu", "", "089 333333"))
        erp.fail = True
        reports.clear()
        holder.refresh_now()
        assert found(holder.current, "089333333") == ("hit", "crm", "2", False)
        assert found(holder.current, "08922222212") == ("company", "erp", "5", False)
        assert reports == [("crm", True, 2), ("erp", False, 1)]
    finally:
        holder.stop()


def test_holder_start_fails_clearly() -> None:
    crm = MemorySource(CRM, [])
    crm.fail = True
    holder = IndexHolder(LookupSettings(), sources=[crm])
    with pytest.raises(SourceUnavailableError, match="crm"):
        holder.start()


def test_holder_incremental_refresh_reads_from_the_watermark() -> None:
    settings = ContactSourceSettings(name="crm", dsn="", table="k", modified_column="geaendert")
    source = MemorySource(
        settings,
        [ContactRow("1", "Alt", "", ("089 111111",), settings, modified=5)],
    )
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[source])
    holder.start()
    try:
        source.rows = [
            ContactRow("1", "Umgezogen", "", ("089 444444",), settings, modified=7),
            ContactRow("2", "Neu", "", ("089 555555",), settings, modified=8),
        ]
        holder.refresh_now()
        assert source.loads == [None, 5]
        assert holder.current.find("089111111") is None
        assert found(holder.current, "089444444") == ("hit", "crm", "1", False)
        assert found(holder.current, "089555555") == ("hit", "crm", "2", False)
        holder.refresh_now()
        assert source.loads[-1] == 8
    finally:
        holder.stop()


def test_holder_refreshes_in_the_background() -> None:
    source = MemorySource(CRM, [])
    refreshed = threading.Event()
    holder = IndexHolder(
        LookupSettings(area_code="89", refresh_s=0.05),
        lambda *_: refreshed.set() if len(source.loads) > 1 else None,
        sources=[source],
    )
    holder.start()
    try:
        source.rows = [row(CRM, "1", "Später", "", "089 111111")]
        assert refreshed.wait(5)
        assert found(holder.current, "089111111") == ("hit", "crm", "1", False)
    finally:
        holder.stop()


def test_select_statement_quotes_configured_identifiers() -> None:
    settings = ContactSourceSettings(
        name="crm",
        dsn="",
        table="dbo.Kontakte",
        id_column="ID",
        first_name_column="Vorname",
        last_name_column='Nach"name',
        company_column="Firma",
        phone_columns=("Telefon", "Mobil"),
        modified_column="Geändert",
    )
    sql, params = select_statement(settings, '"', since=None)
    assert sql == (
        'SELECT "ID", "Vorname", "Nach""name", "Firma", "Telefon", "Mobil", "Geändert" '
        'FROM "dbo"."Kontakte"'
    )
    assert params == ()
    sql, params = select_statement(settings, "`", since=42)
    assert sql.endswith("WHERE `Geändert` >= ?") and params == (42,)


def test_key_map_groups_do_not_depend_on_the_order_pairs_arrive_in() -> None:
    """The key map takes (key, record) pairs unsorted: a key met again becomes a group, the same
    record twice stays one record, and a group is ranked whatever order its pairs came in."""
    from array import array

    from cti_journal.lookup.index import _KeyMap

    pairs = [(4989123456, 3), (4930111222, 1), (4989123456, 1), (4989123456, 3),
             (4940555666, 2), (4940555666, 2), (4989123456, 2)]  # fmt: skip
    seen: list[list[int]] = []

    def rank(_key: int, recs: list[int]) -> tuple[tuple[int, ...], bool]:
        seen.append(list(recs))
        return tuple(sorted(recs, reverse=True)), False

    for order in (pairs, pairs[::-1], pairs[3:] + pairs[:3]):
        keys, recs = array("q", [k for k, _ in order]), array("I", [r for _, r in order])
        m = _KeyMap(keys, recs, rank)
        assert len(m) == 3
        assert m.records(m.get(4989123456)) == (3, 2, 1)  # type: ignore[arg-type]
        assert m.records(m.get(4940555666)) == (2,)  # type: ignore[arg-type]
        assert m.records(m.get(4930111222)) == (1,)  # type: ignore[arg-type]
        assert m.get(4989123457) is None
        assert sorted(m.pairs()) == sorted(set(pairs))
    assert seen == [[1, 2, 3]] * 3  # ranked once per build, from the same input


def test_full_numbers_in_the_own_block_are_extensions_of_an_internal_directory() -> None:
    """An internal directory often lists the full direct-dial number (`089 1234-123`); with
    `lookup.own_number` the PBX's internal `123` finds that colleague. Outside the block, or in a
    customer source, a full number stays a full number."""
    normalizer = NumberNormalizer(region="DE", area_code="89", own_number="089 1234-0")
    index = ContactIndex.build(
        [
            row(INTERN, "1", "Kollegin", "", "089 1234-123"),
            row(INTERN, "2", "Kollege", "", "+49 (0)89 1234 4567, Fax 089 1234-4568"),
            row(INTERN, "3", "Filiale", "", "030 98765-12"),  # another block: no extension
            row(INTERN, "5", "Empfang", "", "Zentrale 089 1234-0"),  # the switchboard: not "0"
            row(CRM, "4", "Kunde", "", "089 1234-77"),  # not internal: no extension
        ],
        normalizer,
        "lowest_id",
    )
    assert found(index, "123") == ("hit", "intern", "1", False)
    assert found(index, "4567") == ("hit", "intern", "2", False)
    assert found(index, "4568") == ("hit", "intern", "2", False)
    assert index.find("12") is None and index.find("77") is None and index.find("0") is None
    assert found(index, "0891234123") == ("hit", "intern", "1", False)  # the full number too
    assert NumberNormalizer(own_number="").own_base == ""
    assert normalizer.own_base == "49891234"
    with pytest.raises(ValueError, match="not one phone number"):
        NumberNormalizer(area_code="", own_number="1234")


def test_an_unreadable_own_number_names_the_setting() -> None:
    from cti_journal.shared.errors import ConfigError

    with pytest.raises(ConfigError, match=r"lookup\.own_number"):
        NumberNormalizer.from_settings(LookupSettings(area_code="", own_number="1234-0"))


class FeedSource(MemorySource):
    """A source with a change feed that reports deletions (as CardDAV's sync-collection does)."""

    def __init__(self, settings: ContactSourceSettings, rows: list[ContactRow]) -> None:
        super().__init__(settings, rows)
        self.pending = ChangeSet()
        self.tokens: list[str | None] = []
        self.broken_after: int | None = None

    @property
    def incremental(self) -> bool:
        return True

    @property
    def deletions(self) -> bool:
        return True

    @property
    def token(self) -> str | None:
        return "t0"

    def full_load(self) -> Iterator[ContactRow]:
        self.loads.append(None)
        for i, r in enumerate(self.rows):
            if self.broken_after is not None and i == self.broken_after:
                raise SourceUnavailableError("source crm: page 2 failed")
            yield r

    def changes(self, token: str | None) -> ChangeSet:
        self.tokens.append(token)
        change, self.pending = self.pending, ChangeSet(token=self.pending.token)
        return change


def test_holder_applies_a_change_feed_with_deletions_and_never_reads_fully() -> None:
    crm = FeedSource(
        CRM, [row(CRM, "1", "Anna", "", "089 111111"), row(CRM, "2", "Bert", "", "089 222222")]
    )
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[crm])
    holder.start()
    try:
        crm.pending = ChangeSet([row(CRM, "3", "Cora", "", "089 333333")], ["1"], "t1")
        holder.refresh_now()
        assert holder.current.find("089111111") is None
        assert found(holder.current, "089333333") == ("hit", "crm", "3", False)
        assert found(holder.current, "089222222") == ("hit", "crm", "2", False)
        for _ in range(FULL_RELOAD_EVERY + 1):
            holder.refresh_now()
        assert crm.loads == [None]  # deletions come with the feed: no periodic full read
        assert crm.tokens[:3] == ["t0", "t1", "t1"]
        assert holder.last_success("crm") > 0
    finally:
        holder.stop()


def test_a_load_that_breaks_off_part_way_is_never_swapped_in() -> None:
    rows = [row(CRM, str(i), f"P{i}", "", f"089 1111{i:02d}") for i in range(10)]
    crm = FeedSource(CRM, rows)
    crm.broken_after = 5
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[crm])
    with pytest.raises(SourceUnavailableError):
        holder.start()
    assert holder.current.records == 0  # not the first five
    crm.broken_after = None
    holder.start()
    try:
        assert holder.current.records == 10
    finally:
        holder.stop()


def test_a_start_after_a_failure_reads_only_the_missing_sources() -> None:
    crm = MemorySource(CRM, [row(CRM, "1", "Anna", "", "089 111111")])
    erp = MemorySource(ERP, [row(ERP, "5", "", "ACME GmbH", "089 222222")])
    erp.fail = True
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[crm, erp])
    with pytest.raises(SourceUnavailableError, match="erp"):
        holder.start()
    erp.fail = False
    holder.start()
    try:
        assert (len(crm.loads), len(erp.loads)) == (1, 2)
        assert holder.current.records == 2
    finally:
        holder.stop()


def test_a_refresh_that_replaced_the_index_gives_the_freed_memory_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: after a refresh the old index is freed, but glibc kept its pages (a look-up of
    100,000 contacts stayed at old + new); malloc_trim is called once the index was replaced,
    and not after a refresh that replaced nothing."""
    from cti_journal.lookup.sources import holder as holder_module

    trims: list[int] = []
    monkeypatch.setattr(holder_module, "_MALLOC_TRIM", lambda pad: trims.append(pad) or 1)
    settings = ContactSourceSettings(name="crm", dsn="", table="k", modified_column="geaendert")
    source = MemorySource(
        settings, [ContactRow("1", "A", "", ("089 111111",), settings, modified=5)]
    )
    holder = IndexHolder(LookupSettings(area_code="89", refresh_s=3600), sources=[source])
    holder.start()
    try:
        assert trims == []  # the first load replaces an empty index: nothing freed worth it
        source.fail = True
        holder.refresh_now()  # the source is down: the same index stays
        assert trims == []
        source.fail = False
        source.rows.append(ContactRow("2", "B", "", ("089 222222",), settings, modified=6))
        holder.refresh_now()
        assert trims == [0]
        assert found(holder.current, "089222222") == ("hit", "crm", "2", False)
    finally:
        holder.stop()
