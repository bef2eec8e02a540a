"""Numbers as people type them and as PBXs deliver them (the rules in shared/normalize.py)."""

from __future__ import annotations

import random

import pytest

from cti_journal.shared.fields import ContactNumber, FieldReader
from cti_journal.shared.normalize import JournalNumber, NumberNormalizer
from tests.support.lookup_dataset import generate

MUNICH = NumberNormalizer(region="DE", area_code="89", outside_prefix="0", max_extension_digits=4)


@pytest.mark.parametrize(
    "typed",
    [
        "089/123456",
        "0049 89 123456",
        "(089) 12 34 56",
        "+49 089 123456",
        "+49-89-123456",
        "089.123.456",
        "Tel. 089 123456 (Zentrale)",
        "Büro: 089 123456",
        "123456",  # local: the configured area code
    ],
)
def test_typed_forms_of_one_number(typed: str) -> None:
    assert MUNICH.contact_numbers(typed) == [ContactNumber(4989123456)]


@pytest.mark.parametrize(
    ("typed", "keys"),
    [
        ("089 123456 / 0171 2345678", [4989123456, 491712345678]),
        ("089/123456/0171 2345678", [4989123456, 491712345678]),
        ("089 123456/(0171) 2345678", [4989123456, 491712345678]),
        ("089 123456, 0171 2345678", [4989123456, 491712345678]),
        ("089 123456; 0171 2345678", [4989123456, 491712345678]),
        ("089 123456 oder 0171 2345678", [4989123456, 491712345678]),
        ("089 123456\n0171 2345678", [4989123456, 491712345678]),
        ("Büro: 089 123456 privat: 0171 2345678", [4989123456, 491712345678]),
        ("0043 1 2345678", [4312345678]),
        ("+41 44 123 45 67", [41441234567]),
    ],
)
def test_several_numbers_in_one_field(typed: str, keys: list[int]) -> None:
    assert [n.key for n in MUNICH.contact_numbers(typed)] == keys


def test_switchboard_written_with_dash_zero() -> None:
    board = ContactNumber(4989123456, 4989123456, "0")
    assert MUNICH.contact_numbers("089 123456-0") == [board]
    assert MUNICH.contact_numbers("+49 89 123456 - 0") == [board]
    # DIN 5008 direct dials: the base is the company's, the direct line the person's.
    assert MUNICH.contact_numbers("089 123456-77") == [
        ContactNumber(498912345677, 4989123456, "77")
    ]
    assert MUNICH.contact_numbers("089 1234-50") == [ContactNumber(4989123450, 49891234, "50")]
    assert MUNICH.contact_numbers("+49 (0)89 1234-56") == [
        ContactNumber(4989123456, 49891234, "56")
    ]


def test_a_foreign_main_number_with_an_extension_keeps_its_main_number() -> None:
    # Switzerland's numbers are 9 digits: main + extension is no possible number, so there is
    # no direct line to index, but the main number stays.
    assert MUNICH.contact_numbers("+41 31 7901242-22") == [ContactNumber(0, 41317901242, "22")]
    assert [str(n) for n in MUNICH.contact_numbers("0041 61 4889673 - 0")] == ["+41614889673~0"]


@pytest.mark.parametrize("junk", ["", "k.A.", "12.03.2024", "App. 12", "-", "Zentrale"])
def test_no_number_in_junk(junk: str) -> None:
    assert MUNICH.contact_numbers(junk) == []


def test_local_numbers_need_an_area_code() -> None:
    assert NumberNormalizer(area_code="").contact_numbers("1234567") == []
    assert NumberNormalizer(area_code="").journal("1234567") is None


def test_extensions_of_an_internal_directory() -> None:
    assert MUNICH.extensions("App. 123") == ["123"]
    assert MUNICH.extensions("-77, 089 123456-77") == ["77"]
    assert MUNICH.extensions("12345") == []  # longer than max_extension_digits


@pytest.mark.parametrize(
    "anonymous", ["", "  ", "anonym", "Unknown", "unbekannt", "**31#", "Müller"]
)
def test_suppressed_numbers_are_not_looked_up(anonymous: str) -> None:
    assert MUNICH.journal(anonymous) is None


