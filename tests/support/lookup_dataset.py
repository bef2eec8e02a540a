"""A generated, realistic contact test set with a call list whose right answers are known.

Seeded and deterministic. The generator owns a small world: German and foreign subscribers,
companies with a PBX (a base number plus direct-dial extensions), an internal directory. It
allocates numbers prefix-free, as the German numbering plan does (no number is the start of
another, except a PBX base and its extensions), and it knows the E.164 number behind every
string it types, so the expected answer of each call comes from the world, never from the code
under test.

Sources: `crm` (persons at companies and private persons, priority 10), `erp` (company records:
no person name, priority 20), `suppliers` (copies of some CRM persons, priority 30), `intern`
(internal directory, priority 5, internal). Settings: region DE, area code 89, outside prefix 0.

Expected answer of a call (`Call.expect`):
- "hit": the number is typed on a record; the winner is the lowest priority number, then the
  lowest id (ambiguous when several records have it);
- "company": a direct-dial number of a company whose switchboard base is on a record with that
  company (a company record's fixed-line number, or a `-0` number); the company record wins;
- "miss": nobody has the number (unknown callers, companies known only through persons'
  direct-dial numbers);
- "skip": anonymous, nothing to look up.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from cti_journal.lookup.contacts import ContactRow
from cti_journal.shared.config import ContactSourceSettings, LookupSettings

SEED = 4711
OWN_AREA = "89"
# area code → subscriber length for persons (company bases are 2 digits shorter)
AREAS = {
    "89": 7,
    "30": 8,
    "40": 7,
    "69": 7,
    "221": 7,
    "711": 7,
    "911": 6,
    "351": 7,
    "3581": 6,
    "7031": 6,
    "8031": 6,
}
MOBILE = ("151", "152", "160", "162", "170", "171", "172", "176", "179")


def _mobile_digits(prefix: str) -> int:
    return 8 if prefix.startswith("15") else 7  # 015x numbers have 11 digits, 016x/017x 10–11


# country code, area, subscriber length
FOREIGN = (("43", "1", 7), ("43", "662", 6), ("41", "44", 7), ("31", "20", 7), ("33", "1", 8))

FIRST = [
    "Hans",
    "Anna",
    "Peter",
    "Maria",
    "Klaus",
    "Ursula",
    "Jürgen",
    "Sabine",
    "Stefan",
    "Monika",
    "Thomas",
    "Petra",
    "Michael",
    "Andrea",
    "Andreas",
    "Claudia",
    "Wolfgang",
    "Birgit",
    "Frank",
    "Susanne",
    "Jörg",
    "Katrin",
    "Günter",
    "Gabriele",
    "Uwe",
    "Heike",
    "Dirk",
    "Karin",
    "Ralf",
    "Renate",
    "Sven",
    "Bärbel",
    "Lars",
    "Doris",
    "Björn",
    "Jutta",
    "Özlem",
    "Mehmet",
    "Ludwig",
    "Franziska",
]
LAST = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Schmitz",
    "Krause",
    "Meier",
    "Lehmann",
    "Schmid",
    "Schulze",
    "Maier",
    "Köhler",
    "Herrmann",
    "König",
    "Walter",
    "Mayer",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Möller",
    "Weiß",
    "Jung",
    "Hahn",
    "Vogel",
    "Yılmaz",
]
TRADES = [
    "Bau",
    "Elektro",
    "Sanitär",
    "Metall",
    "Druck",
    "Logistik",
    "Software",
    "Maschinenbau",
    "Holz",
    "Glas",
    "Dach",
    "Auto",
    "Medizintechnik",
    "Steuerberatung",
    "Versicherungs",
    "Immobilien",
    "Reinigungs",
    "Gartenbau",
    "Kälte",
    "Optik",
]
FORMS = ("GmbH", "GmbH & Co. KG", "AG", "KG", "e.K.", "OHG", "mbH", "UG (haftungsbeschränkt)")

SOURCES = (
    ContactSourceSettings(name="crm", dsn="", table="crm_kontakte", priority=10),
    ContactSourceSettings(name="erp", dsn="", table="erp_kunden", label="Kunden", priority=20),
    ContactSourceSettings(name="suppliers", dsn="", table="lieferanten", priority=30),
    ContactSourceSettings(name="intern", dsn="", table="telefonbuch", priority=5, internal=True),
)
# The answers below follow the ownership rule before issue 16 (one record always wins a shared
# number), which stays available as the explicit `lookup.tie_break = "lowest_id"`; the default
# ("none": no coin flip between persons) has its own tests in tests/unit/test_ownership.py.
SETTINGS = LookupSettings(
    region="DE", area_code=OWN_AREA, outside_prefix="0", tie_break="lowest_id"
)


@dataclass(frozen=True)
class Number:
    """A number of the world: E.164 parts. `ext` is a direct-dial suffix of a PBX `base`."""

    cc: str
    area: str  # national destination code without the trunk 0 (mobile prefix for mobiles)
    sub: str  # subscriber number; for a PBX extension: base subscriber + extension
    ext: str = ""  # the extension part of `sub`, when the number is a PBX's direct dial

    @property
    def e164(self) -> str:
        return self.cc + self.area + self.sub

    @property
    def base(self) -> str:
        return self.e164[: len(self.e164) - len(self.ext)] if self.ext else ""


@dataclass(frozen=True)
class Call:
    rufnummer: str
    amtsholung: str
    expect: Literal["hit", "company", "miss", "skip"]
    source: str = ""
    record_id: str = ""
    ambiguous: bool = False
    what: str = ""  # kind of call, for failure messages and per-kind figures


@dataclass
class Dataset:
    rows: list[ContactRow] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    settings: LookupSettings = SETTINGS

    def count(self, expect: str) -> int:
        return sum(1 for c in self.calls if c.expect == expect)


class _Allocator:
    """Prefix-free numbers per area, as the numbering plan guarantees."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.taken: set[str] = set()
        self.prefixes: set[str] = set()

    def take(self, stem: str, length: int) -> str:
        while True:
            sub = str(self.rnd.randint(2, 9)) + "".join(
                self.rnd.choice("0123456789") for _ in range(length - 1)
            )
            full = stem + sub
            clash = full in self.prefixes or any(full[:i] in self.taken for i in range(len(full)))
            if not clash:
                self.taken.add(full)
                self.prefixes.update(full[:i] for i in range(1, len(full) + 1))
                return sub


