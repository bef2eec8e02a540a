"""Text from outside (dead-letter headers, a contact's name, a raw CTI line) shown on an admin's
terminal: control and format characters are shown as escapes, never sent raw, so that no value
can move the cursor, rewrite the screen, set the window title or hide text behind a bidi
override (ESC, CSI U+009B, CR, BS, U+202E, ...)."""

from __future__ import annotations

import unicodedata
from typing import Final

# Cc: C0/C1 controls and DEL; Cf: format (bidi overrides, zero-width); Zl/Zp: line/paragraph
# separators, which some terminals and viewers break lines at.
_UNSAFE: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str, *, backslashes: bool = True) -> str:
    """`text` with every unsafe character escaped (`\\x1b`, `\\u202e`, `\\n`) and backslashes
    doubled, so that the escapes cannot be confused with the text (`backslashes=False` for
    text whose backslashes are escapes already, such as JSON)."""
    if text.isprintable() and not (backslashes and "\\" in text):
        return text  # the common case, without a per-character pass
    return "".join(
        _escape(ch) if (backslashes and ch == "\\") or unicodedata.category(ch) in _UNSAFE else ch
        for ch in text
    )


__all__ = ["safe_text"]
