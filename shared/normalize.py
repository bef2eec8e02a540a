"""Phone numbers to E.164 keys: contact fields as people type them, journal numbers as PBXs
send them.

A key is the E.164 number's digits as an `int` (`+49 89 123456` → 4989123456): ints are compact,
hash fast and compare exactly, and E.164 has no leading zeros to lose.

The meaning of every number is defined by the `phonenumbers` library (`to_key_slow`): a dial
string is parsed in the configured region, must be a *possible* number and have at least
`MIN_NSN_DIGITS` significant digits. Parsing costs ~40 µs, too slow for a million contacts, so the
easy case (a home-country number of 6–13 significant digits) is converted arithmetically; the
fast path is only taken in regions whose trunk prefix is "0" and international prefix "00", and a
unit test checks that both paths agree on the whole generated test set.

Contact fields are read by `shared/fields.py` (the conventions people type) after
`shared/fieldtext.py` (Unicode by its properties). Journal numbers:

1. Empty, `anonym`, `unknown`, ... or anything with letters, `*`, `#` or digits that are not
   decimal digits (`²`, `①`) → no look-up. `+…` is international. At most
   `max_extension_digits` digits → internal extension.
2. The outside prefix is the entry's `Amtsholung`; when that is empty, `lookup.outside_prefix` for
   an outgoing call (the user dialled it) and none for an incoming call (the network's caller
   number carries none: stripping a `0` there turns `0043…` Vienna into `043…` Kiel).
3. The candidates are tried in this order, keeping the valid ones: (a) with the outside
   prefix stripped, when what remains starts with `0` (`0089…` → `089…`, `00049…` → `0049…`);
   (b) as delivered, when it starts with `0`; (c) prefix stripped, as a local number;
   (d) as delivered, as a local number. The first candidate with an exact record wins, then the
   first with a switchboard record.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

import phonenumbers

from cti_journal.shared.config import LookupSettings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.fields import ContactNumber, FieldReader, Reading
from cti_journal.shared.fieldtext import ascii_digits, is_ascii_digits

MIN_NSN_DIGITS: Final = 5  # shorter "numbers" in CRM fields are postcodes, room numbers, typos
_FAST_NSN: Final = range(6, 14)  # NSN lengths done arithmetically; others go to phonenumbers

ANONYMOUS: Final = frozenset(
    {
        "anonym",
        "anonymous",
        "unknown",
        "unbekannt",
        "unterdrückt",
        "unterdrueckt",
        "private",
        "privat",
        "withheld",
        "restricted",
        "suppressed",
        "none",
        "null",
    }
)

_JOURNAL_SEPARATORS = str.maketrans("", "", " -/().\t")


@dataclass(frozen=True, slots=True)
class JournalNumber:
    """What a journal number may mean: an internal extension, or E.164 keys, best first."""

    extension: str = ""
    keys: tuple[int, ...] = ()


class NumberNormalizer:
    def __init__(
        self,
        region: str = "DE",
        area_code: str = "",
        outside_prefix: str = "0",
        max_extension_digits: int = 4,
        own_number: str = "",
        *,
        shortcuts: bool = True,
    ) -> None:
        self.region = region.upper()
        self.area_code = area_code.lstrip("0")
        self.outside_prefix = outside_prefix
        self.max_extension_digits = max_extension_digits
        self.country_code = str(phonenumbers.country_code_for_region(self.region))
        meta = phonenumbers.PhoneMetadata.metadata_for_region(self.region)
        self._trunk = (meta.national_prefix or "") if meta else ""
        self._intl = (meta.international_prefix or "") if meta else ""
        # The arithmetic path hard-codes "0" / "00"; elsewhere (e.g. US "1" / "011") every number
        # goes through phonenumbers.
        self._fast = self._trunk == "0" and self._intl == "00"
        mobile = meta.mobile.national_number_pattern if meta and meta.mobile else None
        self._mobile = re.compile(mobile) if mobile else None
        # Cached per instance: foreign numbers recur in a journal and cost ~40 µs each to parse.
        self.to_key_slow = functools.lru_cache(maxsize=65536)(self._to_key_slow)
        self._valid_shapes: dict[tuple[str, int], bool] = {}
        self._reader = FieldReader(
            self.region,
            self.area_code,
            self.contact_key,
            self._possible,
            shortcuts=shortcuts,
            home_key=self._home_key if self._fast else None,
        )
        self.own_base = self._own_base(own_number)

    def _own_base(self, own_number: str) -> str:
        """The digits of the company's own number block (`089 1234-0` → "49891234"), "" if
        none is configured. Raises ValueError when it is not a number we can read."""
        if not own_number.strip():
            return ""
        numbers = self.contact_numbers(own_number)
        if len(numbers) != 1:
            raise ValueError(f"{own_number!r} is not one phone number (e.g. 089 1234-0)")
        number = numbers[0]
        return str(number.base if number.switchboard else number.key)

    @classmethod
    def from_settings(cls, settings: LookupSettings) -> NumberNormalizer:
        try:
            return cls(
                settings.region,
                settings.area_code,
                settings.outside_prefix,
                settings.max_extension_digits,
                settings.own_number,
            )
        except ValueError as exc:
            raise ConfigError("lookup.own_number", str(exc)) from exc

    # -- one dial string ------------------------------------------------------------------------

    def to_key(self, dial: str, *, foreign_as_is: bool = False) -> int | None:
        """The key of a dial string: digits with an optional leading `+`, as one would dial it.

        `foreign_as_is` (journal numbers): a foreign number without a trunk 0 is taken as the
        network delivered it. Parsing it costs ~40 µs, and a PBX's `0`+`030…` (Berlin) also
        reads as `0030…` (Greece): every such miss would be parsed. A key that phonenumbers
        would have rejected is in no index, so the look-up result is the same.
        """
        if not self._fast:
            return self.to_key_slow(dial)
        first = dial[:1]
        if first == "0":
            if dial[1:2] == "0":
                return self._international(dial[2:], dial, foreign_as_is)
            if len(dial) - 1 in _FAST_NSN:  # the common case, inlined: one call per look-up
                return int(self.country_code + dial[1:])
            return self.to_key_slow(dial)
        if first == "+":
            return self._international(dial[1:], dial, foreign_as_is)
        if not self.area_code:
            return None  # a local number means nothing without the company's area code
        return self._national(self.area_code + dial, "0" + self.area_code + dial)

    def _international(self, digits: str, dial: str, foreign_as_is: bool) -> int | None:
        cc = self.country_code
        if digits.startswith(cc):
            nsn = digits[len(cc) :]
            if nsn[:1] == "0" and nsn[1:2] not in ("", "0"):
                nsn = nsn[1:]  # "+49 089…": phonenumbers drops the trunk 0 people add by habit
            return self._national(nsn, dial)
        cc_length = _country_code_length(digits[:3])
        if not cc_length:
            # phonenumbers rejects an unknown country code, too; "000…" it reads as a national
            # "00…", which means nothing: deliberately None.
            return None
        if foreign_as_is and digits[cc_length : cc_length + 1] not in ("", "0"):
            return int(digits) if 7 <= len(digits) <= 15 else None
        return self.to_key_slow(dial)

    def _national(self, nsn: str, dial: str) -> int | None:
        if len(nsn) in _FAST_NSN and nsn[0] != "0":
            return int(self.country_code + nsn)
        return self.to_key_slow(dial)

    def _to_key_slow(self, dial: str) -> int | None:
        """The reference meaning of a dial string, by phonenumbers."""
        if dial and dial[0] not in "+0":
            if not self.area_code:
                return None
            dial = self._trunk + self.area_code + dial
        try:
            number = phonenumbers.parse(dial, self.region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        nsn = phonenumbers.national_significant_number(number)
        if len(nsn) < MIN_NSN_DIGITS:
            return None
        return int(f"{number.country_code}{nsn}")

    def contact_key(self, dial: str) -> int | None:
        """The key of a dial string from a contact field: a *valid* number (an area code that
        exists, a length its plan allows), not only a possible one: `0999 12345` or a French
        `01 42 68 53 00` read as German must give no key."""
        key = self.to_key(dial)
        if key is None:
            return None
        text, cc = str(key), self.country_code
        if not text.startswith(cc):
            return key if _valid_e164(text) else None
        return key if self._home_valid(text[len(cc) :]) else None

    def _home_valid(self, nsn: str) -> bool:
        # Home numbers: validity by the first 5 significant digits and the length, cached (a
        # unit test checks this against phonenumbers): ~9 µs a number is too slow for a million.
        shape = (nsn[:5], len(nsn))
        valid = self._valid_shapes.get(shape)
        if valid is None:
            number = phonenumbers.PhoneNumber(
                country_code=int(self.country_code), national_number=int(nsn)
            )
            valid = self._valid_shapes[shape] = phonenumbers.is_valid_number(number)
        return valid

    def _home_key(self, nsn: str) -> int | None:
        """contact_key of `0` + `nsn` (or `+CC` + `nsn`) for an `nsn` of 6–13 digits without a
        leading 0, in a region of the arithmetic path: what to_key's fast path and contact_key
        make of it, in one step (the field reader's commonest case)."""
        return int(self.country_code + nsn) if self._home_valid(nsn) else None

    def _possible(self, dial: str) -> bool:
        return self.to_key(dial) is not None

    def is_mobile(self, key: int) -> bool:
        """A home-country mobile number: never a company's switchboard base."""
        text = str(key)
        cc = self.country_code
        if not text.startswith(cc) or self._mobile is None:
            return False
        return self._mobile.fullmatch(text[len(cc) :]) is not None

    # -- contact fields -------------------------------------------------------------------------

    def read(self, field: str | None) -> Reading:
        """Every number in a field as a person typed it, and what was ignored and why."""
        return self._reader.read(field, self.max_extension_digits)

    def contact_numbers(self, field: str | None) -> list[ContactNumber]:
        return self._reader.read(field, self.max_extension_digits).numbers if field else []

    def extensions(self, field: str | None) -> list[str]:
        """Internal extensions in a field of an internal directory: short numbers (`123`,
        `App. 123`), and full numbers inside the company's own block (`own_number` 089 1234-0:
        `089 1234-123` and `+49 89 1234123` are extension 123)."""
        if not field:
            return []
        reading = self.read(field)
        found = list(reading.extensions)
        base, most = self.own_base, self.max_extension_digits
        for number in reading.numbers if base else ():
            # (the switchboard 089 1234-0 itself is nobody's extension "0")
            digits = str(number.key)
            inside = digits.startswith(base) and 0 < len(digits) - len(base) <= most
            if number.key and not number.switchboard and inside:
                found.append(digits[len(base) :])
        return found

    # -- journal numbers ------------------------------------------------------------------------

    def journal(
        self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False
    ) -> JournalNumber | None:
        """What to look up for a journal number; None for suppressed or unusable numbers."""
        dial = rufnummer
        if not is_ascii_digits(dial):
            text = rufnummer.strip()
            if not text or text.lower() in ANONYMOUS:
                return None
            # Digits of any script by their decimal value; `²` and `①` are no digits (issue 20:
            # `"²".isdigit()` is True, `int("²")` raises): such a number is not looked up.
            dial = text.translate(_JOURNAL_SEPARATORS)
            plus = dial[:1] == "+"
            digits = ascii_digits(dial[1:] if plus else dial)
            if digits is None:
                return None  # letters, * or #: a feature code or a name, not a number
            if plus:
                key = self.to_key("+" + digits, foreign_as_is=True)
                return JournalNumber(keys=(key,)) if key is not None else None
            dial = digits
        if len(dial) <= self.max_extension_digits:
            return JournalNumber(extension=dial)
        prefix = amtsholung or ("" if incoming else self.outside_prefix)
        keys = self._candidates(dial, prefix)
        return JournalNumber(keys=keys) if keys else None

    def _candidates(self, dial: str, prefix: str) -> tuple[int, ...]:
        # Rule 3: (a) prefix stripped, national/international; (b) as delivered, national/
        # international; (c) prefix stripped, local; (d) as delivered, local.
        order: tuple[str, ...] = (dial,)
        if prefix and dial.startswith(prefix):
            stripped = dial[len(prefix) :]
            # a+b, a+d or c+d; else b+c
            first = stripped[:1] == "0" or dial[0] != "0"
            order = (stripped, dial) if first else (dial, stripped)
        keys: list[int] = []
        for candidate in order:
            if len(candidate) > self.max_extension_digits:
                key = self.to_key(candidate, foreign_as_is=True)
                if key is not None and key not in keys:
                    keys.append(key)
        return tuple(keys)


@functools.lru_cache(maxsize=65536)
def _valid_e164(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


@functools.lru_cache(maxsize=1024)
def _country_code_length(digits: str) -> int:
    """Length of the country code `digits` (the first three of a number) start with; 0: none."""
    # Country codes are prefix-free, 1–3 digits.
    if not digits or digits[0] == "0":
        return 0
    for n in (1, 2, 3):
        if len(digits) >= n and int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return n
    return 0
