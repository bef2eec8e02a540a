"""vCard 2.1, 3.0 (RFC 2426) and 4.0 (RFC 6350) → the few properties a contact index needs.

Read: `FN`, `N`, `ORG`, `UID` and every `TEL` (with its `TYPE`s, a `tel:` URI with `;ext=` per
RFC 3966, an Apple `itemN.X-ABLabel` for its group), after line unfolding (RFC 6350 3.2), with
parameter values quoted or not, and vCard 2.1's bare types (`TEL;WORK;VOICE`) and
quoted-printable values (`ENCODING=QUOTED-PRINTABLE`, soft line breaks, `CHARSET=`).

Hand-written rather than `vobject`: vobject parses every property into objects (a 100,000-card
load costs seconds and hundreds of MB more than these five properties), has no size bounds, and
stops a whole file on the first card it cannot read; here a card that is malformed or over a
bound is skipped and counted, and the load goes on.

Bounds: a card is at most `max_card_bytes` (photos are why the default is generous: they are
skipped, never kept), a kept property's unfolded line at most `max_line_bytes`.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from cti_journal.lookup.contacts import ContactRow
from cti_journal.shared.config import ContactSourceSettings

MAX_CARD_BYTES: Final = 1 << 20  # a card with a large photo still fits
MAX_LINE_BYTES: Final = 8 << 10  # FN, N, ORG, TEL, UID: anything longer is not a contact field
MAX_PROBLEMS: Final = 20  # reasons kept for `check` / the log; the count goes on
KEPT: Final = frozenset({"FN", "N", "ORG", "UID", "TEL", "X-ABLABEL", "VERSION"})
_APPLE_LABEL = re.compile(r"^_\$!<(.*)>!\$_$")  # Apple's built-in labels: _$!<Other>!$_
_TEL_VISUAL = re.compile(r"[-.()]+")  # RFC 3966 visual separators


@dataclass(frozen=True, slots=True)
class Phone:
    value: str  # as people would type it; a tel: URI is turned back into that
    types: tuple[str, ...] = ()  # lower case: work, cell, fax, home, voice, …
    label: str = ""  # X-ABLabel of the property's group


@dataclass(frozen=True, slots=True)
class Card:
    uid: str
    fn: str
    family: str
    given: str
    org: str  # the organisation name (ORG's first component)
    phones: tuple[Phone, ...]
    version: str

    @property
    def name(self) -> str:
        """FN, else given + family name from N."""
        return self.fn or f"{self.given} {self.family}".strip()


class MalformedCardError(ValueError):
    """One card cannot be read; the reader skips it."""


@dataclass
class VCardReader:
    """Reads cards from text; skipped cards are counted in `skipped`, the first reasons kept."""

    max_card_bytes: int = MAX_CARD_BYTES
    max_line_bytes: int = MAX_LINE_BYTES
    cards: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def read_bytes(self, data: bytes, where: str = "") -> Iterator[Card]:
        """vCard 3.0/4.0 are UTF-8 (RFC 6350 3.1); old 2.1 exports without CHARSET are often
        Windows-1252: a file that is not UTF-8 is read as that instead of being refused."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
        return self.read_text(text, where)

    def read_text(self, text: str, where: str = "") -> Iterator[Card]:
        return self.read_lines(text.splitlines(), where)

    def read_lines(self, lines: Iterable[str], where: str = "") -> Iterator[Card]:
        for start, raw in _split_cards(lines, self.max_card_bytes):
            if isinstance(raw, str):
                self._skip(where, start, raw)
                continue
            try:
                card = parse_card(raw, self.max_line_bytes)
            except MalformedCardError as exc:
                self._skip(where, start, str(exc))
                continue
            self.cards += 1
            yield card

    def _skip(self, where: str, line: int, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where or 'vCard'} line {line}: card skipped: {reason}")


