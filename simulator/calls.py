"""A seeded generator of realistic reventix journal entries, for `cti-journal simulate` and tests.

`generate_calls` yields dicts keyed by `JournalEntry` attribute names, exactly what
`LineFormat.format` takes. The same seed, count, start and options give the same entries, and a
shorter run is a prefix of a longer one (every random draw happens in a fixed order per entry).

What the stream models, as a PBX at a Munich company (area code 089) would deliver it:

* incoming and outgoing calls in the states CONN, RING (not answered: ring time set, talk time
  0 or empty) and BUSY (both small or empty);
* the other party's number in the forms PBXs really use: national (``089…``, ``030…``, mobile
  ``015x/016x/017x…``), international for a German number (``0049…``, ``+49…``), foreign
  (``0043…``, ``+41…``, ``0033…``), local without the area code (7 digits), an internal extension
  (2–4 digits), anonymous (empty), and any external form prefixed with the outside-line digit
  (Amtsholung ``0``) as some PBXs hand it over;
* the company's own numbers (MSNs) as LokaleRufnummer, forwarded calls, LCR prefixes, and charges
  in cents only on outgoing connected calls that went through LCR;
* a Zeitpunkt that never decreases and often repeats within a second, and now and then (by
  default ~0.5 %) an entry emitted twice in a row, identical in every field: two real calls in the
  same second to the same number with the same outcome, which downstream must keep as two rows.

Name, Firma, DatensatzID and DatensatzTabelle stay empty (the pipeline looks them up) unless
`preenriched_ratio` asks for a share of entries that arrive filled, as when the CTI clients did
the look-up.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import phonenumbers

# A fixed default so that the pure generator is repeatable without arguments; the CLI passes "now".
DEFAULT_START: Final = datetime(2024, 3, 4, 8, 0, 0)
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

HOME_AREA: Final = "89"  # Munich, without the trunk 0: local numbers are dialled without it
AMTSHOLUNG: Final = "0"
# The company's own numbers; the first (the switchboard) takes most calls, the fax few.
MSNS: Final = ("08945671230", "08945671231", "08945671239", "08945671240", "08945671250")
MSN_WEIGHTS: Final = (55, 15, 5, 15, 10)
LCR_PREFIXES: Final = ("01070", "01088", "01013", "01079")
# Cents per started minute through LCR, by kind of destination.
_TARIFF_CENTS: Final = {"landline": 1, "mobile": 9, "foreign": 12}

_AREAS: Final = ("30", "40", "69", "221", "711", "911", "351", "511", "8161", "8131")
_MOBILE: Final = ("151", "152", "157", "160", "162", "163", "170", "171", "172", "176", "179")
# Country code, leading digits of the national number, digits that follow.
_FOREIGN: Final = (
    ("43", "1", 7),
    ("43", "664", 7),
    ("41", "44", 7),
    ("41", "79", 7),
    ("33", "1", 8),
    ("33", "6", 8),
)
# Deliberately awkward for the wire format: umlauts, the separator and quotes inside a field.
_NAMES: Final = (
    "Jürgen Müller",
    "Anna Schäfer",
    "Günther Weiß",
    "Sean O'Neill",
    "Renée Dubois",
    "Karl-Heinz Öztürk",
    "Maria Groß",
    "Peter Schmidt",
)
_FIRMS: Final = (
    "",
    "Schmidt & Söhne GmbH",
    'Bäckerei "Zum Korn"',
    "Meier; Partner KG",
    "Café Größenwahn",
    "Müller Logistik AG",
    "Stadtwerke München",
)
_TABLES: Final = ("Adressen", "Kontakte", "CRM_Personen")


class _Weighted:
    """Weighted choice with the cumulative weights computed once: `Random.choices` recomputes
    them on every call, which made it the generator's biggest cost."""

    def __init__(self, values: Sequence[str], weights: Sequence[int]) -> None:
        self._values = tuple(values)
        self._cum = tuple(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> str:
        return self._values[bisect.bisect(self._cum, rng.random() * self._cum[-1])]


_PARTY_IN: Final = _Weighted(("external", "internal", "anonymous"), (84, 8, 8))
_PARTY_OUT: Final = _Weighted(("external", "internal"), (84, 8))  # an outgoing call has a number
_NUMBER_KIND: Final = _Weighted(("home", "landline", "mobile", "foreign"), (25, 35, 30, 10))
_FORM_DE: Final = _Weighted(("national", "0049", "+49"), (75, 8, 7))
_FORM_HOME: Final = _Weighted(("national", "0049", "+49", "local"), (75, 8, 7, 10))
_STATE_IN: Final = _Weighted(("CONN", "RING", "BUSY"), (70, 22, 8))
_STATE_OUT: Final = _Weighted(("CONN", "RING", "BUSY"), (65, 25, 10))
_MSN: Final = _Weighted(MSNS, MSN_WEIGHTS)


@dataclass(frozen=True, slots=True)
class _Number:
    """A phone number as country code and national significant number (no trunk 0)."""

    cc: str
    nsn: str
    kind: str  # "landline", "mobile" or "foreign": decides the LCR tariff

    @property
    def e164(self) -> str:
        return f"+{self.cc}{self.nsn}"


@dataclass(frozen=True, slots=True)
class _Options:
    preenriched_ratio: float
    duplicate_ratio: float
    hit_ratio: float
    mean_gap_s: float
    contact_forms: str


def generate_calls(
    seed: int,
    count: int,
    start: datetime | None = None,
    *,
    preenriched_ratio: float = 0.0,
    duplicate_ratio: float = 0.005,
    numbers: Sequence[str] | None = None,
    hit_ratio: float = 0.6,
    mean_gap_s: float = 12.0,
    contact_forms: str = "pbx",
) -> Iterator[dict[str, Any]]:
    """Yield `count` journal entries (identical back-to-back pairs included in the count).

    `start` is the local wall-clock time of the first entry (naive; default `DEFAULT_START`).
    `mean_gap_s` is the mean time between calls; gaps are whole seconds, so short means give
    many calls in the same second. With `numbers` (a contacts table's phone numbers), a share
    `hit_ratio` of all calls is to or from one of them, rendered as a PBX would deliver it
    (`contact_forms="pbx"`: national, 0049/+49, local, outside-line prefix) or exactly as given
    (`"verbatim"`); the other calls never use a contact's number, so the expected hits are exact.
    `preenriched_ratio` is the share of calls with an external number that arrive with a name.
    """
    for name, ratio in (
        ("preenriched_ratio", preenriched_ratio),
        ("duplicate_ratio", duplicate_ratio),
        ("hit_ratio", hit_ratio),
    ):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {ratio}")
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    if mean_gap_s < 0:
        raise ValueError(f"mean_gap_s must not be negative, not {mean_gap_s}")
    if contact_forms not in ("pbx", "verbatim"):
        raise ValueError(f"contact_forms must be 'pbx' or 'verbatim', not {contact_forms!r}")
    options = _Options(preenriched_ratio, duplicate_ratio, hit_ratio, mean_gap_s, contact_forms)
    raw = [n.strip() for n in numbers or () if n.strip()]
    parsed = [_parse_contact(n) for n in raw]
    # Random numbers must miss every contact, whatever form the contact table stores it in.
    taken = {c.e164 for c in parsed if isinstance(c, _Number)} | set(raw)
    contacts = raw if contact_forms == "verbatim" else parsed
    return _generate(
        random.Random(seed), count, start or DEFAULT_START, options, contacts=contacts, taken=taken
    )


def _generate(
    rng: random.Random,
    count: int,
    start: datetime,
    options: _Options,
    *,
    contacts: Sequence[_Number | str],
    taken: set[str],
) -> Iterator[dict[str, Any]]:
    when = start.replace(microsecond=0)
    stamp = when.strftime(TIME_FORMAT)
    emitted = 0
    while emitted < count:
        gap = int(rng.expovariate(1.0 / options.mean_gap_s)) if options.mean_gap_s > 0 else 0
        if gap:
            when += timedelta(seconds=gap)
            stamp = when.strftime(TIME_FORMAT)  # strftime is costly; many calls share a second
        entry = _call(rng, stamp, options, contacts, taken)
        twice = rng.random() < options.duplicate_ratio
        yield entry
        emitted += 1
        if twice and emitted < count:
            yield dict(entry)
            emitted += 1


def _call(
    rng: random.Random,
    zeitpunkt: str,
    options: _Options,
    contacts: Sequence[_Number | str],
    taken: set[str],
) -> dict[str, Any]:
    in_out = "i" if rng.random() < 0.55 else "o"
    hit = bool(contacts) and rng.random() < options.hit_ratio
    if hit:
        party = _contact_party(rng, in_out, rng.choice(contacts))
    else:
        party = _random_party(rng, in_out, taken)
    state = _state(rng, in_out)
    entry: dict[str, Any] = {
        "in_out": in_out,
        "zeitpunkt": zeitpunkt,
        "verb_zustand": state,
        "rufnummer": party.rufnummer,
        "name": "",
        "firma": "",
        "lokale_rufnummer": _local_number(rng, party.internal),
        "weitergeleitet": _forwarded(rng, in_out, party),
        "datensatz_id": "",
        "datensatz_tabelle": "",
        "lcr": "",
        "gebuehren": None,
        "amtsholung": party.amtsholung,
    }
    entry.update(_durations(rng, state))
    if in_out == "o" and party.number is not None and rng.random() < 0.35:
        entry["lcr"] = rng.choice(LCR_PREFIXES)
        if state == "CONN":
            minutes = math.ceil(entry["verbdauer_sec"] / 60)
            entry["gebuehren"] = minutes * _TARIFF_CENTS[party.number.kind]
    if party.external and rng.random() < options.preenriched_ratio:
        entry.update(_contact_fields(rng))
    return entry


@dataclass(frozen=True, slots=True)
class _Party:
    rufnummer: str
    amtsholung: str
    internal: bool = False
    number: _Number | None = None  # the parsed external number, when there is one
    external: bool = False  # a number the look-up could find (not internal, not anonymous)


def _random_party(rng: random.Random, in_out: str, taken: set[str]) -> _Party:
    kind = (_PARTY_IN if in_out == "i" else _PARTY_OUT).pick(rng)
    if kind == "internal":
        return _Party(_extension(rng), "", internal=True)
    if kind == "anonymous":
        return _Party("", "")
    number = _random_number(rng)
    # Only a contact call may hit, so that a demo knows its expected hit count exactly.
    while number.e164 in taken:
        number = _random_number(rng)
    return _external_party(rng, in_out, number, _render(rng, number))


def _contact_party(rng: random.Random, in_out: str, contact: _Number | str) -> _Party:
    if isinstance(contact, str):
        # Verbatim, or not a number phonenumbers understands: sent exactly as the table has it.
        return _Party(contact, AMTSHOLUNG if in_out == "o" else "", external=True)
    return _external_party(rng, in_out, contact, _render(rng, contact))


def _external_party(rng: random.Random, in_out: str, number: _Number, shown: str) -> _Party:
    # Outgoing calls seize a line with the outside-line digit (a few trunks need none); some
    # PBXs also hand the number over with that digit in front, in both directions.
    used = in_out == "o" and rng.random() < 0.95
    prefixed = not shown.startswith("+") and rng.random() < 0.15
    if prefixed:
        return _Party(AMTSHOLUNG + shown, AMTSHOLUNG, number=number, external=True)
    return _Party(shown, AMTSHOLUNG if used else "", number=number, external=True)


def _random_number(rng: random.Random) -> _Number:
    kind = _NUMBER_KIND.pick(rng)
    if kind == "home":
        return _Number("49", HOME_AREA + _digits(rng, 7), "landline")
    if kind == "landline":
        area = rng.choice(_AREAS)
        return _Number("49", area + _digits(rng, 10 - len(area)), "landline")
    if kind == "mobile":
        return _Number("49", rng.choice(_MOBILE) + _digits(rng, rng.choice((7, 8))), "mobile")
    cc, lead, length = rng.choice(_FOREIGN)
    return _Number(cc, lead + _digits(rng, length), "foreign")


def _render(rng: random.Random, number: _Number) -> str:
    """The number in one of the forms PBXs deliver."""
    if number.cc != "49":
        return rng.choice(("00", "00", "+")) + number.cc + number.nsn
    local = number.nsn.startswith(HOME_AREA) and len(number.nsn) == len(HOME_AREA) + 7
    form = (_FORM_HOME if local else _FORM_DE).pick(rng)
    if form == "national":
        return "0" + number.nsn
    if form == "local":
        return number.nsn[len(HOME_AREA) :]
    return form + number.nsn


def _parse_contact(raw: str) -> _Number | str:
    """A contact's number as `_Number` when phonenumbers understands it, else the raw text."""
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, "DE")
    except phonenumbers.NumberParseException:
        return text
    nsn = phonenumbers.national_significant_number(parsed)
    if not nsn:
        return text
    cc = str(parsed.country_code)
    mobile = cc == "49" and nsn.startswith("1")
    return _Number(cc, nsn, "foreign" if cc != "49" else "mobile" if mobile else "landline")


