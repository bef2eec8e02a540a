"""Contact phone fields as people type them → the numbers they mean (run at index build).

The conventions read here, and where they come from (docs/contact-matching.md lists them
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

- What exports do to numbers (issue 16): a spreadsheet's lost `0` or `+`, its text markers
  (`="…"`, `'…`), floats and scientific notation; links (`tel:` RFC 3966, `callto:`, `sip:`,
  `wa.me/`); a US-formatted national number (`(089) 123-4567`); a compact number with a DIN
  extension (`022151117244-0`); a switchboard on another extension named by the field
  (`Zentrale: 0711 123456-100`).

Never invent a number: a piece that cannot be read with confidence gives no number and is
reported as ignored, with the reason (`cti-journal lookup explain`); where a field has two
readings (`Reading.ambiguous`: compact digits that are local or lost their 0, a follower that
cannot take the preceding area code, two extensions) the whole field gives none.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable
from typing import Final, NamedTuple

import phonenumbers

from cti_journal.shared.fieldtext import MAX_FIELD_CHARS, TOO_LONG, clean_field, is_ascii_digits

MAX_EXTENSION_DIGITS: Final = 5  # a direct-dial suffix; longer tails are not extensions
LOCAL_DIGITS: Final = range(5, 9)  # a subscriber number without area code: 5 to 8 digits
# RFC 3966: `tel:8765432;phone-context=+49-30` is +49 30 8765432; `;ext=29` an extension, and
# so is Fastmail's `+15551234567;5678` (a `;` right after a number and before 1–5 digits that end
# the field or a piece of it). libphonenumber's test forms add `#45`.
_PHONE_CONTEXT = re.compile(r"tel:([\d().\-]+);phone-context=(\+[\d().\-]+)", re.IGNORECASE)
_EXT_MARK = re.compile(r";\s?ext=|(?<=\d);(?=\d{1,5}\s?(?:$|[,|\n]))|#\s?(?=\d)", re.IGNORECASE)
_SEGMENTS = re.compile(
    r"[,;|\n\r]+|\s(?:oder|od\.|or|und|u\.|and|bzw\.?|sowie)\s|\s&\s"
    r"|\s-\s(?=[+(0][\d ().\-]{5})",  # ` - ` between two whole numbers
    re.IGNORECASE,
)
_DATE = re.compile(r"(?<![\d.])(?:\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})|\d{4}-\d\d-\d\d)(?![\d.])")
_POSTCODE = re.compile(
    r"(?:\b[A-Z]{1,2}\s?-\s?\d{4,5}\b"
    r"|(?<![\d+\-/(~])(?<![\d)] )\b\d{5}\b(?=\s[A-ZÄÖÜ][a-zäöüß]))"
)
_EXT_WORD = re.compile(
    r"(?:(?<![^\W\d_])(?:durchwahl|durchw|dw|apparat|app|nebenstelle|nst|extension|ext|int|"
    r"tel\.?-?dw)\.?\s?:?\s?-?\s?|(?<=[\d ])x\.?\s?)(?=\d)(?!0[\d ]{4})",
    re.IGNORECASE,
)
_PARENTHESES = re.compile(r"\([^()]*\)")  # a remark when it holds a letter: `(nur vormittags)`
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]+\.?:?|:")
# Words that say what a number is; any other word makes a field notes (`Kd.-Nr. 471123`,
# `Postfach 10 12 34`), where a local number is not read.
LABELS: Final = frozenset(
    {
        "tel", "telefon", "fon", "phone", "t", "nr", "rufnummer", "telefonnummer", "handy",
        "mobil", "mobile", "mob", "cell", "zentrale", "vermittlung", "privat", "private",
        "home", "büro", "buero", "office", "work", "geschäftl", "geschäftlich", "dienstlich",
        "direkt", "durchwahl", "fax", "telefax", "sekretariat", "main", "switchboard",
        "festnetz", "empfang", "hauptnummer", "rezeption", "reception",
    }
)  # fmt: skip
# A run of digits and what groups them; its tail up to the last digit is cut in Python
# (`[…]*\d` would backtrack over the tail).
_RUN = re.compile(r"[~\-]?[+(]?[0-9][0-9 ./()~\-]*")
_RUN_TAIL = " ./()~-"
_TRUNK_ZERO = re.compile(r"^((?:\+|00)\s?([0-9]{1,3}))\s?\(\s?0\s?\)")
_GROUPS = re.compile(r"[\s()./\-]+")
_PUNCTUATION = str.maketrans("", "", " ./()-")
_SIMPLE = re.compile(
    r"(\+49 ?(?:\(0\) ?)?|0049 ?|\(0|0)([1-9][0-9]{0,4})(\) ?| |/ ?|-|\.)"
    r"([0-9](?:[0-9]|[ .](?=[0-9]))*)"
    r"(?: ?- ?([0-9]{1,5}))?"
)
# A simple number with a label before it (`Tel. 089 1234567`, `Büro: …`) or a remark after it
# (`… (nur vormittags)`): read as the number alone, which is what read_general makes of it (the
# label is one of LABELS, no URI scheme, extension word or switchboard word; the remark has no
# digit, colon or `+`; a unit test compares both ways)
_LABELLED = re.compile(
    r"(?:(?:Tel\.:?|Telefon:|Büro:|Fon:|Fax:|Handy:|Mobil:|Privat:) (.+?) ?"
    r"|(.+?) \([A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß .'-]*\))"
)
_NANP_SHAPE = re.compile(r"\(0[0-9]{2}\) [0-9]{3}-[0-9]{4}")
_EXTENSION_MARK = re.compile(r"[-~]")
_LONE_PLUS = re.compile(r"[0-9] ?\+ ")  # `0221 1234567 + 1234568`
_SWITCHBOARD = re.compile(
    r"(?<![^\W\d_])(?:zentrale|switchboard|vermittlung|empfang|hauptnummer|rezeption|reception)"
    r"(?![^\W\d_])",
    re.IGNORECASE,
)
_COMPACT = re.compile(r"\+?[0-9]{8,}")  # a whole number in one group
# No letters, separators or ` - ` splits; dots only where no date is found
_PLAIN = re.compile(r"[0-9 +()/.\-]+")


class ContactNumber(NamedTuple):
    """One number read from a field.

    `extension` "" → a plain number `key`. `extension` "0" → a marked switchboard: `base` (also
    `key`) is the company's main number. Any other `extension` → a direct dial: `base` is the
    company's main number, `key` the direct line (base digits + extension), 0 when base +
    extension is not a possible number (countries with a closed numbering plan)."""

    key: int
    base: int = 0
    extension: str = ""  # (a NamedTuple: a million of them are made at every index build)
    # The field's own text calls this direct dial the switchboard (`Zentrale: 0711 123456-100`)
    marked: bool = False

    @property
    def switchboard(self) -> bool:
        return self.extension == "0" or self.marked

    def __str__(self) -> str:
        return f"+{self.base}~{self.extension}" if self.extension else f"+{self.key}"


class Reading:
    """What a field reads into: its numbers, the pieces ignored (as typed, why), and short
    numbers (extensions, for internal directories). A plain class: one is made per field."""

    __slots__ = ("ambiguous", "extensions", "ignored", "numbers", "refused", "runs")

    def __init__(self) -> None:
        self.numbers: list[ContactNumber] = []
        self.ignored: list[tuple[str, str]] = []
        self.extensions: list[str] = []
        self.refused = ""  # why the whole field was not read (too long), "" if it was read
        # why the field has two readings, "" if it has one: then it gives no number at all
        self.ambiguous = ""
        self.runs = 0  # pieces that looked like whole numbers so far (read or not)


ToKey = Callable[[str], "int | None"]


class FieldReader:
    """Reads contact fields for one home region and company area code.

    `to_key` gives the key of a dial string that is a valid number (None otherwise), `possible`
    whether a dial string is a possible number (a direct line: base + extension)."""

    def __init__(
        self,
        region: str,
        area_code: str,
        to_key: ToKey,
        possible: Callable[[str], bool],
        *,
        shortcuts: bool = True,
        home_key: Callable[[str], int | None] | None = None,
    ) -> None:
        self.region = region
        # False: every field through every rule (the reference the shortcuts are tested against)
        self.shortcuts = shortcuts
        self.area_code = area_code
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        self.trunk = (meta.national_prefix or "") if meta else ""
        self._to_key = to_key
        self._possible = possible
        self._country_code = str(phonenumbers.country_code_for_region(region))
        # `to_key` of a home number given as its significant digits (6–13, no leading 0), for
        # the simple path, which reads German numbers: only where the home country is Germany
        self._home_key = home_key if self._country_code == "49" else None

    def read(self, text: str | None, max_extension_digits: int = 4) -> Reading:
        if not text:
            return Reading()
        if not self.shortcuts:
            return self.read_general(text, max_extension_digits)
        simple = _SIMPLE.fullmatch(text)  # (ASCII only, linear: no need to clean first)
        if simple is not None:
            reading = self._read_simple(simple)
            if reading is not None:
                return reading
        elif (reading := self._read_compact(text)) is not None:
            return reading
        elif (labelled := _LABELLED.fullmatch(text)) is not None and len(text) <= MAX_FIELD_CHARS:
            number = labelled.group(1) or labelled.group(2)
            if _SEGMENTS.search(text) is None and _SWITCHBOARD.search(text) is None:
                simple = _SIMPLE.fullmatch(number)
                if simple is not None:
                    reading = self._read_simple(simple)
                else:
                    reading = self._read_compact(number)
                if reading is not None:
                    return reading
        return self.read_general(text, max_extension_digits)

    def _read_compact(self, text: str) -> Reading | None:
        """`+4989123456` (a spreadsheet's or a phone's export): one number, as read_general
        reads it; None for anything else, and for an invalid one (read_general says why)."""
        if text[0] != "+" or len(text) > 16 or not is_ascii_digits(text[1:]):
            return None
        key = self._to_key(text)
        if key is None:
            return None
        reading = Reading()
        reading.numbers.append(ContactNumber(key))
        return reading

    def _read_simple(self, simple: re.Match[str]) -> Reading | None:
        """The commonest fields (`089 1234567`, `+49 (0)89 1234567-12`, `0221/8765048-0`): one
        number, prefix, area code, separator, digits and spaces, an optional DIN extension. Read
        as read_general reads them (a unit test compares both on every field of the corpora and
        the generated set), with fewer steps; None: leave it to read_general."""
        prefix, area, separator, rest, extension = simple.groups()
        if extension and _NANP_SHAPE.fullmatch(simple.group()):
            return None
        if separator == "/" and not self._is_area_code(prefix + area, rest):
            return None
        if (separator == "." or "." in rest) and _DATE.search(simple.group()) is not None:
            return None  # `01.02.2024`: a date, not a number
        nsn = area + rest.replace(" ", "").replace(".", "")
        if self._home_key is not None and 6 <= len(nsn) <= 13:
            key = self._home_key(nsn)  # what _to_key gives for every prefix of _SIMPLE
        else:
            national = "+49" if prefix[0] == "+" else "0049" if prefix[:2] == "00" else "0"
            key = self._to_key(national + nsn)
        if key is None:
            return None
        reading = Reading()
        self._add(reading, key, extension or "")
        return reading

    def read_general(self, text: str, max_extension_digits: int = 4) -> Reading:
        reading = Reading()
        original = text
        if text.isascii() and text.isprintable() and "&" not in text and "  " not in text:
            text, refused = text.strip(), ""  # what clean_field leaves as it is, faster
            if len(text) > MAX_FIELD_CHARS:
                text, refused = "", TOO_LONG
        else:
            text, refused = clean_field(text)
        if refused:
            reading.refused = refused
            reading.ignored.append((original.strip()[:40] + "…", refused))
            return reading
        if not text:
            return reading
        if "\u202e" in original:
            # RIGHT-TO-LEFT OVERRIDE: the digits are shown in another order than stored
            reading.ambiguous = "a right-to-left override: shown and stored order differ"
        else:
            if text[0] in "='" or text.endswith(".0") or "E+" in text or "e+" in text:
                text = _spreadsheet(text, reading)
            reading = self._read_clean(text, reading, max_extension_digits)
        if reading.ambiguous:
            reading.ignored.append((original.strip()[:40], reading.ambiguous))
            reading.numbers = []
            return reading
        if len(reading.numbers) > 1:
            reading.numbers = list(dict.fromkeys(reading.numbers))  # `<a href="tel:X">X</a>`
        return reading

    def _read_clean(self, text: str, reading: Reading, max_extension_digits: int) -> Reading:
        if ":" in text or "wa.me/" in text or "phone=" in text:
            text = _tel_uris(text)
        if "+ " in text and _LONE_PLUS.search(text):
            reading.ambiguous = "a `+` between numbers: `and`, or a country code's start"
            return reading
        plain = self.shortcuts and _PLAIN.fullmatch(text) is not None and " - " not in text
        if plain and (("-" not in text and "." not in text) or _DATE.search(text) is None):
            # most fields: digits and separators only, one segment: what _segment does with
            # them, without the patterns that need a letter or a colon
            for run in _RUN.findall(text):
                run = run.rstrip(_RUN_TAIL)
                if run[-1:].isdigit():
                    self._run(run.strip(), reading, max_extension_digits, alone=True)
            return reading
        if ";" in text or "#" in text:
            text = _PHONE_CONTEXT.sub(r"\2 \1", text)
            text = _EXT_MARK.sub("~", text)
        for segment in _SEGMENTS.split(text):
            if segment.strip():
                self._segment(segment, reading, max_extension_digits)
        return reading

    # -- a segment: one part of a field between separators -------------------------------------

    def _segment(self, segment: str, reading: Reading, short: int) -> None:
        before = len(reading.numbers)
        self._segment_runs(segment, reading, short)
        added = reading.numbers[before:]
        if any(n.extension for n in added) and _SWITCHBOARD.search(segment):
            # `Zentrale: 0711 123456-100`: this direct dial is the company's switchboard
            for i in range(before, len(reading.numbers)):
                number = reading.numbers[i]
                if number.extension:
                    reading.numbers[i] = number._replace(marked=True)
                    break

    def _segment_runs(self, segment: str, reading: Reading, short: int) -> None:
        # Every pattern but the date's needs a letter (`x` of `x123` is one) or, for _WORD, a
        # colon: a segment without either skips them, unchanged (shortcuts off: none skipped)
        lettered = not self.shortcuts or _LETTER.search(segment) is not None
        if lettered:
            segment = _EXT_WORD.sub("~", segment)
        for pattern, why in ((_DATE, "a date"), (_POSTCODE, "a postcode")):
            if pattern is _DATE or lettered:
                for found in pattern.findall(segment):
                    reading.ignored.append((found, why))
                segment = pattern.sub(" | ", segment)
        if lettered:
            if "(" in segment:
                segment = _PARENTHESES.sub(_remark, segment)
            segment = _WORD_DIGITS.sub(_word_digits, segment)
            if "." in segment:
                segment = _DIGITS_WORD.sub(" | ", segment)
        words = _WORD.findall(segment) if lettered or ":" in segment else []
        notes = any(word.lower().rstrip(".:") not in LABELS for word in words)
        if words:
            segment = _WORD.sub(" | ", segment)  # labels and words separate numbers
        for chunk in segment.split("|"):
            for run in _RUN.findall(chunk):
                run = run.rstrip(_RUN_TAIL)
                if run and run[-1:].isdigit():
                    self._run(run.strip(), reading, short, alone=not notes)

    def _run(self, run: str, reading: Reading, short: int, *, alone: bool) -> None:
        if run[0] in "~-":
            self._extension_of_previous(run, reading, short)
            return
        digits = run.translate(_PUNCTUATION).replace("~", "") if len(run) <= 3 * short else ""
        if is_ascii_digits(digits) and len(digits) <= short and run[0] not in "+(0":
            if reading.runs and alone:
                # `Tel. 0221 12345 oder 678`: an ending, an extension or a typo of the number
                reading.ambiguous = f"{run!r} after a number: too short to be one"
                return
            reading.extensions.append(digits)
            reading.ignored.append(
                (run, "a short number: an internal extension, not a phone number")
            )
            return
        reading.runs += 1
        if reading.runs > 1 and alone and run[0] not in "+(0":
            # `030 123456 und 123499`: a local number after another number is in that number's
            # area (E.123 alternates), never in the company's own
            second = self._same_area(reading, run)
            if second:
                self._number(second, reading, alone=False)
            return
        if "/" not in run:
            self._number(run, reading, alone=alone)
            return
        self._slashes(run, reading, alone=alone)

    def _extension_of_previous(self, run: str, reading: Reading, short: int) -> None:
        """`089 61382-17 / -18`, `030 12345-67, Zentrale -0`: another extension of the base
        before. Alone (`-77`, `App. 212`) it is an internal extension."""
        extension = run[1:].translate(_PUNCTUATION).replace("~", "")
        previous = reading.numbers[-1] if reading.numbers else None
        if not is_ascii_digits(extension) or len(extension) > MAX_EXTENSION_DIGITS:
            reading.ignored.append((run, "not a phone number"))
        elif previous is not None:
            if not previous.extension:
                # `0221 94760, Durchwahl 123`: the number before is the base, not a number of
                # its own
                reading.numbers.pop()
            self._add(reading, previous.base or previous.key, extension)
        else:
            if len(extension) <= short:
                reading.extensions.append(extension)
            reading.ignored.append((run, "an extension without a number before it"))

    def _slashes(self, run: str, reading: Reading, *, alone: bool) -> None:
        """`030/1234567` and `0221 / 8765048`: area code and number; `089 123456 / 0171 …`: two
        numbers; `089 123456 / 123457`: two, the second in the first one's area."""
        parts = [p.strip() for p in run.split("/") if p.strip()]
        current = parts[0]
        first = True
        for part in parts[1:]:
            if part[0] in "-~":
                self._number(current, reading, alone=alone and first)
                self._extension_of_previous(part, reading, 0)
                current, first = "", False
            elif self._is_area_code(current, part):
                current = f"{current} {part}"
            elif part[0] in "+(0":
                if current:
                    self._number(current, reading, alone=alone and first)
                current, first = part, False
            else:
                if current:
                    self._number(current, reading, alone=alone and first)
                current, first = self._same_area(reading, part), False
        if current:
            self._number(current, reading, alone=alone and first)

    def _same_area(self, reading: Reading, second: str) -> str:
        """The second number of `089 123456 / 123457` with the first one's area code, when it is
        as long as the first one's subscriber number (E.123's alternate numbers; a shorter one,
        `/ 57`, could be an ending or an extension: ignored)."""
        previous = reading.numbers[-1] if reading.numbers else None
        if previous is not None:
            number = phonenumbers.parse(f"+{previous.base or previous.key}")
            nsn = phonenumbers.national_significant_number(number)
            ndc = phonenumbers.length_of_national_destination_code(number)
            wanted = _EXTENSION_MARK.split(second)[0].translate(_PUNCTUATION)
            mobile = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
            if mobile:
                # `0170 1234567 oder 7654321`: the second may be a landline in the own area
                reading.ambiguous = "a local number after a mobile number: whose area code?"
            elif ndc and is_ascii_digits(wanted) and abs(len(nsn) - ndc - len(wanted)) <= 1:
                return f"+{number.country_code} {nsn[:ndc]} {second}"
        # `030 123456 und 12`, `089 1234567 / 68`: an ending, an extension or a typo
        reading.ambiguous = reading.ambiguous or (
            f"{second!r} after another number, not a whole number nor one as long as the first's"
        )
        return ""

    def _is_area_code(self, text: str, following: str) -> bool:
        """`089`, `(0221)`, `+49 30`, `0171` before a slash: an area code (national destination
        code), so that what follows is its subscriber number."""
        head = _dial(text)
        if not head or len(head) > 9:
            return False
        trunk = self.trunk
        if (
            trunk
            and head.startswith(trunk)
            and not head.startswith(trunk * 2)
            and 2 <= len(head) - len(trunk) <= 5
            and self._to_key(head) is None
        ):
            return True  # a trunk 0 and digits that are no number alone (`089`, `0171`)
        # `033204/6 12 34`, `+49 30/1234567`: what phonenumbers says the area code is
        whole = _dial(f"{text} {following}")
        try:
            number = phonenumbers.parse(whole, self.region)
        except phonenumbers.NumberParseException:
            return False
        if not phonenumbers.is_valid_number(number):
            return False
        nsn = phonenumbers.national_significant_number(number)
        ndc = nsn[: phonenumbers.length_of_national_destination_code(number)]
        cc = str(number.country_code)
        prefixes = {trunk, "+" + cc, "00" + cc, "+" + cc + trunk}
        return bool(ndc) and head.endswith(ndc) and head[: -len(ndc)] in prefixes

    # -- one number -----------------------------------------------------------------------------

    def _number(self, text: str, reading: Reading, *, alone: bool) -> None:
        text = text.strip()
        zero = _TRUNK_ZERO.match(text)
        if zero is not None:
            if not _has_trunk_prefix(zero.group(2)):
                # Italy keeps its 0 (`+39 06 …`): `+39 (0)6 …` can mean either
                reading.ignored.append((text, "(0) after a country whose numbers keep the 0"))
                return
            text = zero.group(1) + " " + text[zero.end() :]
        if text[:1] == "(" and _NANP_SHAPE.fullmatch(text):
            # `(089) 123-4567`: a US-formatted field (Salesforce); NANP area codes never start
            # with 0, so the hyphen only groups the digits of a national number
            text = text.replace("-", " ")
        main, extension = _split_extension(text)
        if not extension:
            main, extension = self._compact_extension(text)
        elif (
            "-" in main
            and self._home(main)
            and (_split_extension(main)[1] or self._compact_extension(main)[1])
        ):
            reading.ambiguous = f"{text!r}: two extensions after one number"
            return
        key = self._key(main, alone, reading)
        if key is None and extension and "~" not in text:
            main, extension = text, ""  # `+1 (212) 555-0123`: the hyphen groups digits
            key = self._key(main, alone, reading)
        if key is None:
            if not reading.ambiguous:
                reading.ignored.append((text, self._why_not(main, alone)))
            return
        self._add(reading, key, extension)

    def _home(self, text: str) -> bool:
        """A number in the home country, where DIN 5008's extension hyphen is the custom."""
        dial = _dial(text)
        cc = self._country_code
        return (dial[:1] == "0" and dial[1:2] != "0") or dial.startswith(("+" + cc, "00" + cc))

    def _compact_extension(self, text: str) -> tuple[str, str]:
        """`022151117244-0`, `+4989123456-12`: a whole number written without groups, then a
        DIN 5008 extension. Only when the digits before the hyphen are a valid number by
        themselves: `089-1234567` (an area code before the hyphen) stays one number."""
        main, dash, tail = text.rpartition("-")
        main, tail = main.strip(), tail.strip()
        if (
            dash
            and "~" not in text
            and is_ascii_digits(tail)
            and len(tail) <= MAX_EXTENSION_DIGITS
            and _COMPACT.fullmatch(main) is not None
            and self._to_key(_dial(main)) is not None
        ):
            return main, tail
        return text, ""

    def _add(self, reading: Reading, key: int, extension: str) -> None:
        if not extension:
            reading.numbers.append(ContactNumber(key))
        elif extension == "0":
            reading.numbers.append(ContactNumber(key, key, "0"))
        else:
            direct = f"+{key}{extension}"
            reading.numbers.append(
                ContactNumber(int(direct[1:]) if self._possible(direct) else 0, key, extension)
            )

    def _key(self, text: str, alone: bool, reading: Reading | None = None) -> int | None:
        dial = _dial(text)
        if not dial:
            return None
        if dial[0] in "+0":
            return self._to_key(dial)
        if not alone or "(" in text:
            return None  # `(212) 555-0123`: an area code without the trunk 0 is not ours
        if reading is not None and is_ascii_digits(text.strip()):
            return self._compact_digits(dial, reading)
        return self._to_key(dial) if len(dial) in LOCAL_DIGITS else None

    def _trunk_lost(self, dial: str) -> int | None:
        """`891234567` read as `0891234567`, when that is a number of the usual shape: a
        subscriber number of 4 to 8 digits after its area code (`7654321` as `07654 321`, or
        `4917612345678` as `0491 7612345678`, is a reading nobody would think of)."""
        key = self._to_key(self.trunk + dial) if self.trunk else None
        if key is None:
            return None
        return key if 4 <= _subscriber_digits(key) <= 8 else None

    def _compact_digits(self, dial: str, reading: Reading) -> int | None:
        """Digits alone, no group, no prefix: typed as a local number, or a spreadsheet cell
        that took the number for a number and dropped its leading `0` (`891234567`) or `+`
        (`4989123456`). Read where exactly one of these is a valid number; where two are
        (`30123456`: Munich local, or Berlin's 030 123456), the field has no key."""
        readings = {
            key
            for key in (
                self._to_key(dial) if len(dial) in LOCAL_DIGITS else None,
                self._trunk_lost(dial),
                # (lost its `+`: only beyond a local number's length, `29080500` is no
                # St Helena number to anyone)
                self._to_key("+" + dial) if len(dial) > LOCAL_DIGITS[-1] else None,
            )
            if key is not None
        }
        if len(readings) > 1:
            reading.ambiguous = f"{dial!r}: a local number, or one that lost its 0 or +"
            return None
        return readings.pop() if readings else None

    def _why_not(self, main: str, alone: bool) -> str:
        dial = _dial(main)
        if dial and dial[0] not in "+0":
            if not alone:
                return "a local number among other words or numbers: its area code is unknown"
            if len(dial) not in LOCAL_DIGITS:
                return "a local number must have 5 to 8 digits"
            if not self.area_code:
                return "a local number, and lookup.area_code is not set"
        return "not a valid phone number"