# -- how people type numbers --------------------------------------------------------------------


def _grouped(digits: str, rnd: random.Random) -> str:
    style = rnd.randrange(4)
    if style == 0:
        return digits
    if style == 1:
        return " ".join(digits[i : i + 2] for i in range(0, len(digits), 2))
    if style == 2:
        return f"{digits[:3]} {digits[3:]}"
    return f"{digits[:-2]}-{digits[-2:]}"


def type_fixed(n: Number, rnd: random.Random, *, local_ok: bool = True) -> str:
    """A German fixed-line or mobile number as a person types it."""
    if n.ext:
        base_sub = n.sub[: len(n.sub) - len(n.ext)]
        return _type_with_ext(n, base_sub, n.ext, rnd)
    sub = _grouped(n.sub, rnd)
    if n.cc != "49":
        return rnd.choice(
            (f"+{n.cc} {n.area} {sub}", f"00{n.cc} {n.area} {sub}", f"+{n.cc} ({n.area}) {sub}")
        )
    formats = [
        f"0{n.area} {sub}",
        f"0{n.area}/{n.sub}",
        f"(0{n.area}) {sub}",
        f"+49 (0){n.area} {sub}",
        f"+49 {n.area} {sub}",
        f"0049 {n.area} {sub}",
        f"0{n.area}-{n.sub}",
        f"+49{n.area}{n.sub}",
        f"+49 0{n.area} {sub}",  # wrong but common: the trunk 0 after the country code
        f"0{n.area}.{n.sub[:3]}.{n.sub[3:]}",
    ]
    if local_ok and n.area == OWN_AREA:
        # no area code: the company's own area; grouped, because compact digits alone are also
        # a spreadsheet cell that lost its 0 (issue 16: two readings, no key)
        formats.append(f"{n.sub[:-4]} {n.sub[-4:]}")
    return rnd.choice(formats)


def _type_with_ext(n: Number, base_sub: str, ext: str, rnd: random.Random) -> str:
    return rnd.choice(
        (
            f"0{n.area} {base_sub}-{ext}",
            f"+49 (0){n.area} {base_sub}-{ext}",
            f"0{n.area}/{base_sub}-{ext}",
            f"+49 {n.area} {base_sub} - {ext}",
            f"0{n.area} {base_sub}{ext}",
        )
    )


def type_switchboard(n: Number, rnd: random.Random) -> str:
    """The company's main number written as `-0`."""
    return rnd.choice(
        (
            f"0{n.area} {n.sub}-0",
            f"+49 (0){n.area} {n.sub}-0",
            f"0{n.area}/{n.sub}-0",
            f"+49 {n.area} {n.sub} - 0",
        )
    )


