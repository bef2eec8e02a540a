"""The in-memory contact index: normalised numbers → records, built once, read by many threads.

Sized for a million contacts in well under 400 MB: a dict of 1.7 million int keys and values
takes ~200 MB of Python objects, so keys live in an open-addressing hash table of two flat arrays
(`array('q')` keys, `array('i')` values: 24–48 bytes a number); record fields are UTF-8
in one `bytearray` each; companies and sources are interned. (A sorted array with `bisect` is
smaller but takes ~20 cache misses a probe on 1.7 million keys: 37,000 look-ups/s against 50,000.)

An index is immutable. A refresh builds a new one (`updated`) and the holder swaps the reference,
so a look-up never sees a half-built index and needs no lock.

Matching (see `fields` and `normalize` for the numbers themselves):
- exact: the first candidate key that a record owns. Who owns a number is decided on purpose:
  a plain number or a direct dial (`089 1234-56`, `Dw. 56`) is its record's own; a switchboard
  (`089 1234-0`) is the company's: a company record (company, no person name) owns it as the
  base and as base + 0, a person who lists it owns nothing of it;
- company: else the first candidate whose number, or the number without its last 1–5 digits, is a
  registered switchboard base. Only records with a company register bases: a switchboard written
  with `-0` on any such record (`MIN_MARKED_BASE_DIGITS` E.164 digits at least), and any
  fixed-line number of a company record (`MIN_BASE_DIGITS`), so that a short number never
  swallows a range of unrelated numbers. A person's direct dial registers no base: a base only a
  person knows would put that person's record on the company's calls;
- several records for one key (`tie_break = "none"`, the default since issue 16): a company
  record beside persons is the answer for the company's main number; a mobile, or a number a
  company record lists as a direct dial, is the person's. When what is left holds more than one
  person (two people on a team line) nothing decides: no person is chosen; the company that
  owns the number's block (a switchboard base) takes the call, or else the call gets no record
  (kind "undecided", counted in cti_journal_lookup_undecided_total). One person with records in
  several sources is one person: source priority, then the id, picks the record. In a base,
  persons beside a company record are no competitors, and two companies are undecided.
  `tie_break = "lowest_id"` / `"highest_id"` keep the rule before issue 16: company records
  first (not for a mobile), then source priority, then the id; one record always wins.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Final, Literal

from cti_journal.lookup.contacts import Contact, ContactRow, Match, source_label
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.fields import ContactNumber
from cti_journal.shared.fieldtext import is_ascii_digits
from cti_journal.shared.normalize import NumberNormalizer

log = logging.getLogger(__name__)

MIN_BASE_DIGITS: Final = 9  # +49 89 1234567 has 10; +49 3581 123 has 9
# A base written as a switchboard (`-0`) says itself that it is one: shorter ones are allowed
# (Vienna: +43 1 22305-0 has 8 digits, the city hall +43 1 4000-0 seven).
MIN_MARKED_BASE_DIGITS: Final = 7
_MIN_MARKED_BASE: Final = 10 ** (MIN_MARKED_BASE_DIGITS - 1)
MAX_DIRECT_DIAL_DIGITS: Final = 5
_MIN_BASE: Final = 10 ** (MIN_BASE_DIGITS - 1)
_FIBONACCI: Final = 0x9E3779B97F4A7C15  # 2**64 / golden ratio
_U64: Final = (1 << 64) - 1
_CONTACT_CACHE: Final = 50_000

# (key, its records) → the records ranked, and whether nothing decides between them (then no
# record of the group is the answer: lookup.tie_break = "none")
Rank = Callable[[int, list[int]], tuple[tuple[int, ...], bool]]


class _Strings:
    """Many strings in one UTF-8 buffer: ~1 byte a character instead of ~50 bytes a str object."""

    __slots__ = ("_blob", "_ends")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("Q")

    def append(self, text: str) -> None:
        self._blob += text.encode()
        self._ends.append(len(self._blob))

    def __getitem__(self, i: int) -> str:
        start = self._ends[i - 1] if i else 0
        return self._blob[start : self._ends[i]].decode()

    def __len__(self) -> int:
        return len(self._ends)


class _KeyMap:
    """Int keys → one record index, or (negative value) a ranked group of records."""

    __slots__ = ("_count", "_mask", "_shift", "_table", "_values", "groups", "undecided")

    def __init__(self, keys: array[int], recs: array[int], rank: Rank) -> None:
        """The map of (key, record) pairs; a key with several records gets them ranked.

        The pairs go straight into the table, unsorted: a key met again becomes a group. (Sorting
        packed (key, record) ints held a list of 1.7 million Python ints, ~75 MB, at the peak of
        every build, and a refresh builds beside the index in service.)"""
        # Open addressing, linear probing, at most 50 % full, so a miss is one or two reads of
        # adjacent slots. Phone numbers come in dense runs (a PBX's range, a numbering block):
        # `key % size` put runs into long clusters (50 µs a probe on a million contacts), so the
        # slot is the top bits of key × 2**64/φ (Fibonacci hashing), which spreads any
        # arithmetic run evenly. Sized for the pairs: distinct keys are at most as many.
        bits = max(4, (2 * len(keys) - 1).bit_length())  # a power of two ≥ 2 × pairs
        size = 1 << bits
        self._shift = 64 - bits
        self._mask = size - 1
        self._table: array[int] = array("q", bytes(8 * size))  # 0: an empty slot
        self._values: array[int] = array("i", bytes(4 * size))
        table, values, mask, shift = self._table, self._values, self._mask, self._shift
        several: dict[int, list[int]] = {}  # slot -> its records, for keys with more than one
        count = 0
        for key, rec in zip(keys, recs, strict=True):
            h = ((key * _FIBONACCI) & _U64) >> shift
            slot = table[h]
            while slot and slot != key:
                h = (h + 1) & mask
                slot = table[h]
            if not slot:
                table[h] = key
                values[h] = rec
                count += 1
            elif (members := several.get(h)) is not None:
                members.append(rec)  # repeats go at the end: a scan here is O(n²) per group
            elif values[h] != rec:  # the same record twice (phone = fax) stays one
                several[h] = [values[h], rec]
        self._count = count
        self.groups: list[tuple[int, ...]] = []
        self.undecided: set[int] = set()  # values of groups that nothing decides
        for h, members in several.items():
            ranked, undecided = rank(table[h], sorted(set(members)))
            self.groups.append(ranked)
            values[h] = -len(self.groups)
            if undecided:
                self.undecided.add(values[h])

    def get(self, key: int) -> int | None:
        table, mask = self._table, self._mask
        h = ((key * _FIBONACCI) & _U64) >> self._shift
        slot = table[h]
        while slot:
            if slot == key:
                return self._values[h]
            h = (h + 1) & mask
            slot = table[h]
        return None

    def first_prefix(self, key: int, steps: int, minimum: int) -> int | None:
        """The value of `key`, or else of `key` without its last 1…`steps` digits."""
        table, mask, shift = self._table, self._mask, self._shift
        for _ in range(steps + 1):
            if key < minimum:
                return None
            # `get`, inlined: this loop runs for every look-up without an exact match.
            h = ((key * _FIBONACCI) & _U64) >> shift
            slot = table[h]
            while slot:
                if slot == key:
                    return self._values[h]
                h = (h + 1) & mask
                slot = table[h]
            key //= 10
        return None

    def records(self, val: int) -> tuple[int, ...]:
        return (val,) if val >= 0 else self.groups[-val - 1]

    def pairs(self) -> Iterator[tuple[int, int]]:
        for key, val in zip(self._table, self._values, strict=True):
            if key:
                for rec in self.records(val):
                    yield key, rec

    def __len__(self) -> int:
        return self._count


class _Source:
    __slots__ = ("internal", "label", "name", "priority")

    def __init__(self, settings: ContactSourceSettings) -> None:
        self.name = settings.name
        self.label = source_label(settings)
        self.priority = settings.priority
        self.internal = settings.internal


def _name_words(name: str) -> list[str]:
    """`Berger, Johanna` and `Johanna  Berger` → ["johanna", "berger"]; an abbreviation keeps
    its dot (`Jon.`)."""
    family, comma, given = name.partition(",")
    if comma:
        name = f"{given} {family}"
    return [w.strip("-'") for w in name.casefold().split() if w.strip("-'.")]


def same_name(a: str, b: str) -> bool:
    """Whether two records' names are one person (or one company) written differently: the same
    words in the same order (family name last, `Family, Given` turned round), where a word with
    a dot or of one letter abbreviates another (`Jon. Hofmann`, `J. Hofmann`, `Jonas Hofmann`).
    Two different names on one number (`Hans Müller`, `Petra Müller`) are two people."""
    wa, wb = _name_words(a), _name_words(b)
    if len(wa) != len(wb) or not wa:
        return wa == wb
    for x, y in zip(wa, wb, strict=True):
        if x == y:
            continue
        short, long = sorted((x, y), key=len)
        stem = short.rstrip(".")
        if not (short.endswith(".") or len(stem) == 1) or not long.startswith(stem):
            return False
    return True


def _id_key(record_id: str) -> tuple[int, int, str]:
    # (ASCII digits only: `"²".isdigit()` is True and `int("²")` fails, issue 20)
    return (0, int(record_id), "") if is_ascii_digits(record_id) else (1, 0, record_id)


class _Builder:
    def __init__(self, normalizer: NumberNormalizer) -> None:
        self.normalizer = normalizer
        self.ids = _Strings()
        self.names = _Strings()
        self.company: array[int] = array("I")
        self.companies: list[str] = []
        self._company_index: dict[str, int] = {}
        self.src: array[int] = array("H")
        self.sources: list[_Source] = []
        self._source_index: dict[str, int] = {}
        self.exact = (array("q"), array("I"))
        self.bases = (array("q"), array("I"))
        self.extensions: dict[str, list[int]] = {}
        # Keys a company record lists as a direct dial (`Ansprechpartner Hr. X: 069 6052-57`):
        # a person who lists the same number is its owner. Few: kept as a set.
        self.company_direct: set[int] = set()

    def add_record(self, record_id: str, name: str, company: str, source: _Source) -> int:
        rec = len(self.ids)
        self.ids.append(record_id)
        self.names.append(name)
        index = self._company_index.get(company)
        if index is None:
            index = self._company_index[company] = len(self.companies)
            self.companies.append(company)
        self.company.append(index)
        self.src.append(self._source(source))
        return rec

    def _source(self, source: _Source) -> int:
        index = self._source_index.get(source.name)
        if index is None:
            index = self._source_index[source.name] = len(self.sources)
            self.sources.append(source)
        return index

    def add_row(self, row: ContactRow, source: _Source) -> None:
        """A record's numbers, each owned on purpose (docs/contact-matching.md):
        a plain number or a direct dial is its record's own; a number marked as switchboard
        (`-0`) is the company's: on a company record (a company and no name) it is an exact key
        (as written and with the `0` dialled), on a person only the company's base, so that the
        person never takes the company's calls. Bases (for direct dials nobody lists) come
        from company records' fixed-line numbers and from every written switchboard or direct
        dial of a record with a company."""
        rec = self.add_record(row.record_id, row.name, row.company, source)
        company_record = bool(row.company) and not row.name
        # A record's keys once each (phone = fax, `089 1234-0` and `089 12340`): the key map is
        # sized by its pairs, and a repeat would cost a slot of its own until the map is built.
        exact: set[int] = set()
        bases: set[int] = set()
        for field in row.phones:
            for number in self.normalizer.contact_numbers(field):
                self._own(number, row.company, company_record, exact, bases)
            if source.internal:
                for extension in self.normalizer.extensions(field):
                    self.extensions.setdefault(extension, []).append(rec)
        if exact:
            self.exact[0].extend(exact)
            self.exact[1].extend([rec] * len(exact))
        if bases:
            self.bases[0].extend(bases)
            self.bases[1].extend([rec] * len(bases))

    def _own(
        self,
        number: ContactNumber,
        company: str,
        company_record: bool,
        exact: set[int],
        bases: set[int],
    ) -> None:
        key, base, extension, marked = number
        switchboard = extension == "0" or marked  # (ContactNumber.switchboard, inlined)
        if switchboard:
            if company_record and key:
                exact.add(key)
                if extension == "0":
                    exact.add(key * 10)
        elif key:
            exact.add(key)
            if company_record and extension:
                self.company_direct.add(key)
        if not company:
            return
        if switchboard:
            if base >= _MIN_MARKED_BASE:
                bases.add(base)
        elif company_record and key >= _MIN_BASE and not self.normalizer.is_mobile(key):
            bases.add(key)

    @staticmethod
    def _add(target: tuple[array[int], array[int]], key: int, rec: int) -> None:
        target[0].append(key)
        target[1].append(rec)

    def copy_from(self, old: ContactIndex, drop: Callable[[str, str], bool]) -> None:
        """Every record of `old` except those `drop(source name, id)` rejects, numbers included."""
        remap = array("i", [-1]) * len(old._ids)
        for rec in range(len(old._ids)):
            source, record_id = old._sources[old._src[rec]], old._ids[rec]
            if not drop(source.name, record_id):
                name, company = old._names[rec], old._companies[old._company[rec]]
                remap[rec] = self.add_record(record_id, name, company, source)
        for target, keymap in ((self.exact, old._exact), (self.bases, old._bases)):
            for key, rec in keymap.pairs():
                if remap[rec] >= 0:
                    self._add(target, key, remap[rec])
        for extension, recs in old._extensions.items():
            for rec in recs:
                if remap[rec] >= 0:
                    self.extensions.setdefault(extension, []).append(remap[rec])
        # (a dropped record's keys may stay in it: that only ranks a person first for a key
        # a company record no longer lists as a direct dial)
        self.company_direct |= old._company_direct

    def finish(self, tie_break: str) -> ContactIndex:
        if tie_break != "none":
            return self._finish_by_tie_break(tie_break)

        def rank_exact(key: int, recs: list[int]) -> tuple[tuple[int, ...], bool]:
            persons = [r for r in recs if self.names[r]]
            if persons and len(persons) < len(recs):
                # A person beside a company record: a mobile or a number the company record
                # lists as a direct dial is the person's; any other number is the company's
                # main number, and the company record is the answer.
                personal = self.normalizer.is_mobile(key) or key in self.company_direct
                group = persons if personal else [r for r in recs if not self.names[r]]
            else:
                group = recs
            return self._decide(group, recs)

        def rank_base(_key: int, recs: list[int]) -> tuple[tuple[int, ...], bool]:
            # Persons only tell a base when no company record does: beside one they are no
            # competitor (and no ambiguity), as the company record always wins.
            companies = [r for r in recs if not self.names[r]]
            return self._decide(companies or recs, [], by_company=True)

        exact = _KeyMap(*self.exact, rank_exact)
        self.exact = (array("q"), array("I"))  # free the pairs before the next map
        bases = _KeyMap(*self.bases, rank_base)
        self.bases = (array("q"), array("I"))
        extensions: dict[str, tuple[int, ...]] = {}
        undecided: set[str] = set()
        for ext, recs in self.extensions.items():
            extensions[ext], several = self._decide(sorted(set(recs)), [])
            if several:
                undecided.add(ext)
        return ContactIndex(self, exact, bases, extensions, tie_break, undecided)

    def _decide(
        self, group: list[int], recs: list[int], *, by_company: bool = False
    ) -> tuple[tuple[int, ...], bool]:
        """The group ranked (source priority, then the id: for one person or company with
        records in several sources), the rest of `recs` after it (for `lookup explain`), and
        whether the group holds more than one person (or company): then nothing decides."""
        ordered = self._rank(group, "lowest_id", company_first=False)
        rest = self._rank([r for r in recs if r not in group], "lowest_id", company_first=False)
        first = self._who(group[0], by_company)
        several = any(not same_name(first, self._who(r, by_company)) for r in group[1:])
        return ordered + rest, several

    def _who(self, rec: int, by_company: bool) -> str:
        name = "" if by_company else self.names[rec]
        return name or self.companies[self.company[rec]]

    def _finish_by_tie_break(self, tie_break: str) -> ContactIndex:
        """The behaviour before issue 16 (`lookup.tie_break = "lowest_id"` / `"highest_id"`):
        company records first, then source priority, then the id: one record always wins."""

        def rank_exact(key: int, recs: list[int]) -> tuple[tuple[int, ...], bool]:
            # A mobile is a person's even when a company record lists it too (the owner's
            # mobile as a small firm's number): priority decides.
            mobile = self.normalizer.is_mobile(key)
            return self._rank(recs, tie_break, company_first=not mobile), False

        def rank_base(_key: int, recs: list[int]) -> tuple[tuple[int, ...], bool]:
            companies = [r for r in recs if not self.names[r]]
            return self._rank(companies or recs, tie_break, company_first=True), False

        exact = _KeyMap(*self.exact, rank_exact)
        self.exact = (array("q"), array("I"))
        bases = _KeyMap(*self.bases, rank_base)
        self.bases = (array("q"), array("I"))
        extensions = {
            ext: self._rank(sorted(set(recs)), tie_break, company_first=False)
            for ext, recs in self.extensions.items()
        }
        return ContactIndex(self, exact, bases, extensions, tie_break, set())

    def _rank(self, recs: list[int], tie_break: str, company_first: bool) -> tuple[int, ...]:
        # Stable sorts from the least to the most significant criterion.
        ordered = sorted(recs, key=lambda r: self.sources[self.src[r]].name)
        ordered.sort(key=lambda r: _id_key(self.ids[r]), reverse=tie_break == "highest_id")
        # A number a company record lists is the company's main number: the company's record is
        # the answer, and a person who lists it too (her only number is the switchboard) comes
        # second, whatever the sources' priorities. Then source priority, then the tie-break.
        ordered.sort(
            key=lambda r: (
                company_first and bool(self.names[r]),
                self.sources[self.src[r]].priority,
            )
        )
        return tuple(ordered)


class ContactIndex:
    """Immutable; build with `build`, refresh with `updated`."""

    def __init__(
        self,
        built: _Builder,
        exact: _KeyMap,
        bases: _KeyMap,
        extensions: dict[str, tuple[int, ...]],
        tie_break: str,
        undecided_extensions: set[str],
    ) -> None:
        self._normalizer = built.normalizer
        self._ids, self._names = built.ids, built.names
        self._company, self._companies = built.company, built.companies
        self._src, self._sources = built.src, built.sources
        self._exact, self._bases, self._extensions = exact, bases, extensions
        self._undecided_extensions = undecided_extensions
        self._company_direct = built.company_direct
        self.tie_break = tie_break
        # Decoded contacts of recent matches (frozen, so shared safely between threads): the
        # same callers recur in a journal, and decoding three strings costs more than the probe.
        self._contacts: dict[int, Contact] = {}

    @classmethod
    def build(
        cls,
        records: Iterable[ContactRow],
        normalizer: NumberNormalizer,
        tie_break: str = "none",
    ) -> ContactIndex:
        builder = _Builder(normalizer)
        sources: dict[str, _Source] = {}
        for row in records:
            source = sources.get(row.source.name)
            if source is None:
                source = sources[row.source.name] = _Source(row.source)
            builder.add_row(row, source)
        return builder.finish(tie_break)

    def updated(
        self,
        source: ContactSourceSettings,
        rows: Iterable[ContactRow],
        *,
        replace: Literal["all", "changed"],
        deleted: Collection[str] = (),
    ) -> ContactIndex:
        """A new index with `rows` for `source`: replacing all its records (`all`), or only those
        with the ids of `rows` (`changed`), without the records whose ids are `deleted`."""
        builder = _Builder(self._normalizer)
        info = _Source(source)
        if replace == "all":
            builder.copy_from(self, lambda name, _id: name == source.name)
            for row in rows:
                builder.add_row(row, info)
        else:
            changed = list(rows)
            ids = {row.record_id for row in changed} | set(deleted)
            builder.copy_from(self, lambda name, rid: name == source.name and rid in ids)
            for row in changed:
                builder.add_row(row, info)
        return builder.finish(self.tie_break)

    # -- look-up --------------------------------------------------------------------------------

    def find(self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False) -> Match | None:
        number = self._normalizer.journal(rufnummer, amtsholung, incoming=incoming)
        if number is None:
            return None
        if number.extension:
            recs = self._extensions.get(number.extension)
            if not recs:
                return None
            if number.extension in self._undecided_extensions:
                return Match(self.contact(recs[0]), "undecided", True)
            return self._match(recs, "hit")
        for key in number.keys:
            val = self._exact.get(key)
            if val is not None:
                if val in self._exact.undecided:
                    return self._undecided(key, self._exact.records(val))
                return self._match(self._exact.records(val), "hit")
        for key in number.keys:
            val = self._bases.first_prefix(key, MAX_DIRECT_DIAL_DIGITS, _MIN_MARKED_BASE)
            if val is not None:
                if val in self._bases.undecided:
                    return Match(self.contact(self._bases.records(val)[0]), "undecided", True)
                return self._match(self._bases.records(val), "company")
        return None

    def _undecided(self, key: int, recs: tuple[int, ...]) -> Match:
        """Several persons claim `key` and nothing decides: no person is chosen. The record
        that owns the number's block (the company's switchboard base) takes the call, if there
        is one; else the call gets no record (kind "undecided": the entry passes as a miss)."""
        val = self._bases.first_prefix(key, MAX_DIRECT_DIAL_DIGITS, _MIN_MARKED_BASE)
        if val is not None and val not in self._bases.undecided:
            return Match(self.contact(self._bases.records(val)[0]), "company", True, True)
        return Match(self.contact(recs[0]), "undecided", True, True)

    def decided(self, key: int) -> bool:
        """False when several persons claim `key` as their own and nothing decides."""
        val = self._exact.get(key)
        return val is None or val not in self._exact.undecided

    def exact(self, key: int) -> list[Contact]:
        """Every record with `key` as its own number, the winner first (for `lookup explain`)."""
        val = self._exact.get(key)
        return [] if val is None else [self.contact(r) for r in self._exact.records(val)]

    def bases_of(self, key: int) -> tuple[int, list[Contact]] | None:
        """The switchboard base `key` falls under (itself or without 1–5 last digits) and its
        records, the winner first (for `lookup explain`)."""
        for _ in range(MAX_DIRECT_DIAL_DIGITS + 1):
            if key < _MIN_MARKED_BASE:
                return None
            val = self._bases.get(key)
            if val is not None:
                return key, [self.contact(r) for r in self._bases.records(val)]
            key //= 10
        return None

    def extension(self, extension: str) -> list[Contact]:
        return [self.contact(r) for r in self._extensions.get(extension, ())]

    @property
    def normalizer(self) -> NumberNormalizer:
        return self._normalizer

    def _match(self, recs: tuple[int, ...], kind: Literal["hit", "company"]) -> Match:
        return Match(self.contact(recs[0]), kind, len(recs) > 1)

    def contact(self, rec: int) -> Contact:
        cached = self._contacts.get(rec)
        if cached is not None:
            return cached
        if len(self._contacts) >= _CONTACT_CACHE:
            self._contacts.clear()  # crude but bounded; callers recur within minutes, not days
        contact = self._contacts[rec] = self._make_contact(rec)
        return contact

    def _make_contact(self, rec: int) -> Contact:
        source = self._sources[self._src[rec]]
        return Contact(
            record_id=self._ids[rec],
            name=self._names[rec],
            company=self._companies[self._company[rec]],
            label=source.label,
            source=source.name,
            priority=source.priority,
        )

    # -- figures --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._exact) + len(self._extensions)

    @property
    def records(self) -> int:
        return len(self._ids)

    @property
    def bases(self) -> int:
        return len(self._bases)

    def records_of(self, source: str) -> int:
        index = next((i for i, s in enumerate(self._sources) if s.name == source), None)
        return 0 if index is None else self._src.count(index)

    @classmethod
    def empty(cls, normalizer: NumberNormalizer, tie_break: str = "none") -> ContactIndex:
        return _Builder(normalizer).finish(tie_break)
