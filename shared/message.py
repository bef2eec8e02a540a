"""The message that travels gateway → lookup → writer: one journal entry, versioned, orjson.

Derived messages (the enriched entry) are made with `JournalEntry.evolve` (`dataclasses.replace`,
cheaper); a message is never mutated. `decode` validates everything it returns, so a handler can
trust a decoded entry.

Versions, for rolling upgrades: `v` is the schema's *major* version. A change that only adds an
optional field keeps `v`; readers are tolerant across it: a field this version does not know is
ignored (a newer gateway's entry is read by an older lookup or writer), and a field a newer version
added that an older sender leaves out takes its default. Only a change that an older reader would
misread bumps `v`; a message of a major version this worker cannot read is bad input with a reason
that says which side to upgrade.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson

from cti_journal.shared.errors import BadInputError

SCHEMA_VERSION: Final = 1  # the major version this code writes
READABLE_VERSIONS: Final = frozenset({1})  # the major versions this code reads
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_BUNDLE_ENTRIES: Final = 200
MAX_BUNDLE_BYTES: Final = MAX_BUNDLE_ENTRIES * MAX_MESSAGE_BYTES


class Lookup:
    """What the look-up did for an entry (the `lookup` field)."""

    PENDING: Final = "pending"  # not looked up yet
    HIT: Final = "hit"  # a contact record for this exact number
    COMPANY: Final = "company"  # the company's switchboard record (direct-dial number)
    MISS: Final = "miss"  # nothing found; look-up fields stay empty
    PRESET: Final = "preset"  # arrived enriched (the CTI clients did the look-up)
    SKIPPED: Final = "skipped"  # no number to look up (anonymous, suppressed)

    ALL: Final = frozenset({PENDING, HIT, COMPANY, MISS, PRESET, SKIPPED})


@dataclass(frozen=True, slots=True)
class JournalEntry:
    event_id: str
    source: str
    # unix time the gateway accepted the line; for end-to-end latency. A JSON integer stays an int.
    received_at: int | float
    in_out: str
    zeitpunkt: str  # local wall-clock time as the CTI server wrote it: YYYY-MM-DD HH:MM:SS
    utc: str  # the same instant, unambiguous: YYYY-MM-DDTHH:MM:SSZ
    verb_zustand: str
    rufnummer: str = ""
    name: str = ""
    firma: str = ""
    lokale_rufnummer: str = ""
    weitergeleitet: str = ""
    datensatz_id: str = ""
    datensatz_tabelle: str = ""
    rufdauer_ms: int | None = None
    verbdauer_sec: int | None = None
    lcr: str = ""
    gebuehren: int | None = None
    amtsholung: str = ""
    lookup: str = Lookup.PENDING
    v: int = SCHEMA_VERSION
    # Which gateway read the line (`gateway.name`): a pair sends each entry twice, and the
    # writer counts per gateway which copy was written and which was skipped. Optional: entries
    # from gateways without it decode with "", and older readers ignore it (tolerant reader).
    gateway: str = ""

    @property
    def has_contact(self) -> bool:
        """True when the entry already names a contact (the CTI clients did the look-up)."""
        return bool(self.name or self.datensatz_id)

    def encode(self) -> bytes:
        return orjson.dumps(self)  # a dataclass: its fields, in order, as an object

    def evolve(self, **changes: Any) -> JournalEntry:
        """`dataclasses.replace`, at half the cost: the lookup derives an entry from every entry
        it decodes. Unknown field names raise TypeError, as replace does."""
        if not changes.keys() <= _FIELD_SET:
            raise TypeError(f"JournalEntry has no fields {sorted(changes.keys() - _FIELD_SET)}")
        entry: JournalEntry = _new(JournalEntry)
        for name, slot, _default in _SLOTS:
            slot.__set__(entry, changes[name] if name in changes else slot.__get__(self))
        return entry

    @classmethod
    def assemble(cls, data: Mapping[str, Any]) -> JournalEntry:
        """`JournalEntry(**data)` at ~40 % of the cost, for a mapping whose keys are all fields
        and that holds every field without a default (decode checks both first; the gateway's
        parser makes every field). A frozen dataclass's __init__ sets each of its 21 fields
        through object.__setattr__; this sets the slots directly."""
        entry: JournalEntry = _new(cls)
        get = data.get
        for name, slot, default in _SLOTS:
            slot.__set__(entry, get(name, default))
        return entry

    @classmethod
    def decode(cls, body: bytes) -> JournalEntry:
        if len(body) > MAX_MESSAGE_BYTES:
            raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
        try:
            fields = _ONE.decode(body)
        except msgspec.MsgspecError:
            fields = None
        if fields is None or fields.v not in READABLE_VERSIONS:
            return cls._decode_slowly(body)
        return _entry(fields)

    @classmethod
    def _decode_slowly(cls, body: bytes) -> JournalEntry:
        """The reference reader (orjson and the checks in Python): it says what is wrong with a
        message the fast one refused, and reads what only it reads (unknown fields)."""
        data = _loads(body)
        if isinstance(data, list):
            raise BadInputError("a bundle of entries where one entry was expected")
        return cls._from_dict(data)

    @classmethod
    def _from_dict(cls, data: Any) -> JournalEntry:
        return cls.assemble(_valid(data))


def decode_bundle(body: bytes) -> list[JournalEntry]:
    """The entries of a message: a bundle (a JSON array of entries) or a single entry.

    Bundles carry several entries per AMQP message so that the broker's per-message work is
    shared: the two broker hops are the largest part of the pipeline's CPU per entry."""
    return _entries(decode_bundle_fields(body))


