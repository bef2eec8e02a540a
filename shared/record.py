"""Our documented wire format for one CTI journal entry (the reventix protocol is not public).

One entry per line, `\\n` or `\\r\\n` terminated. Two line formats:

* ``delimited`` (default): the fields of `FIELDS`, in that order unless configured otherwise,
  separated by ``;``. A field may be enclosed in double quotes (CSV rules) when it contains the
  separator or a quote.
* ``json``: one object per line whose keys are the field names, with or without the `Journal_`
  prefix (`Gebuehren` is accepted for `Gebühren`). An optional ``"id"`` key carries an event id
  assigned by the sender. Unknown keys are ignored.

`LineFormat.parse` turns raw bytes into validated values keyed by `JournalEntry` attribute names;
`LineFormat.format` is its inverse and is what the simulator writes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import orjson

from cti_journal.shared.convert import local_time, whole_number
from cti_journal.shared.errors import BadInputError

FIELDS: Final = (
    "In_Out",
    "Zeitpunkt",
    "VerbZustand",
    "Rufnummer",
    "Name",
    "Firma",
    "LokaleRufnummer",
    "Weitergeleitet",
    "DatensatzID",
    "DatensatzTabelle",
    "Rufdauer_ms",
    "VerbDauer_sec",
    "LCR",
    "Gebühren",
    "Amtsholung",
)

ATTR: Final[dict[str, str]] = {
    "In_Out": "in_out",
    "Zeitpunkt": "zeitpunkt",
    "VerbZustand": "verb_zustand",
    "Rufnummer": "rufnummer",
    "Name": "name",
    "Firma": "firma",
    "LokaleRufnummer": "lokale_rufnummer",
    "Weitergeleitet": "weitergeleitet",
    "DatensatzID": "datensatz_id",
    "DatensatzTabelle": "datensatz_tabelle",
    "Rufdauer_ms": "rufdauer_ms",
    "VerbDauer_sec": "verbdauer_sec",
    "LCR": "lcr",
    "Gebühren": "gebuehren",
    "Amtsholung": "amtsholung",
}

# No limit per text field: the gateway limits the line (`gateway.max_line_bytes`) and the writer
# cuts text to its column's real size (counted per column), so an entry is never lost to a limit
# that only guessed the customer's column sizes.
INT_FIELDS: Final = frozenset({"Rufdauer_ms", "VerbDauer_sec", "Gebühren"})
MAX_LONG: Final = 2**31 - 1  # Access "Number (Long Int)"
STATES: Final = frozenset({"CONN", "RING", "BUSY"})
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 controls
# The same without TAB: a tab inside a text field (a name pasted from a spreadsheet) is kept as a
# space; every other control character makes the line a dead letter.
_FIELD_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_FOLDED: Final = {name.casefold(): name for name in FIELDS} | {"gebuehren": "Gebühren"}
# Per time zone ("" = this machine's): local minute "YYYY-MM-DD HH:MM" -> UTC offset.
_OFFSETS: Final[dict[str, dict[str, timedelta]]] = {}
_OFFSET_CACHE_MINUTES: Final = 4096


def canonical_field(key: str) -> str | None:
    """The canonical field name for a JSON key or configured field name, or None."""
    folded = key.strip().casefold().removeprefix("journal_")
    return _FOLDED.get(folded)


@dataclass(frozen=True, slots=True)
class Parsed:
    values: dict[str, Any]  # JournalEntry attribute -> value, `utc` included
    explicit_id: str | None  # an id the sender assigned (json "id"), if any


@dataclass(frozen=True)
class LineFormat:
    kind: Literal["delimited", "json"] = "delimited"
    separator: str = ";"
    fields: tuple[str, ...] = FIELDS
    encoding: str = "utf-8"
    timezone: str = ""  # IANA zone of Zeitpunkt; "" = this machine's local zone

    def __post_init__(self) -> None:
        unknown = [f for f in self.fields if f not in ATTR]
        if unknown:
            raise ValueError(f"unknown field names {unknown}; valid: {', '.join(FIELDS)}")
        for required in ("In_Out", "Zeitpunkt", "VerbZustand"):
            if required not in self.fields:
                raise ValueError(f"the field order must contain {required}")
        if len(self.separator) != 1 or self.separator in '"\r\n':
            raise ValueError(f"the separator must be one character, not {self.separator!r}")

    # -- parsing ------------------------------------------------------------------------------
    def parse(self, raw: bytes) -> Parsed:
        text = self._decode(raw)
        if self.kind == "json":
            fields, explicit_id = self._split_json(text)
        else:
            fields, explicit_id = self._split_delimited(text), None
        return Parsed(self._validate(fields), explicit_id)

    def _decode(self, raw: bytes) -> str:
        line = raw.rstrip(b"\r\n")
        try:
            text = line.decode(self.encoding)
        except UnicodeDecodeError as exc:
            bad = line[exc.start : exc.start + 8]
            raise BadInputError(f"not valid {self.encoding} at byte {exc.start}: {bad!r}") from exc
        text = text.removeprefix("\ufeff")
        if not text.strip():
            raise BadInputError("empty line")
        return text

    def _split_delimited(self, text: str) -> dict[str, str]:
        if '"' in text:
            try:
                rows = list(csv.reader(io.StringIO(text), delimiter=self.separator, strict=True))
            except csv.Error as exc:
                raise BadInputError(f"malformed quoting: {exc}") from exc
            if len(rows) != 1:
                raise BadInputError("a line break inside a quoted field")
            row = rows[0]
        else:
            # Without quotes the CSV rules are a plain split (a line break inside is caught as a
            # control character); the csv module costs several times more per line.
            row = text.split(self.separator)
        if len(row) != len(self.fields):
            raise BadInputError(
                f"{len(row)} fields separated by {self.separator!r}, expected {len(self.fields)}"
            )
        return dict(zip(self.fields, row, strict=True))

    def _split_json(self, text: str) -> tuple[dict[str, str], str | None]:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadInputError(f"not a JSON object: {exc}") from exc
        if not isinstance(data, dict):
            raise BadInputError("JSON line is not an object")
        fields: dict[str, str] = {}
        explicit_id: str | None = None
        for key, value in data.items():
            if key == "id":
                explicit_id = _explicit_id(value)
                continue
            name = canonical_field(key)
            if name is None:
                continue
            if value is None:
                value = ""
            elif isinstance(value, int) and not isinstance(value, bool) and name in INT_FIELDS:
                value = str(value)
            elif not isinstance(value, str):
                raise BadInputError(f"field {name}: expected a string, got {type(value).__name__}")
            fields[name] = value
        return fields, explicit_id

    def _validate(self, fields: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        # Checked before strip(): strip() would silently remove \x0b, \x0c, \x1c-\x1f. One
        # search over all values; only a hit looks field by field, to name the field.
        controls = _CONTROL_RE.search("".join(fields.values())) is not None
        for name in FIELDS:
            raw = fields.get(name, "")
            if controls:
                if _FIELD_CONTROL_RE.search(raw):
                    raise BadInputError(f"field {name}: control character")
                raw = raw.replace("\t", " ")
            raw = raw.strip(" ")
            values[ATTR[name]] = _long(name, raw) if name in INT_FIELDS else raw
        values["in_out"] = _choice("In_Out", values["in_out"].lower(), {"i", "o"})
        values["verb_zustand"] = _choice("VerbZustand", values["verb_zustand"].upper(), STATES)
        values["utc"] = self._utc(values["zeitpunkt"])
        return values

    def _utc(self, zeitpunkt: str) -> str:
        local = local_time(zeitpunkt, "field Zeitpunkt")
        try:
            return (local - self._offset(local, zeitpunkt[:16])).isoformat() + "Z"
        except (OverflowError, ValueError) as exc:
            # Year 1 early or 9999 late, where UTC falls outside years 1-9999: OverflowError
            # from ZoneInfo, ValueError ("year 0 is out of range") from the machine's zone.
            raise BadInputError(f"field Zeitpunkt: {zeitpunkt!r} is out of range") from exc

    def _offset(self, local: datetime, minute: str) -> timedelta:
        """The zone's UTC offset at this local minute. Since 1972 every zone in tzdata changes
        its offset on a whole minute, so one conversion per minute serves every line in it (a
        backfill has thousands). A time in the spring-forward gap gets the offset from before
        the change (fold=0), in a configured zone and in the machine's alike."""
        cache = _OFFSETS.setdefault(self.timezone, {})
        offset = cache.get(minute)
        if offset is None:
            start = local.replace(second=0)
            aware = (
                start.replace(tzinfo=ZoneInfo(self.timezone))
                if self.timezone
                else start.astimezone()
            )
            offset = aware.utcoffset() or timedelta(0)
            if len(cache) >= _OFFSET_CACHE_MINUTES:
                cache.clear()
            cache[minute] = offset
        return offset

    # -- formatting ---------------------------------------------------------------------------
    def format(self, values: Mapping[str, Any], explicit_id: str | None = None) -> bytes:
        """One line (with `\\n`) for values keyed by JournalEntry attribute names."""
        texts = {name: _text(values.get(ATTR[name])) for name in self.fields}
        if self.kind == "json":
            obj: dict[str, str] = dict(texts)
            if explicit_id is not None:
                obj["id"] = explicit_id
            line = orjson.dumps(obj).decode()
        else:
            out = io.StringIO()
            csv.writer(out, delimiter=self.separator, lineterminator="").writerow(
                [texts[name] for name in self.fields]
            )
            line = out.getvalue()
        return (line + "\n").encode(self.encoding)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _long(name: str, raw: str) -> int | None:
    return None if raw == "" else whole_number(raw, f"field {name}", MAX_LONG)