def _split_cards(lines: Iterable[str], max_bytes: int) -> Iterator[tuple[int, list[str] | str]]:
    """(first line number, the card's physical lines) per BEGIN..END, or (line, reason) for a
    card that cannot be delimited. Text outside cards is ignored."""
    card: list[str] | None = None
    size = start = depth = 0
    for number, line in enumerate(lines, 1):
        word = line.strip().upper()
        if card is None:
            if word == "BEGIN:VCARD":
                card, size, start, depth = [], 0, number, 0
            continue
        size += len(line) + 2
        if word == "BEGIN:VCARD":  # a 2.1 AGENT card inside: kept out of the outer card
            depth += 1
            continue
        if word == "END:VCARD":
            if depth:
                depth -= 1
                continue
            yield start, (card if size <= max_bytes else f"larger than {max_bytes} bytes")
            card = None
            continue
        if depth == 0 and size <= max_bytes:
            card.append(line)
    if card is not None:
        yield start, "no END:VCARD before the end of the input"


def _logical_lines(lines: list[str]) -> Iterator[str]:
    """Unfold (a line starting with a space or tab continues the previous one) and join 2.1
    quoted-printable soft line breaks (a QP value ending in `=`)."""
    current: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and current is not None:
            current += line[1:]
            continue
        if current is not None and _qp_continues(current):
            current = current[:-1] + line.lstrip()
            continue
        if current is not None:
            yield current
        current = line
    if current is not None:
        yield current


def _qp_continues(line: str) -> bool:
    return line.endswith("=") and "QUOTED-PRINTABLE" in line.partition(":")[0].upper()


@dataclass
class _Property:
    group: str
    name: str
    params: dict[str, list[str]]
    value: str


def parse_card(lines: list[str], max_line_bytes: int = MAX_LINE_BYTES) -> Card:
    """One card's physical lines (between BEGIN and END) → a Card; raises MalformedCardError."""
    values: dict[str, str] = {}
    tels: list[tuple[str, Phone]] = []
    labels: dict[str, str] = {}
    for line in _logical_lines(lines):
        if not line.strip():
            continue
        prop = _property(line, max_line_bytes)
        if prop is None:
            continue
        if prop.name == "TEL":
            phone = _phone(prop)
            if phone.value:
                tels.append((prop.group, phone))
        elif prop.name == "X-ABLABEL":
            labels[prop.group] = _apple_label(_text(prop))
        else:
            values.setdefault(prop.name, _decoded(prop))
    family, given = _name_parts(values.get("N", ""))
    phones = tuple(
        Phone(p.value, p.types, labels.get(group, "")) if group else p for group, p in tels
    )
    return Card(
        uid=_unescape(values.get("UID", "")).strip(),
        fn=_unescape(values.get("FN", "")).strip(),
        family=family,
        given=given,
        org=_unescape(_components(values.get("ORG", ""))[0]).strip(),
        phones=phones,
        version=values.get("VERSION", "").strip(),
    )


def _property(line: str, max_line_bytes: int) -> _Property | None:
    """A content line: [group "."] name *(";" param) ":" value; None for a property not kept."""
    head_end = _head_end(line)
    if head_end < 0:
        # The line itself stays out of the message: it may hold a name or a number.
        raise MalformedCardError("a content line without ':'")
    head, value = line[:head_end], line[head_end + 1 :]
    parts = _split_unquoted(head, ";")
    group, _, name = parts[0].rpartition(".")
    name = name.strip().upper()
    if name not in KEPT:
        return None
    if len(line.encode()) > max_line_bytes:
        raise MalformedCardError(f"{name} line longer than {max_line_bytes} bytes")
    params: dict[str, list[str]] = {}
    for raw in parts[1:]:
        key, eq, val = raw.partition("=")
        if not eq:  # vCard 2.1: TEL;WORK;VOICE, ENCODING values without a name
            key, val = _bare_parameter(key)
        key = key.strip().upper()
        values = [v.strip().strip('"') for v in _split_unquoted(val, ",")]
        if key == "TYPE":  # TYPE="work,voice" (RFC 6350 5.6) is a list, too
            values = [t.strip() for v in values for t in v.split(",")]
        params.setdefault(key, []).extend(values)
    return _Property(group.strip().upper(), name, params, value)


def _bare_parameter(word: str) -> tuple[str, str]:
    upper = word.strip().upper()
    if upper in ("QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT"):
        return "ENCODING", upper
    return "TYPE", word