def decorate(text: str, rnd: random.Random) -> str:
    """Words around a number, as CRM fields have them."""
    if rnd.random() >= 0.25:
        return text
    return rnd.choice(
        (
            f"Tel. {text}",
            f"{text} (Verwaltung)",  # (not `Zentrale`: since issue 16 that marks a switchboard)
            f"Büro: {text}",
            f"{text} (nur vormittags)",
            f"Tel.: {text} ",
        )
    )


def join(parts: list[str], rnd: random.Random) -> str:
    if rnd.random() < 0.1 and len(parts) == 2:
        return f"Büro: {parts[0]} privat: {parts[1]}"
    return rnd.choice((", ", "; ", " / ", "/", " oder ", " bzw. ", "\n", "\r\n")).join(parts)


# -- how a PBX delivers numbers -----------------------------------------------------------------


def deliver(n: Number, rnd: random.Random) -> tuple[str, str]:
    """(Rufnummer, Amtsholung) as a PBX writes them into the journal."""
    amt = rnd.choice(("0", "", ""))  # the entry names the prefix, or the configured one applies
    if n.cc != "49":
        national = f"00{n.cc}{n.area}{n.sub}"
        return rnd.choice((national, "0" + national, f"+{n.cc}{n.area}{n.sub}")), amt
    national = f"0{n.area}{n.sub}"
    choices = [
        national,
        "0" + national,
        f"+49{n.area}{n.sub}",
        f"0049{n.area}{n.sub}",
        f"00049{n.area}{n.sub}",
        f"+49 {n.area} {n.sub}",
    ]
    if n.area == OWN_AREA:
        choices += [n.sub, "0" + n.sub]  # a local call, with or without the outside prefix
    return rnd.choice(choices), amt


# -- the world ----------------------------------------------------------------------------------


@dataclass
class _Company:
    name: str
    area: str
    base_sub: str  # PBX base subscriber number
    erp_id: str = ""  # record id in erp, if the company has a record there
    main_on_erp: Literal["", "plain", "-0"] = ""
    main_on_person: list[str] = field(default_factory=list)  # crm ids listing the switchboard
    ext_used: set[str] = field(default_factory=set)


class _World:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.alloc = _Allocator(self.rnd)
        self.rows: list[ContactRow] = []
        self.owners: dict[str, list[tuple[str, str]]] = {}  # e164 → [(source, id)]
        self.bases: dict[str, list[tuple[str, str, bool]]] = {}  # base → [(src, id, company rec)]
        self.companies: list[_Company] = []
        self.next_id = {s.name: 1000 for s in SOURCES}
        self.persons: list[tuple[str, list[Number]]] = []  # crm id → its numbers
        self.company_records: set[tuple[str, str]] = set()

    def fixed(self, area: str | None = None) -> Number:
        area = area or self.rnd.choice(list(AREAS))
        return Number("49", area, self.alloc.take("49" + area, AREAS[area]))

    def mobile(self) -> Number:
        prefix = self.rnd.choice(MOBILE)
        return Number("49", prefix, self.alloc.take("49" + prefix, _mobile_digits(prefix)))

    def foreign(self) -> Number:
        cc, area, length = self.rnd.choice(FOREIGN)
        return Number(cc, area, self.alloc.take(cc + area, length))

    def new_id(self, source: str) -> str:
        self.next_id[source] += self.rnd.randint(1, 3)
        return str(self.next_id[source])

    def add(
        self, source: str, name: str, company: str, fields: list[tuple[str, list[Number]]]
    ) -> str:
        settings = next(s for s in SOURCES if s.name == source)
        rid = self.new_id(source)
        self.rows.append(ContactRow(rid, name, company, tuple(f for f, _ in fields), settings))
        company_record = bool(company) and not name
        if company_record:
            self.company_records.add((source, rid))
        for _, numbers in fields:
            for n in numbers:
                # A switchboard (`-0`) is its company's: a person listing it owns no key, a
                # company record owns it as written and without the 0.
                if n.ext != "0" or company_record:
                    for e164 in (n.e164, n.base) if n.ext == "0" else (n.e164,):
                        owners = self.owners.setdefault(e164, [])
                        if (source, rid) not in owners:
                            owners.append((source, rid))
                if company:
                    self._register_base(n, source, rid, company_record=not name)
        return rid

    def _register_base(self, n: Number, source: str, rid: str, *, company_record: bool) -> None:
        # A PBX is findable by its base when a record with that company shows it: as `-0`, or as
        # a fixed-line number of the company's own record.
        if n.ext == "0":
            base = n.base
        elif company_record and n.area not in MOBILE:
            base = n.e164
        else:
            return
        entry = (source, rid, company_record)
        if entry not in self.bases.setdefault(base, []):
            self.bases[base].append(entry)

    def person_name(self) -> str:
        return f"{self.rnd.choice(FIRST)} {self.rnd.choice(LAST)}"

    def company_name(self) -> str:
        return f"{self.rnd.choice(LAST)} {self.rnd.choice(TRADES)} {self.rnd.choice(FORMS)}"