@pytest.mark.parametrize(
    ("delivered", "amtsholung", "keys"),
    [
        # outside prefix + national: rule 6a, the only valid reading
        ("0089123456", "", (4989123456,)),
        ("0089123456", "0", (4989123456,)),
        # national without the prefix: 6b first, then 6c (0 + local 89123456)
        ("089123456", "", (4989123456, 498989123456)),
        # prefix + international: 0 + 0049…
        ("00049891234567", "", (49891234567,)),
        # international without the prefix
        ("+49 89 123456", "", (4989123456,)),
        # … which with prefix 0 first reads as 0 + 04989… (a national number); both are tried
        ("004989123456", "", (494989123456, 4989123456)),
        # foreign: with the prefix it reads 0 + 0431 (Kiel) first, as delivered (Vienna) second
        ("00431234567", "", (49431234567, 431234567)),
        ("000431234567", "", (431234567,)),
        # local, with and without the prefix
        ("1234567", "", (49891234567,)),
        ("01234567", "", (491234567, 49891234567)),
        # another PBX prefix from the entry
        ("9089123456", "9", (4989123456, 4989 * 10**10 + 9089123456)),
    ],
)
def test_pbx_deliveries(delivered: str, amtsholung: str, keys: tuple[int, ...]) -> None:
    assert MUNICH.journal(delivered, amtsholung) == JournalNumber(keys=keys)


def test_short_numbers_are_extensions() -> None:
    assert MUNICH.journal("123") == JournalNumber(extension="123")
    assert MUNICH.journal("0123") == JournalNumber(extension="0123")
    assert MUNICH.journal("01234") != JournalNumber(extension="01234")


def _dial_strings_of_dataset() -> list[str]:
    dials: list[str] = []

    def record(dial: str) -> int | None:
        dials.append(dial)
        return MUNICH.to_key(dial)

    reader = FieldReader("DE", "89", record, lambda _dial: True)
    data = generate(calls=2000)
    for row in data.rows:
        for f in row.phones:
            reader.read(f)
    dials += [c.rufnummer.replace(" ", "") for c in data.calls if c.rufnummer[:1].isdigit()]
    return dials


def test_fast_path_equals_phonenumbers_on_the_test_set() -> None:
    """The arithmetic path is an optimisation: on every dial string of the test set it must give
    exactly what phonenumbers gives."""
    dials = _dial_strings_of_dataset()
    assert len(dials) > 8_000
    # One deliberate difference: phonenumbers reads "000…" as a national number "00…"; to us it
    # is no number (it only arises as the prefix + "0049…", which rule 6a reads).
    triple = [d for d in dials if d.startswith("000")]
    assert triple and all(MUNICH.to_key(d) is None for d in triple)
    differ = [d for d in dials if d not in triple and MUNICH.to_key(d) != MUNICH._to_key_slow(d)]
    assert differ == []


def test_fast_path_equals_phonenumbers_on_random_numbers() -> None:
    rnd = random.Random(1)
    dials = []
    for _ in range(20_000):
        body = str(rnd.randint(1, 9)) + "".join(
            rnd.choice("0123456789") for _ in range(rnd.randint(4, 13))
        )
        dials.append(rnd.choice(("0", "+49", "0049", "+490", "")) + body)
    differ = [d for d in dials if MUNICH.to_key(d) != MUNICH._to_key_slow(d)]
    assert differ == []


@pytest.mark.parametrize(
    ("delivered", "incoming", "keys"),
    [
        # An incoming number without Amtsholung is what the network delivered: no prefix.
        ("00431234567", True, (431234567,)),
        ("0431234567", True, (49431234567,)),
        ("1234567", True, (49891234567,)),
        # An outgoing one was dialled with the configured outside prefix.
        ("00431234567", False, (49431234567, 431234567)),
    ],
)
def test_empty_amtsholung_strips_the_outside_prefix_only_when_dialled(
    delivered: str, incoming: bool, keys: tuple[int, ...]
) -> None:
    assert MUNICH.journal(delivered, "", incoming=incoming) == JournalNumber(keys=keys)
    # With the prefix named in the entry, both directions strip it.
    assert MUNICH.journal("0" + delivered, "0", incoming=incoming) is not None


def test_contact_validity_by_shape_equals_phonenumbers() -> None:
    """Contact numbers must be valid; home numbers are checked by their first five significant
    digits and length, cached. That must give what phonenumbers gives for the whole number."""
    import phonenumbers

    rnd = random.Random(7)
    normalizer = NumberNormalizer(region="DE", area_code="89")
    differ = []
    shapes = [(str(rnd.randint(10000, 99999)), rnd.randint(6, 13)) for _ in range(250)]
    for _ in range(5_000):
        head, length = rnd.choice(shapes)  # many numbers per shape: the cache is used
        nsn = head + "".join(rnd.choice("0123456789") for _ in range(length - 5))
        number = phonenumbers.PhoneNumber(country_code=49, national_number=int(nsn))
        expected = phonenumbers.is_valid_number(number)
        if (normalizer.contact_key("0" + nsn) is not None) != expected:
            differ.append(nsn)
    assert differ == []
