"""Phone numbers are personal data: anything outside the journal itself (logs, dead-letter listings,
error messages, metric labels) shows them masked to their last digits."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

KEEP_DIGITS = 3
# 6+ digits with the separators people type; never part of a word (an event id's hex digits)
_NUMBERISH = re.compile(r"(?<![0-9A-Za-z])\+?\d[\d \-/().]{4,}\d(?![0-9A-Za-z])")
_DATE = re.compile(r"\d{4}-\d\d-\d\d( \d\d(?=:))?")
# An IPv4 address or a version (dots between groups of 1-3 digits) is not a phone number.
_DOTTED = re.compile(r"\d{1,3}(\.\d{1,3}){2,3}")
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
    return _NUMBERISH.sub(lambda m: _mask_unless_date(m.group(0), keep), text)


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
_SECRET_PARAM = re.compile(r"key|token|secret|pass|sig|auth|session", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL without a password in it and with the values of credential-like query parameters
    (`api_key`, `access_token`, `signature`, …) replaced by `***`, for logs and errors."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    query = "&".join(
        f"{name}=***" if _SECRET_PARAM.search(name) and sep else f"{name}{sep}{value}"
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def mask_name(name: str) -> str:
    """`Maria Meier-Schulz` → `M**** M***********`: the first letter of each word stays, so that
    an admin can tell two contacts apart in a log without reading who they are."""
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in name.split())


__all__ = ["KEEP_DIGITS", "mask_name", "mask_number", "mask_numbers_in", "redact_url"]
