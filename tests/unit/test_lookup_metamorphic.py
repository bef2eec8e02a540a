"""A metamorphic property of the look-up (issue 16): a contact number written in *any*
combination of the transformations contact fields go through — a notation (DIN 5008, E.123,
RFC 3966), a script's digits, Unicode spaces and dashes, invisible characters, a code-page or
HTML round trip, labels and remarks with digits, spreadsheet text markers — is found from every
form a PBX delivers; and a number one digit off, a prefix of it, or it plus digits is found by
nobody.

The transformations are the families of tests/corpus/exports/README.md and of UAX #44/#15: each
is a function of the field's text that keeps its meaning for a careful reader. They are applied
in any order and number (hypothesis draws the list), and the reading must not change.
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.shared.config import ContactSourceSettings
from tests.unit.test_lookup_properties import MUNICH, deliveries, numbers

CRM = ContactSourceSettings(name="crm", dsn="", table="kontakte", priority=10)
Transform = Callable[[str, random.Random], str]

# Notations: (area code without trunk 0, subscriber) → field
NOTATIONS: list[Callable[[str, str], str]] = [
    lambda a, s: f"0{a} {s}",
    lambda a, s: f"+49 {a} {s}",
    lambda a, s: f"(0{a}) {s}",
    lambda a, s: f"+49 (0){a} {s}",
    lambda a, s: f"0049 {a} {s}",
    lambda a, s: f"0{a}/{s}",
    lambda a, s: f"0{a} {s[:-4]} {s[-4:]}",
    lambda a, s: f"0{a}{s}",
    lambda a, s: f"+49{a}{s}",
    lambda a, s: f"tel:+49-{a}-{s}",
    lambda a, s: f'<a href="tel:+49{a}{s}">0{a} {s}</a>',
    lambda a, s: f"https://wa.me/49{a}{s}",
]

_SCRIPTS = (0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE)  # zeros of Nd blocks


def _digits(text: str, rnd: random.Random) -> str:
    zero = rnd.choice(_SCRIPTS)
    return "".join(chr(zero + int(c)) if c.isascii() and c.isdigit() else c for c in text)


def _spaces(text: str, rnd: random.Random) -> str:
    space = rnd.choice(("\u00a0", "\u2009", "\u202f", "\u3000", "\u2007", "  ", "\t"))
    return text.replace(" ", space)


def _invisible(text: str, rnd: random.Random) -> str:
    mark = rnd.choice(("\u200b", "\u00ad", "\u200e", "\u2060", "\ufeff", "\u200d", "\x07"))
    i = rnd.randrange(len(text) + 1)
    return text[:i] + mark + text[i:]


_BIDI = (("\u2066", "\u2069"), ("\u2068", "\u2069"), ("\u202a", "\u202c"), ("\u200e", ""))


def _isolate(text: str, rnd: random.Random) -> str:
    opening, closing = rnd.choice(_BIDI)  # isolates, an embedding, a mark (UAX #9)
    return f"{opening}{text}{closing}"


def _mojibake(text: str, _rnd: random.Random) -> str:
    try:
        return text.encode("utf-8").decode("cp1252")
    except UnicodeDecodeError:
        return text  # (a character cp1252 has no place for: that text would not go this way)


def _entities(text: str, rnd: random.Random) -> str:
    if rnd.random() < 0.5:
        return text.replace(" ", "&nbsp;")
    return "".join(f"&#{ord(c)};" if c in "+ " else html.escape(c) for c in text)


def _label(text: str, rnd: random.Random) -> str:
    return rnd.choice(("Tel.: ", "Telefon ", "Tel 2: ", "Büro 2. OG: ", "Mobil: ")) + text


def _remark(text: str, rnd: random.Random) -> str:
    return text + rnd.choice((" (nur vormittags)", " (2. OG)", " (Mo-Fr 9-17 Uhr)", " privat"))


def _padding(text: str, rnd: random.Random) -> str:
    return rnd.choice((" ", "\r\n", "  ")) + text + " " * rnd.randrange(40)


def _excel(text: str, rnd: random.Random) -> str:
    return rnd.choice((f'="{text}"', f"'{text}"))


# Transforms that must come first (they give the field's whole text a new shape) come last here.
INNER: list[Transform] = [_digits, _spaces, _invisible, _label, _remark, _padding]
OUTER: list[Transform] = [_isolate, _mojibake, _entities, _excel]


def write(
    area: str, sub: str, notation: int, inner: list[int], outer: int | None, seed: int
) -> str:
    rnd = random.Random(seed)
    text = NOTATIONS[notation](area, sub)
    if notation in (9, 10, 11):  # a link is not typed with labels or other scripts
        inner = [i for i in inner if INNER[i] in (_invisible, _padding)]
    for i in inner:
        text = INNER[i](text, rnd)
    if outer is not None and not (OUTER[outer] is _excel and notation in (9, 10, 11)):
        text = OUTER[outer](text, rnd)
    return text


def _index(field: str) -> ContactIndex:
    return ContactIndex.build([ContactRow("7", "Erika Muster", "", (field,), CRM)], MUNICH)


def _found(index: ContactIndex, call: tuple[str, str, bool]) -> tuple[str, str] | None:
    match = index.find(call[0], call[1], incoming=call[2])
    return None if match is None else (match.kind, match.contact.record_id)


FIELDS = st.tuples(
    numbers(),
    st.sampled_from(range(len(NOTATIONS))),
    st.lists(st.sampled_from(range(len(INNER))), max_size=4),
    st.none() | st.sampled_from(range(len(OUTER))),
    st.integers(0, 2**32),
)


@settings(max_examples=400, deadline=None)
@given(FIELDS)
def test_a_number_in_any_transformation_is_found_from_every_delivery(
    drawn: tuple[tuple[str, str], int, list[int], int | None, int],
) -> None:
    (area, sub), notation, inner, outer, seed = drawn
    field = write(area, sub, notation, inner, outer, seed)
    index = _index(field)
    for call in deliveries(area, sub):
        assert _found(index, call) == ("hit", "7"), (field, call, MUNICH.read(field).ignored)


def _near(area: str, sub: str, rnd: random.Random) -> list[str]:
    """Numbers near `0<area><sub>`: one digit off, a prefix, the number plus digits."""
    national = f"0{area}{sub}"
    i = rnd.randrange(len(area) + 1, len(national))
    off = national[:i] + str((int(national[i]) + rnd.randrange(1, 10)) % 10) + national[i + 1 :]
    return [off, national[:-1], national[:-2], national + "0", national + str(rnd.randrange(100))]


@settings(max_examples=300, deadline=None)
@given(FIELDS)
def test_a_number_near_it_is_found_by_nobody(
    drawn: tuple[tuple[str, str], int, list[int], int | None, int],
) -> None:
    (area, sub), notation, inner, outer, seed = drawn
    field = write(area, sub, notation, inner, outer, seed)
    index = _index(field)
    for near in _near(area, sub, random.Random(seed)):
        for call in ((near, "", True), ("0" + near, "0", True), ("+49" + near[1:], "", True)):
            assert _found(index, call) is None, (field, call)