@functools.lru_cache(maxsize=65536)
def _subscriber_digits(key: int) -> int:
    """Digits after the area code (national destination code) of the E.164 number `key`."""
    number = phonenumbers.parse(f"+{key}")
    nsn = phonenumbers.national_significant_number(number)
    return len(nsn) - phonenumbers.length_of_national_destination_code(number)


@functools.lru_cache(maxsize=256)
def _has_trunk_prefix(country_code: str) -> bool:
    region = phonenumbers.region_code_for_country_code(int(country_code))
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return bool(meta and meta.national_prefix)


def _dial(text: str) -> str:
    digits = text.translate(_PUNCTUATION).replace("~", "")
    if digits.startswith("+"):
        return "+" + digits[1:] if is_ascii_digits(digits[1:]) else ""
    return digits if is_ascii_digits(digits) else ""


def _split_extension(text: str) -> tuple[str, str]:
    """`… ~29` (a word or mark), `… -29` and `… -0` (DIN 5008) → (main, extension)."""
    if "~" in text:
        main, _, extension = text.partition("~")
        extension = extension.translate(_PUNCTUATION)
        return (main, extension) if is_ascii_digits(extension) else (text, "")
    if "-" not in text:
        return text, ""
    main, _, tail = text.rpartition("-")
    tail = tail.strip()
    if not (is_ascii_digits(tail) and len(tail) <= MAX_EXTENSION_DIGITS) or _area_code_only(main):
        return text, ""  # `089-1234567`, `+49-89-1234567`: the hyphen only ends the area code
    return main, "0" if tail == "0" else tail


