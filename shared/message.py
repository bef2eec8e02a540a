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
from typing import Any, Final

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
    received_at: float  # unix time the gateway accepted the line; for end-to-end latency
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
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadInputError(f"message is not JSON: {exc}") from exc
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
    return [JournalEntry.assemble(data) for data in decode_bundle_fields(body)]


def decode_bundle_fields(body: bytes) -> list[dict[str, Any]]:
    """`decode_bundle` checked alike, but each entry as its dict of known fields (optional ones
    may be absent), not an object: for a stage that changes a few fields and passes the rest
    through (the look-up: `orjson.dumps` of the dict is the entry again, at a fraction of
    building, deriving and encoding a `JournalEntry`)."""
    if len(body) > MAX_BUNDLE_BYTES:
        raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_BUNDLE_BYTES}")
    if not body.lstrip().startswith(b"["):
        if len(body) > MAX_MESSAGE_BYTES:
            raise BadInputError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
        return [_valid(_loads(body))]
    items = _loads(body)
    if not items or len(items) > MAX_BUNDLE_ENTRIES:
        raise BadInputError(f"a bundle holds 1 to {MAX_BUNDLE_ENTRIES} entries, not {len(items)}")
    return [_valid(item) for item in items]


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
