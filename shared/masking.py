"""Phone numbers are personal data: anything outside the journal itself (logs, dead-letter listings,
error messages, metric labels) shows them masked to their last digits.

A number is recognised in any notation a person, a PBX or a CRM writes it: separators of every
kind (spaces, NBSP, thin spaces, dots, dashes of any width, slashes, brackets), digits of any
script (`０８９`, `٠٨٩`, superscripts) and digits glued to a word (`Rufnummer0891234567`).
Left alone: an id (a hexadecimal token of 10+ characters with letters in it), dates and times,
an IPv4 address or a version (dotted groups of at most three digits without a leading zero:
`079.123.45.67` is a number, `10.1.2.3` an address).

Names are personal data too: `mask_name` shows only the first letter of each word.
"""

from __future__ import annotations

import re

KEEP_DIGITS = 3
# \d is every script's decimal digit; superscript and subscript digits are digits to a reader too.
_D = r"[\d\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089]"
_SEP = r"[ \u00a0\u2000-\u200a\u202f\-\u2010-\u2015\u2212/().\uff0b+]"
# 6+ digits with the separators people type. Glued to letters on either side is fine
# (`Rufnummer0891234567`); `_is_id` leaves tokens that are hexadecimal ids alone.
_NUMBERISH = re.compile(rf"\+?{_D}(?:{_D}|{_SEP}){{4,}}{_D}")
_DATE = re.compile(r"\d{4}-\d\d-\d\d( \d\d(?=:))?")
# An IPv4 address or a version: dots between groups of 1-3 ASCII digits, none with a leading 0.
_DOTTED = re.compile(r"(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){2,3}")
# An id or hash (dead-letter ids have 10 hex digits, event ids 32): hexadecimal with letters in it
_HEX_ID = re.compile(r"(?=(?:[0-9]*[a-fA-F]){2})[0-9a-fA-F]{10,}")
_TOKEN_CHAR = re.compile(r"[0-9A-Za-z]")
MIN_DIGITS = 6


def mask_number(number: str, keep: int = KEEP_DIGITS) -> str:
    """`+49 89 1234567` → `+** ** ****567`: every digit but the last `keep` becomes `*`; the
    shape (separators, length) stays, so that an admin can still tell two numbers apart."""
    digits = sum(ch.isdigit() for ch in number)
    hide = max(0, digits - keep)
    out = []
    for ch in number:
        if ch.isdigit() and hide:
            out.append("*")
            hide -= 1
        else:
            out.append(ch)
    return "".join(out)


def mask_numbers_in(text: str, keep: int = KEEP_DIGITS) -> str:
    """Masks every run that looks like a phone number (6+ digits with separators) inside free text,
    e.g. a raw CTI line or a database error message."""
    return _NUMBERISH.sub(lambda m: _mask_match(m, text, keep), text)


def _mask_match(match: re.Match[str], text: str, keep: int) -> str:
    run = match.group(0)
    if _in_hex_id(text, match.start(), match.end()):
        return run
    return _mask_unless_date(run, keep)


def _in_hex_id(text: str, start: int, end: int) -> bool:
    """Whether the run is part of a hexadecimal token of 10+ characters with 2+ letters a-f (an
    event id, a dead-letter id, a hash); a number glued to a word (`Rufnummer0891234567`) is not."""
    while start > 0 and _TOKEN_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and _TOKEN_CHAR.match(text[end]):
        end += 1
    return bool(_HEX_ID.fullmatch(text[start:end]))


def _mask_unless_date(run: str, keep: int) -> str:
    if _DOTTED.fullmatch(run.strip()) or sum(c.isdigit() for c in run) < MIN_DIGITS:
        return run
    date = _DATE.match(run)
    if date is None:
        return mask_number(run, keep)
    rest = run[date.end() :]
    return date.group(0) + (
        mask_number(rest, keep) if sum(c.isdigit() for c in rest) > keep else rest
    )


# Query parameters that carry credentials in REST APIs (api_key, access_token, sig, …).
def mask_name(name: str) -> str:
    """`Maria Meier-Schulz` → `M**** M***********`: the first letter of each word stays, so that
    an admin can tell two contacts apart in a log without reading who they are."""
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in name.split())


# A quoted span that reads as a person's name: two or more words of letters, or one with a letter
# outside ASCII. Identifiers (`'Journal_Name'`, `'contacts'`) are not names: they stay readable.
_QUOTED = re.compile(r"(?<!\w)(['\"“„«‚‘])([^'\"“”„«»‚‘’\n]{1,200})(['\"”“»‘’])")
_NAME_WORDS = re.compile(r"[^\W\d_]+(?:[ '\-][^\W\d_]+)+")


def mask_names_in(text: str) -> str:
    """Masks quoted names inside free text (a driver's message quoting a contact's value)."""
    return _QUOTED.sub(_mask_quoted, text)


def _mask_quoted(match: re.Match[str]) -> str:
    inner = match.group(2)
    words = inner.strip()
    looks_like_name = bool(_NAME_WORDS.fullmatch(words)) or (
        not words.isascii() and any(c.isalpha() for c in words) and "_" not in words
    )
    if not looks_like_name:
        return match.group(0)
    return match.group(1) + mask_name(inner) + match.group(3)


def mask_personal_in(text: str, keep: int = KEEP_DIGITS) -> str:
    """Numbers and quoted names masked: what log lines and error messages show."""
    return mask_names_in(mask_numbers_in(text, keep))


__all__ = [
    "KEEP_DIGITS",
    "mask_name",
    "mask_names_in",
    "mask_number",
    "mask_numbers_in",
    "mask_personal_in",
]