def decode_bundle_fields(body: bytes) -> list[EntryFields]:
    """`decode_bundle` checked alike, but each entry as its `EntryFields`: for a stage that
    changes a few fields and passes the rest on (the look-up: `encode_fields` of them is the
    message again, without a `JournalEntry` being built, derived and encoded).

    Two readers, one verdict. The fast one (msgspec: parsed and type-checked in C, ~4 × less
    CPU than orjson and the checks in Python) takes the common message: every field known, of
    its exact type, a version this code reads. Anything else - a fault, or a field of a newer
    minor version - goes to the reference reader, which raises the BadInputError that says why,
    or reads it (ignoring the unknown fields). A property test holds the two to one verdict."""
    if len(body) > MAX_BUNDLE_BYTES:
        raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_BUNDLE_BYTES}")
    bundle = body.lstrip().startswith(b"[")
    if not bundle and len(body) > MAX_MESSAGE_BYTES:
        raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        entries = _MANY.decode(body) if bundle else [_ONE.decode(body)]
    except msgspec.MsgspecError:
        entries = []
    if not 0 < len(entries) <= MAX_BUNDLE_ENTRIES or not _readable(entries):
        return [_fields(data) for data in _fields_slowly(body, bundle=bundle)]
    return entries


def _readable(entries: list[EntryFields]) -> bool:
    return all(entry.v in READABLE_VERSIONS for entry in entries)


def _fields_slowly(body: bytes, *, bundle: bool) -> list[dict[str, Any]]:
    """The reference reader of `decode_bundle_fields` (see there)."""
    if not bundle:
        return [_valid(_loads(body))]
    items = _loads(body)
    if not items or len(items) > MAX_BUNDLE_ENTRIES:
        raise BadInputError(f"a bundle holds 1 to {MAX_BUNDLE_ENTRIES} entries, not {len(items)}")
    return [_valid(item) for item in items]


def encode_fields(entries: list[EntryFields]) -> bytes:
    """One message for entries as `decode_bundle_fields` gave them (changed or not): a bundle,
    or a plain object for a single entry (as `encode_bundle`)."""
    return _encode(entries[0] if len(entries) == 1 else entries)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"message is not JSON: {exc}") from exc


def _valid(data: Any) -> dict[str, Any]:
    """An entry's checked fields (`JournalEntry._from_dict` without building the object)."""
    if not isinstance(data, dict):
        raise BadInputError("message is not a JSON object")
    version = data.get("v")
    if type(version) is not int or version not in READABLE_VERSIONS:  # True == 1, 1.0 == 1
        raise BadInputError(_version_problem(version))
    return _checked(data)


def encode_bundle(bodies: list[bytes]) -> bytes:
    """One message for several encoded entries; a single entry stays a plain object."""
    if len(bodies) == 1:
        return bodies[0]
    return b"[" + b",".join(bodies) + b"]"