def _area_code_only(main: str) -> bool:
    """`089`, `+49 89`, `0049-33204`: an area code and no subscriber number before a hyphen."""
    groups = [g for g in _GROUPS.split(main.strip()) if g]
    if groups and groups[0].startswith(("+", "00")) and len(groups[0].lstrip("+0")) <= 3:
        return len(groups) <= 2  # the country code, and at most an area code
    return len(groups) <= 1 and main.strip()[:1] in ("0", "(")


def _remark(found: re.Match[str]) -> str:
    """`(nur vormittags)`, `(Zentrale)`, `(2. OG)`: a remark, digits and all; `(089)` stays."""
    return " | " if _LETTER.search(found.group()) else found.group()


def _word_digits(found: re.Match[str]) -> str:
    """`Zimmer 12`, `Haus 2`, `Fr 8`, `Tel 2:`: one or two digits after a word that is no phone
    label, or before a colon, belong to that word; after a label (`Tel 12`) they are an
    extension as before."""
    word = found.group(1).lower()
    if word in LABELS and not found.group(2).endswith(":"):
        return found.group()
    return " | "  # (`Tel 2:` is the label of the second telephone)


_WORD_DIGITS = re.compile(
    r"(?<![^\W\d_])([^\W\d_]+)\.? ?[0-9]{1,2}(?:-[0-9]{1,2})?(?![0-9])(\.?:?)"  # `Fr 9-17`
)
# `089 1234567 2. OG`: one or two digits and a dot before a word are an ordinal of that word,
# never the end of the number before them (without the dot, `089 12 34 56 Büro`, they are)
_DIGITS_WORD = re.compile(r"(?<![0-9])(?<=\s)[0-9]{1,2}\. ?(?=[^\W\d_])")
# RFC 3966 global numbers (`tel:+49-89-1234567`: `-.()` are visual separators there, never a
# DIN extension), the same in `callto:`/`sip:` links, and WhatsApp's `wa.me/<international>`
_URI = re.compile(
    r"(?:tel|callto|sips?|skype|sms):(\+[0-9().\-]+)|(?:wa\.me/|[?&]phone=)([0-9]{6,15})",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


def _tel_uris(text: str) -> str:
    if "%" in text:
        text = _PERCENT.sub(lambda m: urllib.parse.unquote(m.group()), text)  # `tel:+49%2089…`
    return _URI.sub(_uri_number, text)


# Spreadsheet cells: Excel's text markers `="0891234567"` and `'0891234567`, a number stored as
# a float (`891234567.0`), scientific notation (`4.98912345678E+11`, `4,98912345678E+11`)
_TEXT_MARKERS = re.compile(r'="([^"]*)"|\'(.*)')
_FLOAT = re.compile(r"([1-9][0-9]{4,14})\.0")
_SCIENTIFIC = re.compile(r"([1-9])[.,]([0-9]{1,14})E\+([0-9]{1,2})", re.IGNORECASE)


def _spreadsheet(text: str, reading: Reading) -> str:
    if text[:1] in ("=", "'"):
        marked = _TEXT_MARKERS.fullmatch(text)
        if marked is not None:
            text = (marked.group(1) if marked.group(1) is not None else marked.group(2)).strip()
    if text.endswith(".0"):
        floating = _FLOAT.fullmatch(text)
        if floating is not None:
            return floating.group(1)
    scientific = _SCIENTIFIC.fullmatch(text)
    if scientific is not None:
        first, fraction, exponent = scientific.groups()
        if len(fraction) == int(exponent):
            return first + fraction
        reading.ignored.append((text, "scientific notation: the number's digits are lost"))
        return ""
    return text


def _uri_number(found: re.Match[str]) -> str:
    number = found.group(1) or "+" + found.group(2)
    return " +" + "".join(ch for ch in number if ch.isdigit()) + " "
