"""Outside text → the plain text the number reader's rules are written for (run before any rule).

Contact fields come out of every script, keyboard, word processor, web form and export. Their
characters are read by their Unicode properties (UAX #44 general categories, UAX #15 NFKC), never
by a list of the characters seen so far:

- text that went through a web page (`&nbsp;`, `&#43;49`, `&ndash;`) is unescaped (the
  standard library's `html.unescape`, HTML5's entity list); text that went through a wrong
  code page (`0221 47 11 â€“ 0`, `MÃ¼nchen`) is repaired by `ftfy` (kept, widely used,
  conservative: it changes text only where its badness measure says the text is mojibake).
  ftfy costs ~100 µs a field, so only text with the mark of UTF-8 read as Windows-1252 or
  Latin-1 (a lead byte followed by a continuation byte) goes to it;
- decimal digits of any script (category Nd: Arabic-Indic, Devanagari, full-width, mathematical)
  become ASCII digits by their decimal value (`unicodedata.decimal`), the same value `int()` gives;
- other digit-like characters (category No: superscripts `²`, circled `①`, fractions) are NOT
  digits: NFKC would turn `0²²²` into `0222`, a number nobody wrote. They become `?`, which no
  rule reads as part of a number;
- spaces (Zs) and the white-space controls (tab, VT, FF) become a space; dashes (Pd, and U+2212
  MINUS SIGN, which is Sm) a hyphen; line breaks (CR, LF, NEL, the Zl/Zp separators) a line
  break; format characters (Cf: zero-width spaces and joiners, bidi marks, the soft hyphen, the
  BOM) and every other control character (Cc: BEL, DEL, ESC…) vanish: they are not part of
  what was typed, and a control character never reaches a key;
- then NFKC (full-width `＋４９`, ligatures, compatibility forms), and runs of spaces become one
  space, runs of white space with a line break one line break: every rule after this sees at most
  one white-space character in a row, which keeps the reader's patterns linear in the length.

A field longer than `MAX_FIELD_CHARS` after this (white space at both ends, which padded CHAR
columns add, stripped; HTML entities undone; runs of white space one character), or longer than
`MAX_RAW_CHARS` before it, is refused whole with a reason (`Reading.refused`, counted by
`cti-journal check`): a phone field that long is not a phone field, and reading a part of it
could invent a number.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final

# The longest phone field a person types (several numbers with labels and remarks is ~120).
# Outlook's and most CRMs' phone fields hold 255 or fewer characters, vCard has no limit.
MAX_FIELD_CHARS: Final = 256
# Before repair, a field may be longer (`&nbsp;` is 6 characters for one, padded CHAR columns),
# up to this bound on the repair's work.
MAX_RAW_CHARS: Final = 16 * MAX_FIELD_CHARS
TOO_LONG: Final = f"longer than {MAX_FIELD_CHARS} characters: not a phone field, refused whole"

_SPACES = re.compile(r" {2,}")  # one repetition, no alternatives: linear
_BREAKS = re.compile(r" ?\n[\n ]*")  # a line break with white space around it → one line break
_NBSP_RESIDUE = re.compile("\u00c2(?=[ \u00a0])")
# UTF-8 read as Windows-1252 or Latin-1: a lead byte (Â…ô) followed by a continuation byte
# (U+0080–U+00BF, or what cp1252 puts there: € ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ)
# or a space (an U+00A0 that became one). Only such text goes to ftfy (~100 µs a field): `Büro`
# and `München` do not.
_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf \u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6"
    "\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc"
    "\u2122\u0161\u203a\u0153\u017e\u0178]"
)


def _utf8_as_8bit(text: str) -> str:
    """`0221 â€“ 0`, `MÃ¼nchen`, `Û°Û±…` (Persian digits): the whole text is UTF-8 read as
    Windows-1252 or Latin-1 when encoding it back gives valid UTF-8 — then that is its one
    reading. "" when not (mixed or partly repaired text: ftfy's heuristics decide)."""
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
    return ""


def _ftfy_fix(text: str) -> str:
    # Imported when a field first needs it (~7 MB resident): most contact sources never do.
    import ftfy

    config = ftfy.TextFixerConfig(
        unescape_html=False,  # done before, for every field with an `&`
        remove_control_chars=False,  # ours below: a control character is dropped, never joins
        # our own NFKC below; ftfy's width fix would also turn `²` into `2`
        fix_character_width=False,
        normalization=None,
        explain=False,
    )
    return ftfy.fix_text(text, config)


_LINE_CONTROLS: Final = "\n\r\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits on
_SPACE_CONTROLS: Final = "\t\x0b\x0c\x1f"  # the other white-space controls


def clean_field(text: str) -> tuple[str, str]:
    """The field as plain text for the rules, and "" — or "" and why the field is refused."""
    if len(text) > MAX_RAW_CHARS:
        text = text.strip()  # (only here: a stripped U+00A0 may be half of a mojibake pair)
        if len(text) > MAX_RAW_CHARS:
            return "", TOO_LONG
    for _ in range(2):  # (twice: `&amp;nbsp;` is an escaped escape, seen in CRM exports)
        if "&" in text:
            text = html.unescape(text)  # `&#43;49 89 …`, `089&nbsp;1234`, `&ndash;`
    if not text.isascii() and _MOJIBAKE.search(text):
        text = _utf8_as_8bit(text) or _ftfy_fix(text)
        if "\u00c2" in text:
            # UTF-8's no-break space read as Latin-1 is `Â` + U+00A0; where the U+00A0 then
            # became a plain space, ftfy cannot tell it from text: `089Â 7654321`
            text = _NBSP_RESIDUE.sub("", text)
    if not (text.isascii() and text.isprintable()):
        text = _by_properties(text)
    if "  " in text:
        text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _BREAKS.sub("\n", text)
    text = text.strip()
    return ("", TOO_LONG) if len(text) > MAX_FIELD_CHARS else (text, "")


def _by_properties(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch.isascii() and ch.isprintable():
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif category == "No":
            out.append("?")
        elif category == "Zs" or ch in _SPACE_CONTROLS:
            out.append(" ")
        elif ch in _LINE_CONTROLS:
            out.append("\n")
        elif category == "Pd" or ch == "\u2212":
            out.append("-")
        elif category in ("Cf", "Cc", "Cs", "Co", "Cn"):
            # Format characters, other controls (BEL, DEL, ESC), private use, lone surrogates
            # and unassigned code points: never part of what was typed as a number
            continue
        else:
            out.append(ch)
    return unicodedata.normalize("NFKC", "".join(out))


def ascii_digits(text: str) -> str | None:
    """`text` with decimal digits of any script as ASCII digits, when it holds nothing but
    decimal digits; None otherwise (`²`, `①`, letters). The one digit test that agrees with
    `int()`: `"²".isdigit()` is True, `int("²")` fails."""
    if text.isascii():
        return text if text.isdigit() else None
    if not text.isdecimal():  # isdecimal is exactly category Nd, which int() accepts
        return None
    return "".join(str(unicodedata.decimal(ch)) for ch in text)


def is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


__all__ = ["MAX_FIELD_CHARS", "TOO_LONG", "ascii_digits", "clean_field", "is_ascii_digits"]