def _choice(name: str, value: str, allowed: set[str] | frozenset[str]) -> str:
    if value not in allowed:
        raise BadInputError(f"field {name}: {value!r:.20}, expected one of {sorted(allowed)}")
    return value


def _explicit_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or _CONTROL_RE.search(value):
        raise BadInputError("field id: must be a string of 1 to 64 printable characters")
    return value


# -- the common case in one regex ---------------------------------------------------------------
# A text field as `_validate` leaves it unchanged: no separator, quote or control character, and
# no space at either end (strip(" ") would remove it).
_PLAIN_CHAR: Final = '"\\x00-\\x1f\\x7f-\\x9f'


def _plain_pattern(separator: str) -> re.Pattern[str]:
    sep = re.escape(separator)
    cls = "\\" + separator if separator in "\\]^-" else separator
    text = f"((?:[^ {cls}{_PLAIN_CHAR}](?:[^{cls}{_PLAIN_CHAR}]*[^ {cls}{_PLAIN_CHAR}])?)?)"
    number = "([0-9]{0,10})"
    time = "([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-5][0-9])"
    by_name = {"In_Out": "([io])", "Zeitpunkt": time, "VerbZustand": "(CONN|RING|BUSY)"}
    parts = [by_name.get(f, number if f in INT_FIELDS else text) for f in FIELDS]
    return re.compile(sep.join(parts))