def _make_companies(w: _World, count: int) -> None:
    rnd = w.rnd
    for _ in range(count):
        area = rnd.choice(list(AREAS))
        base_sub = w.alloc.take("49" + area, AREAS[area] - 2)
        company = _Company(w.company_name(), area, base_sub)
        w.companies.append(company)
        if rnd.random() < 0.7:  # a company record in the ERP
            main = Number("49", area, base_sub)
            style = rnd.choice(("plain", "-0"))
            company.main_on_erp = style
            typed = type_fixed(main, rnd) if style == "plain" else type_switchboard(main, rnd)
            numbers = [main if style == "plain" else Number("49", area, base_sub + "0", "0")]
            fields = [(decorate(typed, rnd), numbers)]
            if rnd.random() < 0.3:  # a fax on its own extension
                fax = _ext_number(company, rnd)
                fields.append((type_fixed(fax, rnd), [fax]))
            company.erp_id = w.add("erp", "", company.name, fields)


def _ext_number(c: _Company, rnd: random.Random) -> Number:
    while True:
        ext = str(rnd.randint(10, 999))
        if ext not in c.ext_used and not any(
            e.startswith(ext) or ext.startswith(e) for e in c.ext_used
        ):
            c.ext_used.add(ext)
            return Number("49", c.area, c.base_sub + ext, ext)


def _make_persons(w: _World, count: int) -> None:
    rnd = w.rnd
    for _ in range(count):
        fields: list[tuple[str, list[Number]]] = []
        company = rnd.choice(w.companies) if rnd.random() < 0.7 else None
        lists_switchboard = False
        if company is not None:
            ddi = _ext_number(company, rnd)
            fields.append((decorate(type_fixed(ddi, rnd), rnd), [ddi]))
            if rnd.random() < 0.1:  # the person's record lists the switchboard, too
                board = Number("49", company.area, company.base_sub + "0", "0")
                typed = type_switchboard(Number("49", company.area, company.base_sub), rnd)
                fields[0] = (join([fields[0][0], typed], rnd), [ddi, board])
                lists_switchboard = True
        else:
            home = w.fixed()
            fields.append((decorate(type_fixed(home, rnd), rnd), [home]))
        if rnd.random() < 0.6:
            mobile = w.mobile()
            if rnd.random() < 0.3:  # phone and mobile in one field
                text = join([fields[0][0], type_fixed(mobile, rnd)], rnd)
                fields[0] = (text, [*fields[0][1], mobile])
            else:
                fields.append((type_fixed(mobile, rnd), [mobile]))
        if rnd.random() < 0.05:
            abroad = w.foreign()
            fields.append((type_fixed(abroad, rnd), [abroad]))
        rid = w.add("crm", w.person_name(), company.name if company else "", fields)
        if company is not None and lists_switchboard:
            company.main_on_person.append(rid)
        w.persons.append((rid, [n for _, ns in fields for n in ns]))