_FIELDS: Final = tuple(f.name for f in dataclasses.fields(JournalEntry))
_FIELD_SET: Final = frozenset(_FIELDS)
# (name, slot descriptor, default) per field; a required field's default is MISSING, which
# `assemble` never sets because its callers hold every required field.
_SLOTS: Final = tuple(
    (f.name, JournalEntry.__dict__[f.name], f.default) for f in dataclasses.fields(JournalEntry)
)
_new: Final = object.__new__
_INT_FIELDS: Final = frozenset({"rufdauer_ms", "verbdauer_sec", "gebuehren"})
# field -> the exact types its JSON value may have (`v` is checked before, by value)
_KINDS: Final[dict[str, frozenset[type]]] = {
    name: frozenset({int, type(None)})
    if name in _INT_FIELDS
    else frozenset({int, float})
    if name == "received_at"
    else frozenset({int})
    if name == "v"
    else frozenset({str})
    for name in _FIELDS
}
# The fields without a default: `assemble` needs each of them, and decode checks them first.
_REQUIRED: Final = frozenset(
    f.name
    for f in dataclasses.fields(JournalEntry)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)


def _version_problem(version: object) -> str:
    readable = ", ".join(str(v) for v in sorted(READABLE_VERSIONS))
    if type(version) is int and version > max(READABLE_VERSIONS):
        return (
            f"message schema version {version} is newer than this worker reads ({readable}):"
            " upgrade this worker, then replay the dead letter (`cti-journal dlq replay`)"
        )
    return f"message schema version {version!r:.20} is not one this worker reads ({readable})"


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    # Exact types: orjson makes exactly str, int, float, bool, None; a bool is not a number here.
    unknown = False
    for name, value in data.items():
        allowed = _KINDS.get(name)
        if allowed is None:
            unknown = True  # a field of a newer minor version: ignored (tolerant reader)
        elif type(value) not in allowed:
            raise BadInputError(f"message field {name!r} has the wrong type: {value!r:.60}")
    if unknown:
        data = {name: value for name, value in data.items() if name in _KINDS}
    if not data.keys() >= _REQUIRED:
        raise BadInputError(f"message lacks fields: {sorted(_REQUIRED - data.keys())}")
    if data.get("lookup", Lookup.PENDING) not in Lookup.ALL:
        raise BadInputError(f"message field 'lookup' is {data['lookup']!r:.30}")
    return data


# The fast reader's integers: int64. orjson reads up to uint64 as an int (and a wider one as a
# float, which no int field takes); what lies between goes to the reference reader.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class EntryFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One entry as a message carries it, every field checked: `JournalEntry`'s fields with
    their exact JSON types (a bool is no number; `v` required; `lookup` one of Lookup.ALL).
    Mutable, for a stage that fills a few fields and passes the rest on. An unknown field makes
    the fast reader refuse it, so that the reference reader, which ignores it, decides."""

    event_id: str
    source: str
    received_at: _Int | float
    in_out: str
    zeitpunkt: str
    utc: str
    verb_zustand: str
    rufnummer: str = ""
    name: str = ""
    firma: str = ""
    lokale_rufnummer: str = ""
    weitergeleitet: str = ""
    datensatz_id: str = ""
    datensatz_tabelle: str = ""
    rufdauer_ms: _Int | None = None
    verbdauer_sec: _Int | None = None
    lcr: str = ""
    gebuehren: _Int | None = None
    amtsholung: str = ""
    lookup: Literal["pending", "hit", "company", "miss", "preset", "skipped"] = "pending"
    v: int  # required on the wire, unlike in JournalEntry; checked against READABLE_VERSIONS
    gateway: str = ""


_ONE: Final = msgspec.json.Decoder(EntryFields)
_MANY: Final = msgspec.json.Decoder(list[EntryFields])
_encode: Final = msgspec.json.Encoder().encode


def _fields(data: dict[str, Any]) -> EntryFields:
    """Fields the reference reader checked, as the fast one gives them (unchecked again: a
    uint64 beyond the fast reader's int64 is fine)."""
    return EntryFields(**data)


def _entry(fields: EntryFields) -> JournalEntry:
    return msgspec.convert(fields, JournalEntry, from_attributes=True)


def _entries(fields: list[EntryFields]) -> list[JournalEntry]:
    return msgspec.convert(fields, list[JournalEntry], from_attributes=True)
