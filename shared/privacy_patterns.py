"""What a privacy rule matches: its conditions compiled to patterns over the call's numbers.

Numbers in rules are read as the look-up reads journal numbers (shared/normalize.py, imported only
when a rule needs numbers): `089 1234567`, `+49 89 1234567` and `0049891234567` are one number.
A local pattern is an extension: exact (`200`), a range (`200-219`) or a prefix (`0891*`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cti_journal.shared.config import LookupSettings, PrivacyRule
from cti_journal.shared.convert import is_digits
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.message import JournalEntry

SEPARATORS: Final = str.maketrans("", "", " -/().\t")
_RANGE: Final = re.compile(r"([0-9]+)-([0-9]+)", re.ASCII)


class Normalizer(Protocol):
    """What the rules need of the look-up's number reading (shared/normalize.py)."""

    country_code: str
    area_code: str
    max_extension_digits: int

    def to_key(self, dial: str, *, foreign_as_is: bool = False) -> int | None: ...

    def journal(self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False) -> Any: ...


def load_normalizer(lookup: LookupSettings) -> Normalizer:
    """The number reading the look-up uses, so that rules read numbers as it does. Imported here,
    when a rule needs numbers: the reader loads phonenumbers' metadata, which `probe` (the
    container health check, every few seconds) and configs without number rules never need."""
    from cti_journal.shared.normalize import NumberNormalizer

    return NumberNormalizer.from_settings(lookup)


# -- patterns -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalPattern:
    exact: str = ""
    prefix: str = ""
    low: int = -1
    high: int = -1
    lengths: tuple[int, int] = (0, 0)

    def matches(self, digits: str) -> bool:
        if self.exact:
            return digits == self.exact
        if self.prefix:
            return digits.startswith(self.prefix)
        # is_digits, not isdigit: a LokaleRufnummer of superscripts ("⁴⁷⁹⁵") passes isdigit()
        # and makes int() raise; it is no extension of ours, so no rule's range holds it.
        if not is_digits(digits) or not self.lengths[0] <= len(digits) <= self.lengths[1]:
            return False
        return self.low <= int(digits) <= self.high


def local_pattern(text: str, where: str) -> LocalPattern:
    raw = text.strip()
    if m := _RANGE.fullmatch(raw):
        low, high = m.group(1), m.group(2)
        if int(low) > int(high):
            raise ConfigError(where, f"range {raw!r} runs backwards")
        return LocalPattern(low=int(low), high=int(high), lengths=(len(low), len(high)))
    prefix = raw.endswith("*")
    digits = raw.removesuffix("*").translate(SEPARATORS)
    if not is_digits(digits):
        raise ConfigError(
            where, f"{raw!r}: expected digits, a range such as 200-219, or a prefix such as 0891*"
        )
    return LocalPattern(prefix=digits) if prefix else LocalPattern(exact=digits)


@dataclass(frozen=True, slots=True)
class NumberPattern:
    key: int | None = None  # an exact number
    key_prefix: str = ""  # E.164 digits a number starts with
    extension: str = ""  # an internal extension (exact)

    def matches(self, keys: Sequence[int], extension: str) -> bool:
        if self.extension:
            return extension == self.extension
        if self.key is not None:
            return self.key in keys
        return any(str(k).startswith(self.key_prefix) for k in keys)


def number_pattern(text: str, normalizer: Normalizer, where: str) -> NumberPattern:
    raw = text.strip()
    prefix = raw.endswith("*")
    dial = raw.removesuffix("*").translate(SEPARATORS)
    body = dial[1:] if dial.startswith("+") else dial
    if not is_digits(body):
        raise ConfigError(where, f"{raw!r}: expected a phone number, optionally ending in *")
    if not prefix and is_digits(dial) and len(dial) <= normalizer.max_extension_digits:
        return NumberPattern(extension=dial)
    if prefix:
        return NumberPattern(key_prefix=_key_prefix(dial, normalizer, where))
    key = normalizer.to_key(dial)
    if key is None:
        raise ConfigError(where, f"{raw!r} is not a number the look-up can read")
    return NumberPattern(key=key)


def _key_prefix(dial: str, normalizer: Normalizer, where: str) -> str:
    """The E.164 digits every number dialled as `dial…` starts with."""
    if dial.startswith("+"):
        return dial[1:]
    if dial.startswith("00"):
        return dial[2:]
    if dial.startswith("0"):
        return normalizer.country_code + dial[1:]
    if not normalizer.area_code:
        raise ConfigError(where, f"{dial!r}* is a local number: set lookup.area_code, or add 0")
    return normalizer.country_code + normalizer.area_code + dial


@dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: PrivacyRule
    label: str
    local: tuple[LocalPattern, ...]
    number: tuple[NumberPattern, ...]

    @property
    def needs_contact(self) -> bool:
        return bool(self.rule.contact_source)

    def matches(self, entry: JournalEntry, normalizer: Normalizer | None) -> bool:
        rule = self.rule
        if rule.direction != "any" and entry.in_out != rule.direction[0]:
            return False
        if rule.states and entry.verb_zustand not in rule.states:
            return False
        if rule.lcr and entry.lcr not in rule.lcr:
            return False
        if rule.amtsholung and entry.amtsholung not in rule.amtsholung:
            return False
        if rule.contact_source and entry.datensatz_tabelle not in rule.contact_source:
            return False
        if self.local:
            local = entry.lokale_rufnummer.translate(SEPARATORS)
            if not any(p.matches(local) for p in self.local):
                return False
        if self.number:
            assert normalizer is not None
            keys, extension = _read(entry, normalizer)
            if not any(p.matches(keys, extension) for p in self.number):
                return False
        return True


def _read(entry: JournalEntry, normalizer: Normalizer) -> tuple[tuple[int, ...], str]:
    # As the look-up reads it: the outside prefix is stripped from outgoing calls only.
    found = normalizer.journal(entry.rufnummer, entry.amtsholung, incoming=entry.in_out == "i")
    if found is None:
        return (), ""
    return tuple(found.keys), str(found.extension)
