"""Contact phone fields as people type them → the numbers they mean (run at index build).

The conventions read here, and where they come from (the README's "Contact look-up" lists them
with examples):

- DIN 5008 (German business correspondence): `030 12345-67`, `+49 30 12345-67`: groups by
  spaces, a hyphen before the direct-dial extension, `-0` for the switchboard.
- ITU-T E.123: `(030) 1234567` (national, area code in parentheses), `+49 30 1234567`
  (international); `+49 (0)30 …`, the trunk 0 in parentheses, is the common mix of both.
- The legacy slash (pre-2001 DIN 5008 and still everywhere in old data): `030/1234567`,
  `0221 / 8765048`: area code, slash, subscriber number: ONE number.
- Extension words and marks from German and English address books and CRM exports: `Dw.`, `DW`,
  `Durchwahl`, `App.`, `Apparat`, `Nst.`, `Nebenstelle`, `ext.`, `extension`, `x123`.
- Several numbers in one field (`, ; |`, new lines, `oder`, `bzw.`, `/` before a new number),
  where a second number after a slash may share the first one's area code (`089 123456 /
  123457`); labels (`Tel.:`, `Handy`, `Zentrale`, `privat`); dates and postcodes that are not
  numbers.

What is a valid number, its country code, its area code (national destination code) and whether a
number with an extension is still a possible number: all from `phonenumbers` (libphonenumber's
metadata). Hand-written here is only what people type around numbers, which no library knows.

Never invent a number: a piece that cannot be read with confidence gives no number and is
reported as ignored, with the reason (`cti-journal lookup explain`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import phonenumbers

MAX_EXTENSION_DIGITS: Final = 5  # a direct-dial suffix; longer tails are not extensions
_SPACES = str.maketrans({"\u00a0": " ", "\u2009": " ", "\u202f": " ", "\t": " "})
_DASHES = str.maketrans({"–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-"})
_SEGMENTS = re.compile(r"[,;|\n\r]+|\s+(?:oder|or|und|and|bzw\.?|sowie)\s+|\s+&\s+", re.IGNORECASE)
_DATE = re.compile(r"(?<![\d.])(?:\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})|\d{4}-\d\d-\d\d)(?![\d.])")
_POSTCODE = re.compile(
    r"(?:\b[A-Z]{1,2}\s?-\s?\d{4,5}\b|(?<![\d+\-/(])\b\d{5}\b(?=\s+[A-ZÄÖÜ][a-zäöüß]))"
)
_EXT_WORD = re.compile(
    r"(?:(?<![^\W\d_])(?:durchwahl|durchw|dw|apparat|app|nebenstelle|nst|extension|ext|"
    r"tel\.?-?dw)\.?\s*:?\s*-?\s*|(?<=[\d ])x\.?\s*)(?=\d)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+\.?:?|:")
_RUN = re.compile(r"[+(]?\d(?:[\d ./()~\-]*\d)?")
_TRUNK_ZERO = re.compile(r"^((?:\+|00)\s*\d{1,3})\s*\(\s*0\s*\)")
_SWITCHBOARD = re.compile(r"\d\s*-\s*0\Z")
_PUNCTUATION = str.maketrans("", "", " ./()-")


@dataclass(frozen=True, slots=True)
class ContactNumber:
    """One number read from a field.

    `extension` "" → a plain number `key`. `extension` "0" → a marked switchboard: `base` (also
    `key`) is the company's main number. Any other `extension` → a direct dial: `base` is the
    company's main number, `key` the direct line (base digits + extension), 0 when base +
    extension is not a possible number (countries with a closed numbering plan)."""

    key: int
    base: int = 0
    extension: str = ""

    @property
    def switchboard(self) -> bool:
        return self.extension == "0"

    def __str__(self) -> str:
        return f"+{self.base}~{self.extension}" if self.extension else f"+{self.key}"


@dataclass
class Reading:
    numbers: list[ContactNumber] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (piece as typed, why)
    extensions: list[str] = field(default_factory=list)  # short numbers (internal directories)


ToKey = Callable[[str], "int | None"]


class FieldReader:
    """Reads contact fields for one home region and company area code."""

    def __init__(
        self, region: str, area_code: str, to_key: ToKey, possible: Callable[[str], bool]
    ) -> None:
        self.region = region
        self.area_code = area_code
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        self.trunk = (meta.national_prefix or "") if meta else ""
        self._to_key = to_key
        self._possible = possible

    def read(self, text: str | None, max_extension_digits: int = 4) -> Reading:
        reading = Reading()
        if not text:
            return reading
        text = text.translate(_SPACES).translate(_DASHES)
        for segment in _SEGMENTS.split(text):
            if segment.strip():
                self._segment(segment, reading, max_extension_digits)
        return reading

    # -- a segment: one part of a field between separators -------------------------------------

    def _segment(self, segment: str, reading: Reading, short: int) -> None:
        for pattern, why in ((_DATE, "a date"), (_POSTCODE, "a postcode")):
            for found in pattern.findall(segment):
                reading.ignored.append((found, why))
            segment = pattern.sub(" | ", segment)
        segment = _EXT_WORD.sub("~", segment)
        segment = _WORD.sub(" | ", segment)  # labels and words separate numbers
        for chunk in segment.split("|"):
            for run in _RUN.findall(chunk):
                self._run(run.strip(), reading, short)

    def _run(self, run: str, reading: Reading, short: int) -> None:
        digits = run.translate(_PUNCTUATION).replace("~", "")
        if digits.isdigit() and len(digits) <= short and run[0] not in "+(0":
            reading.extensions.append(digits)
            reading.ignored.append(
                (run, "a short number: an internal extension, not a phone number")
            )
            return
        if "/" not in run:
            self._number(run, reading, alone=True)
            return
        self._slashes(run, reading)

    def _slashes(self, run: str, reading: Reading) -> None:
        """`030/1234567` and `0221 / 8765048`: area code and number; `089 123456 / 0171 …`: two
        numbers; `089 123456 / 123457`: two, the second in the first one's area."""
        parts = [p.strip() for p in run.split("/") if p.strip()]
        current = parts[0]
        for part in parts[1:]:
            if part[0] in "+(0":
                # `4783059 / 0171 …`: the first part stands alone, as a local number, too
                self._number(current, reading, alone=current is parts[0])
                current = part
            elif self._is_area_code(current):
                current = f"{current} {part}"
            else:
                self._number(current, reading, alone=False)
                current = self._same_area(current, part, reading)
        if current:
            self._number(current, reading, alone=False)

    def _same_area(self, first: str, second: str, reading: Reading) -> str:
        """The second number of `089 123456 / 123457` with the first one's area code, when it is
        as long as the first one's subscriber number (else it could be anything: ignored)."""
        main = re.split(r"[-~]", first)[0]
        try:
            number = phonenumbers.parse(_dial(main), self.region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            nsn = phonenumbers.national_significant_number(number)
            ndc = phonenumbers.length_of_national_destination_code(number)
            wanted = second.translate(_PUNCTUATION)
            if ndc and wanted.isdigit() and abs(len(nsn) - ndc - len(wanted)) <= 1:
                return f"+{number.country_code} {nsn[:ndc]} {second}"
        reading.ignored.append(
            (second, "after a slash, not a whole number nor one as long as the first's")
        )
        return ""

    def _is_area_code(self, text: str) -> bool:
        """`089`, `(0221)`, `0171`: a trunk prefix and 2–5 digits that are no number alone, so
        that what follows the slash can only be their subscriber number."""
        digits = text.translate(_PUNCTUATION)
        trunk = self.trunk
        if not trunk or not digits.startswith(trunk) or digits.startswith(trunk * 2):
            return False
        return 2 <= len(digits) - len(trunk) <= 5 and self._to_key(digits) is None

    # -- one number -----------------------------------------------------------------------------

    def _number(self, text: str, reading: Reading, *, alone: bool) -> None:
        text = _TRUNK_ZERO.sub(r"\1 ", text.strip())
        main, extension = _split_extension(text)
        if extension and not extension.isdigit():
            main, extension = text, ""
        if extension and self._key(main, alone) is None and "~" not in text:
            main, extension = text, ""  # `089-123456`, `+49-89-123456`: dashes as group marks
        key = self._key(main, alone)
        if key is None:
            reading.ignored.append((text, self._why_not(main, alone)))
            return
        if not extension:
            reading.numbers.append(ContactNumber(key))
        elif extension == "0":
            reading.numbers.append(ContactNumber(key, key, "0"))
        else:
            direct = f"+{key}{extension}"
            reading.numbers.append(
                ContactNumber(int(direct[1:]) if self._possible(direct) else 0, key, extension)
            )

    def _key(self, text: str, alone: bool) -> int | None:
        dial = _dial(text)
        if not dial or (dial[0] not in "+0" and not alone):
            return None
        return self._to_key(dial)

    def _why_not(self, main: str, alone: bool) -> str:
        dial = _dial(main)
        if dial and dial[0] not in "+0":
            if not alone:
                return "a local number that does not stand alone: its area code is unknown"
            if not self.area_code:
                return "a local number, and lookup.area_code is not set"
        return "not a possible phone number"


def _dial(text: str) -> str:
    digits = text.translate(_PUNCTUATION).replace("~", "")
    if digits.startswith("+"):
        return "+" + digits[1:] if digits[1:].isdigit() else ""
    return digits if digits.isdigit() else ""


def _split_extension(text: str) -> tuple[str, str]:
    if "~" in text:
        main, _, extension = text.partition("~")
        return main, extension.translate(_PUNCTUATION)
    if _SWITCHBOARD.search(text):
        return text[: text.rindex("-")], "0"
    if "-" in text:
        main, _, tail = text.rpartition("-")
        tail = tail.strip()
        if tail.isdigit() and len(tail) <= MAX_EXTENSION_DIGITS and main.strip():
            return main, tail
    return text, ""