def _make_duplicates(w: _World) -> None:
    rnd = w.rnd
    crm = [r for r in w.rows if r.source.name == "crm"]
    for row in rnd.sample(crm, len(crm) // 20):  # a supplier contact that is also in the CRM
        numbers = next(ns for rid, ns in w.persons if rid == row.record_id)
        w.add("suppliers", row.name, row.company, [(join(list(row.phones), rnd), numbers)])
    for rid, numbers in rnd.sample(w.persons, len(w.persons) // 50):  # a shared home number
        w.add("crm", w.person_name(), "", [(type_fixed(numbers[0], rnd), [numbers[0]])])
        del rid


def _make_internal(w: _World, count: int) -> list[str]:
    rnd = w.rnd
    extensions: list[str] = []
    for i in range(count):
        ext = str(200 + i * 3)
        extensions.append(ext)
        text = rnd.choice((ext, f"App. {ext}", f"-{ext}", f"Durchwahl {ext}"))
        w.add("intern", w.person_name(), "", [(text, [])])
    return extensions


# -- expected answers ---------------------------------------------------------------------------


def _id_order(rid: str) -> int:
    return int(rid)


def _winner(w: _World, owners: list[tuple[str, str]]) -> tuple[str, str]:
    # A number a company record lists is the company's: its record wins over persons.
    priority = {s.name: s.priority for s in SOURCES}
    return min(
        owners,
        key=lambda o: (o not in w.company_records, priority[o[0]], _id_order(o[1]), o[0]),
    )


def expected(w: _World, n: Number) -> tuple[Literal["hit", "company", "miss"], str, str, bool]:
    owners = w.owners.get(n.e164)
    if owners:
        source, rid = _winner(w, owners)
        return "hit", source, rid, len(owners) > 1
    base = n.base if n.ext else n.e164  # a PBX's base number itself belongs to the PBX, too
    if base in w.bases:
        candidates = w.bases[base]
        priority = {s.name: s.priority for s in SOURCES}
        source, rid, _ = min(
            candidates, key=lambda c: (not c[2], priority[c[0]], _id_order(c[1]), c[0])
        )
        if any(c[2] for c in candidates):  # beside a company record, persons are no competitors
            candidates = [c for c in candidates if c[2]]
        return "company", source, rid, len(candidates) > 1
    return "miss", "", "", False


def _call_for(w: _World, n: Number, what: str) -> Call:
    rufnummer, amt = deliver(n, w.rnd)
    expect, source, rid, ambiguous = expected(w, n)
    return Call(rufnummer, amt, expect, source, rid, ambiguous, what)


def _calls(w: _World, extensions: list[str], count: int) -> list[Call]:
    rnd = w.rnd
    makers: list[tuple[float, Callable[[], Call]]] = [
        (0.40, lambda: _known_number(w)),
        (0.15, lambda: _call_for(w, _ext_number(rnd.choice(w.companies), rnd), "direct dial")),
        (0.05, lambda: _switchboard_call(w)),
        (0.15, lambda: _call_for(w, w.fixed(), "unknown fixed")),
        (0.07, lambda: _call_for(w, w.mobile(), "unknown mobile")),
        (0.05, lambda: _call_for(w, w.foreign(), "unknown foreign")),
        (0.06, lambda: _internal_call(w, extensions)),
        (0.04, lambda: Call(rnd.choice(("", "anonym", "unknown", "Unbekannt")), "", "skip")),
        (0.03, lambda: Call(rnd.choice(("123", "999", "31")), "", "miss", what="unknown ext")),
    ]
    weights = [m[0] for m in makers]
    return [rnd.choices(makers, weights)[0][1]() for _ in range(count)]


def _known_number(w: _World) -> Call:
    _, numbers = w.rnd.choice(w.persons)
    return _call_for(w, w.rnd.choice(numbers), "known number")


def _switchboard_call(w: _World) -> Call:
    c = w.rnd.choice(w.companies)
    n = w.rnd.choice(
        (Number("49", c.area, c.base_sub), Number("49", c.area, c.base_sub + "0", "0"))
    )
    return _call_for(w, n, "switchboard")


def _internal_call(w: _World, extensions: list[str]) -> Call:
    ext = w.rnd.choice(extensions)
    row = next(r for r in w.rows if r.source.name == "intern" and ext in r.phones[0])
    return Call(ext, "", "hit", "intern", row.record_id, False, "internal")


def generate(
    seed: int = SEED, *, companies: int = 800, persons: int = 4000, calls: int = 6000
) -> Dataset:
    w = _World(seed)
    _make_companies(w, companies)
    _make_persons(w, persons)
    _make_duplicates(w)
    extensions = _make_internal(w, max(20, persons // 40))
    call_list = _calls(w, extensions, calls)
    return Dataset(w.rows, call_list)


def iter_rows(count: int, seed: int = SEED) -> Iterator[ContactRow]:
    """`count` contacts for the benchmark, generated lazily so that they never sit in memory."""
    rnd = random.Random(seed)
    crm, erp = SOURCES[0], SOURCES[1]
    for i in range(count):
        area = rnd.choice(list(AREAS))
        sub = str(rnd.randint(2, 9)) + str(rnd.randrange(10 ** (AREAS[area] - 1))).zfill(
            AREAS[area] - 1
        )
        number = Number("49", area, sub)
        if i % 5 == 0:  # a company record with its switchboard
            board = Number("49", area, sub[:-2] + "0", "0")
            text = type_switchboard(Number("49", area, sub[:-2]), rnd)
            yield ContactRow(str(i), "", f"Firma {i}", (text, type_fixed(board, rnd)), erp)
            continue
        prefix = rnd.choice(MOBILE)
        digits = _mobile_digits(prefix)
        mobile = Number("49", prefix, str(rnd.randrange(10**digits)).zfill(digits))
        yield ContactRow(
            str(i),
            f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
            f"Firma {i // 7}",
            (decorate(type_fixed(number, rnd), rnd), type_fixed(mobile, rnd)),
            crm,
        )