def _state(rng: random.Random, in_out: str) -> str:
    return (_STATE_IN if in_out == "i" else _STATE_OUT).pick(rng)


def _durations(rng: random.Random, state: str) -> dict[str, int | None]:
    if state == "CONN":
        ring = min(60_000, max(300, int(rng.lognormvariate(math.log(6_000), 0.6))))
        # Talk time has a long tail: most calls last a minute or two, a few for hours.
        talk = min(4 * 3600, int(rng.lognormvariate(math.log(75), 1.3)))
        return {"rufdauer_ms": ring, "verbdauer_sec": talk}
    if state == "RING":
        ring = min(120_000, max(1_000, int(rng.lognormvariate(math.log(20_000), 0.5))))
        return {"rufdauer_ms": ring, "verbdauer_sec": rng.choice((0, None))}
    ring_busy: int | None = rng.choice((None, 0, rng.randint(50, 900)))
    return {"rufdauer_ms": ring_busy, "verbdauer_sec": rng.choice((0, None))}


def _local_number(rng: random.Random, internal: bool) -> str:
    if internal:
        return _extension(rng)
    return _MSN.pick(rng)


def _forwarded(rng: random.Random, in_out: str, party: _Party) -> str:
    if in_out != "i" or party.internal or rng.random() >= 0.06:
        return ""
    return _extension(rng) if rng.random() < 0.6 else rng.choice(MSNS)


def _contact_fields(rng: random.Random) -> dict[str, str]:
    return {
        "name": rng.choice(_NAMES),
        "firma": rng.choice(_FIRMS),
        "datensatz_id": str(rng.randint(1, 99_999)),
        "datensatz_tabelle": rng.choice(_TABLES),
    }


def _extension(rng: random.Random) -> str:
    return _digits(rng, rng.choice((2, 3, 3, 3, 4)))


def _digits(rng: random.Random, n: int) -> str:
    # A subscriber number never starts with 0 (that would be a trunk or international prefix).
    return str(rng.randrange(10 ** (n - 1), 10**n))