def _head_end(line: str) -> int:
    """The index of the ':' ending the name and parameters (a ':' inside quotes is a value)."""
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return i
    return -1


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _decoded(prop: _Property) -> str:
    """The raw value with 2.1 quoted-printable and CHARSET applied (escapes stay)."""
    if "QUOTED-PRINTABLE" not in (e.upper() for e in prop.params.get("ENCODING", [])):
        return prop.value
    charset = (prop.params.get("CHARSET") or ["utf-8"])[0]
    data = quopri.decodestring(prop.value.encode("latin-1", errors="replace"))
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        raise MalformedCardError(f"{prop.name}: unknown CHARSET {charset!r}") from None


def _text(prop: _Property) -> str:
    return _unescape(_decoded(prop)).strip()


_ESCAPES: Final = {"n": "\n", "N": "\n", "\\": "\\", ",": ",", ";": ";", ":": ":"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_ESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def _components(value: str) -> list[str]:
    """A structured value (N, ORG) split on unescaped ';' (escapes kept for _unescape)."""
    parts, current, chars = [], [], iter(value)
    for char in chars:
        if char == "\\":
            current += [char, next(chars, "")]
        elif char == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _name_parts(value: str) -> tuple[str, str]:
    parts = [_unescape(p).strip() for p in _components(value)] + ["", ""]
    return parts[0], parts[1]


def _apple_label(text: str) -> str:
    match = _APPLE_LABEL.match(text)
    return match.group(1) if match else text


def _phone(prop: _Property) -> Phone:
    types = tuple(
        t.lower() for t in prop.params.get("TYPE", []) if t and t.upper() not in ("PREF",)
    )
    # Unescaped first even for a URI: writers such as vobject (Radicale) escape its `;ext=`.
    value = _unescape(_decoded(prop)).strip()
    is_uri = any(v.lower() == "uri" for v in prop.params.get("VALUE", []))
    if is_uri or value[:4].lower() == "tel:":
        value = tel_uri_text(value)
    return Phone(value, types)


def tel_uri_text(uri: str) -> str:
    """A `tel:` URI (RFC 3966) as people write the number: visual separators as spaces, an
    `;ext=` as a DIN 5008 direct dial (`tel:+49-89-4711;ext=215` → `+49 89 4711-215`), a
    global `phone-context` put in front of a local number. Other schemes (`sip:`) give ''."""
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.strip().lower() != "tel":
        return "" if colon and not scheme.strip().lstrip("+").isdigit() else uri
    number, *params = unquote(rest).split(";")
    ext = context = ""
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "ext":
            ext = _TEL_VISUAL.sub("", val).strip()
        elif key.strip().lower() == "phone-context" and val.strip().startswith("+"):
            context = val.strip()
    number = number.strip()
    if context and not number.startswith("+"):
        number = f"{context}-{number}"
    text = " ".join(_TEL_VISUAL.sub(" ", number).split())
    return f"{text}-{ext}" if ext else text


def card_row(card: Card, settings: ContactSourceSettings, *, fallback_id: str) -> ContactRow:
    """A card as the index's row: record id from UID (else `fallback_id`: the CardDAV href or
    the card's place in a file), name from FN (else N), company from ORG, one field per TEL."""
    return ContactRow(
        record_id=card.uid or fallback_id,
        name=card.name,
        company=card.org,
        phones=tuple(phone.value for phone in card.phones),
        source=settings,
    )


def vcard_rows(
    text: str, settings: ContactSourceSettings, reader: VCardReader | None = None
) -> Iterator[ContactRow]:
    """Every card in `text` as a row; a card without UID gets `card:N` (its place in the text).
    Malformed cards are skipped and counted in `reader`. Raises ValueError on text that holds
    no vCard at all."""
    reader = reader if reader is not None else VCardReader()
    found = False
    for number, card in enumerate(reader.read_text(text, settings.name), 1):
        found = True
        yield card_row(card, settings, fallback_id=f"card:{number}")
    if not found and not reader.skipped:
        raise ValueError("no BEGIN:VCARD … END:VCARD in the text")
