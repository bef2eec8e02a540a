"""Properties of the look-up, for numbers hypothesis draws: every contact number, written in any
notation the field reader supports, is found from every form a PBX delivers it in; and a number
that is in no contact finds nothing.

Numbers are drawn from real German area codes with subscriber lengths their numbering plan
allows (checked against phonenumbers' validity in the test below), so that every drawn number is
one a contact could really have. The company is in Munich (089, outside prefix 0).
"""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.normalize import NumberNormalizer

MUNICH = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
CRM = ContactSourceSettings(name="crm", dsn="", table="kontakte", priority=10)
ERP = ContactSourceSettings(name="erp", dsn="", table="kunden", priority=20)
# (area code without trunk 0, subscriber lengths)
AREAS = {
    "89": (7, 8), "30": (7, 8), "40": (8,), "221": (7,), "711": (7, 8), "351": (7,),
    "6151": (6, 7), "4131": (6,), "8031": (5, 6), "33204": (5, 6), "171": (7,), "151": (8,),
    "176": (8,),
}  # fmt: skip
Notation = Callable[[str, str], str]


def _pairs(sub: str) -> str:
    return " ".join(sub[i : i + 2] for i in range(0, len(sub), 2))


NOTATIONS: list[Notation] = [
    lambda a, s: f"0{a} {s}",  # DIN 5008
    lambda a, s: f"+49 {a} {s}",  # DIN 5008 / E.123 international
    lambda a, s: f"(0{a}) {s}",  # E.123 national
    lambda a, s: f"+49 (0){a} {s}",  # E.123 with the trunk 0
    lambda a, s: f"0049 {a} {s}",
    lambda a, s: f"0{a}/{s}",  # legacy slash
    lambda a, s: f"0{a} / {_pairs(s)}",
    lambda a, s: f"0{a}-{s}",  # a hyphen after the area code
    lambda a, s: f"+49-{a}-{s}",
    lambda a, s: f"Tel.: 0{a} {s} (Büro)",
    lambda a, s: f"+49 0{a} {s}",
    lambda a, s: f"０{a} {s}".translate(str.maketrans("0123456789", "０１２３４５６７８９")),
]


@st.composite
def numbers(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(st.sampled_from(sorted(AREAS)))
    length = draw(st.sampled_from(AREAS[area]))
    first = draw(st.sampled_from("23456789"))
    rest = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    return area, first + rest


def deliveries(area: str, sub: str) -> list[tuple[str, str, bool]]:
    """(Rufnummer, Amtsholung, incoming) as PBXs deliver a call from or to the number."""
    national = f"0{area}{sub}"
    forms = [
        (national, "", True),  # as the network delivered it
        ("0" + national, "0", True),  # the PBX put its outside prefix in front
        (f"+49{area}{sub}", "", True),
        (f"0049{area}{sub}", "", True),
        (f"00049{area}{sub}", "0", True),
        ("0" + national, "", False),  # dialled with the outside prefix
        (national, "", False),
        (f"00049{area}{sub}", "", False),
    ]
    if area == "89":
        forms += [(sub, "", True), ("0" + sub, "0", True), ("0" + sub, "", False)]
    return forms


def _index(*rows: tuple[str, str, str, str, ContactSourceSettings]) -> ContactIndex:
    return ContactIndex.build(
        [ContactRow(rid, name, company, (phone,), src) for rid, name, company, phone, src in rows],
        MUNICH,
    )


def _found(index: ContactIndex, call: tuple[str, str, bool]) -> tuple[str, str] | None:
    match = index.find(call[0], call[1], incoming=call[2])
    return None if match is None else (match.kind, match.contact.record_id)


def test_the_drawn_numbers_are_valid() -> None:
    for area, lengths in AREAS.items():
        for length in lengths:
            for first in "29":
                number = phonenumbers.parse(f"0{area}{first}{'0' * (length - 1)}", "DE")
                assert phonenumbers.is_valid_number(number), (area, length)


@settings(max_examples=300, deadline=None)
@given(numbers(), st.sampled_from(range(len(NOTATIONS))))
def test_a_contact_number_is_found_from_every_delivery(
    number: tuple[str, str], notation: int
) -> None:
    area, sub = number
    field = NOTATIONS[notation](area, sub)
    index = _index(("7", "Erika Muster", "", field, CRM))
    for call in deliveries(area, sub):
        assert _found(index, call) == ("hit", "7"), (field, call)


@settings(max_examples=200, deadline=None)
@given(numbers(), st.sampled_from(range(len(NOTATIONS))))
def test_a_local_number_alone_is_found_too(number: tuple[str, str], notation: int) -> None:
    _, sub = number
    if len(sub) > 8:
        return
    # grouped: compact digits alone are also a spreadsheet cell that lost its 0 (issue 16)
    index = _index(("7", "Erika Muster", "", f"Tel. {sub[:-4]} {sub[-4:]}", CRM))
    for call in deliveries("89", sub):
        assert _found(index, call) == ("hit", "7"), (sub, call)


DIRECT_DIALS: list[Callable[[str, str, str], str]] = [
    lambda a, b, e: f"0{a} {b}-{e}",  # DIN 5008
    lambda a, b, e: f"+49 {a} {b}-{e}",
    lambda a, b, e: f"+49 (0){a} {b} - {e}",
    lambda a, b, e: f"0{a}/{b}-{e}",
    lambda a, b, e: f"0{a} {b} Dw. {e}",
    lambda a, b, e: f"+49 {a} {b} Durchwahl {e}",
    lambda a, b, e: f"0{a} {b} App. {e}",
    lambda a, b, e: f"+49 {a} {b} ext. {e}",
    lambda a, b, e: f"+49 {a} {b} x{e}",
    lambda a, b, e: f"tel:+49-{a}-{b};ext={e}",
]


@settings(max_examples=300, deadline=None)
@given(
    numbers(),
    st.sampled_from(range(len(DIRECT_DIALS))),
    st.text("0123456789", min_size=2, max_size=3).filter(lambda e: e[0] != "0"),
    st.text("0123456789", min_size=2, max_size=3).filter(lambda e: e[0] != "0"),
)
def test_a_direct_dial_is_its_persons_and_other_extensions_the_companys(
    number: tuple[str, str], notation: int, ext: str, other: str
) -> None:
    area, base = number
    if area in ("171", "151", "176") or ext.startswith(other) or other.startswith(ext):
        return  # mobiles have no extensions; prefix-related extensions are one range
    index = _index(
        ("1", "", "ACME GmbH", f"0{area} {base}-0", ERP),
        ("2", "Eva Maier", "ACME GmbH", DIRECT_DIALS[notation](area, base, ext), CRM),
    )
    for call in deliveries(area, base + ext):
        assert _found(index, call) == ("hit", "2"), call
    for call in deliveries(area, base + other):
        assert _found(index, call) == ("company", "1"), call
    for call in deliveries(area, base):
        assert _found(index, call) == ("hit", "1"), call


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers(), min_size=1, max_size=5, unique=True), numbers())
def test_a_number_in_no_contact_finds_nothing(
    contacts: list[tuple[str, str]], stranger: tuple[str, str]
) -> None:
    keys = {f"{a}{s}" for a, s in contacts}
    if f"{stranger[0]}{stranger[1]}" in keys:
        return
    index = _index(
        *(
            (str(i), f"Person {i}", "", NOTATIONS[i % len(NOTATIONS)](a, s), CRM)
            for i, (a, s) in enumerate(contacts)
        )
    )
    for call in deliveries(*stranger):
        found = _found(index, call)
        assert found is None, (contacts, stranger, call, found)