_PLAIN_INTS: Final = tuple(i for i, f in enumerate(FIELDS) if f in INT_FIELDS)
_ZEITPUNKT: Final = FIELDS.index("Zeitpunkt")


class PlainLines:
    """`LineFormat.parse` for the lines a CTI server writes in the default delimited format:
    one regex validates the whole line in C; anything it does not match (quotes, spaces around
    a field, a control character, another field count, a capital `I`, a number of more than
    10 digits, a byte-order mark, another field order, JSON) returns None and takes
    `LineFormat.parse`, which accepts or rejects it with its reason. Equal to `parse` wherever
    it answers (tests/unit/test_plain_lines.py)."""

    def __init__(self, fmt: LineFormat) -> None:
        self.format = fmt
        self.usable = fmt.kind == "delimited" and fmt.fields == FIELDS
        self._match = _plain_pattern(fmt.separator).fullmatch
        # local minute "YYYY-MM-DD HH:MM" -> its UTC "YYYY-MM-DDTHH:MM:" ("" = not this way)
        self._utc_minute: dict[str, str] = {}

    def values(self, raw: bytes) -> tuple[tuple[Any, ...], str] | None:
        """(the field values in FIELDS order, ints as int or None; the UTC time), or None."""
        try:
            text = raw.rstrip(b"\r\n").decode(self.format.encoding)
        except UnicodeDecodeError:
            return None
        m = self._match(text)
        if m is None:
            return None
        values = list(m.groups())
        zeitpunkt = values[_ZEITPUNKT]
        minute = zeitpunkt[:16]
        prefix = self._utc_minute.get(minute)
        if prefix is None:
            prefix = self._minute(minute)
        if not prefix:
            return None
        for i in _PLAIN_INTS:
            number = values[i]
            if number:
                values[i] = number = int(number)
                if number > MAX_LONG:
                    return None
            else:
                values[i] = None
        return tuple(values), prefix + zeitpunkt[17:] + "Z"

    def _minute(self, minute: str) -> str:
        """The minute's UTC as `LineFormat` computes it, cut before the seconds; "" where that
        does not hold for every second of it: an offset of seconds (before 1900 in many zones),
        no such date, out of range."""
        try:
            utc = self.format._utc(minute + ":00")
        except BadInputError:
            utc = ""
        prefix = utc[:17] if utc.endswith(":00Z") else ""
        if len(self._utc_minute) >= _OFFSET_CACHE_MINUTES:
            self._utc_minute.clear()
        self._utc_minute[minute] = prefix
        return prefix
