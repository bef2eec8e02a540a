"""The one place where outside text becomes a number, a time or a length.

Outside text is anything a CTI line, a message body, a contact record or a client sent. Python's
own checks are wider than its conversions: `"⁴⁷⁹⁵".isdigit()` is True and `int("⁴⁷⁹⁵")` raises
ValueError; `"٤٧".isdecimal()` is True and `int("٤٧")` is 47, a number the sender never wrote in
ASCII; `int()` refuses more than 4,300 digits with ValueError; `\\d` in a regex matches every
script's digits. So nothing outside this module calls `int()`, `isdigit()` or `fromisoformat()`
on outside text: these functions accept ASCII digits only and either return a value or raise
`BadInputError` (the entry is dead-lettered alone), never anything else.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from cti_journal.shared.errors import BadInputError

ASCII_DIGITS: Final = "0123456789"
# An ASCII-only pattern: `\d` (or [0-9] with re.UNICODE folding) is not used on outside text.
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
MAX_DIGITS: Final = 30  # longer than any number the project stores (E.164: 15, INTEGER: 10)


def is_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits 0-9 only (`str.isdigit` also says True for
    superscripts, which `int` then refuses)."""
    return text.isascii() and text.isdigit()


def whole_number(text: str, what: str, maximum: int, *, minimum: int = 0) -> int:
    """A whole number written in ASCII digits (an optional leading '-' when minimum < 0),
    between minimum and maximum; else BadInputError naming `what`."""
    body = text[1:] if minimum < 0 and text.startswith("-") else text
    if not is_digits(body):
        raise BadInputError(f"{what}: {text!r:.30} is not a whole number")
    if len(body.lstrip("0")) > max(len(str(maximum)), len(str(minimum))):
        # before int(): it costs quadratic time and refuses more than 4,300 digits
        raise BadInputError(f"{what}: {text!r:.30} exceeds {maximum}")
    number = int(body.lstrip("0") or "0")  # leading zeros count against int()'s 4,300 digits
    if body is not text:
        number = -number
    if number > maximum:
        raise BadInputError(f"{what}: {number} exceeds {maximum}")
    if number < minimum:
        raise BadInputError(f"{what}: {number} is below {minimum}")
    return number


def digits_value(digits: str, what: str = "number") -> int:
    """The value of a run of ASCII digits of at most MAX_DIGITS (a phone number, a range bound):
    BadInputError for anything else."""
    if not is_digits(digits) or len(digits) > MAX_DIGITS:
        raise BadInputError(f"{what}: {digits!r:.30} is not up to {MAX_DIGITS} ASCII digits")
    return int(digits)


def local_time(text: str, what: str = "time") -> datetime:
    """'YYYY-MM-DD HH:MM:SS' in ASCII digits → a naive datetime; else BadInputError."""
    if not _TIME_RE.fullmatch(text):
        raise BadInputError(f"{what}: {text!r:.40} is not YYYY-MM-DD HH:MM:SS")
    try:
        # The regex fixed the shape; fromisoformat is ~10x cheaper than strptime per line.
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInputError(f"{what}: {text!r}: {exc}") from exc


def length(value: int, what: str, maximum: int) -> int:
    """A length or count read from outside (a header, a field): 0..maximum, else BadInputError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise BadInputError(f"{what}: {value!r:.30} is not a length of 0..{maximum}")
    return value
