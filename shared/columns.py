"""The 16 `Journal_*` column types of the reventix server journal (see the seed), plus `ID`.

This module is the single place that knows each type's seed format, its default size and which
field of a `JournalEntry` feeds it.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class Kind(enum.Enum):
    TEXT = "text"
    INTEGER = "integer"
    DATETIME = "datetime"


class ColumnType(enum.Enum):
    IN_OUT = "Journal_In_Out"
    ZEITPUNKT = "Journal_Zeitpunkt"
    ZEITPUNKT_NUMERISCH = "Journal_ZeitpunktNumerisch"
    VERB_ZUSTAND = "Journal_VerbZustand"
    RUFNUMMER = "Journal_Rufnummer"
    NAME = "Journal_Name"
    FIRMA = "Journal_Firma"
    LOKALE_RUFNUMMER = "Journal_LokaleRufnummer"
    WEITERGELEITET = "Journal_Weitergeleitet"
    DATENSATZ_ID = "Journal_DatensatzID"
    DATENSATZ_TABELLE = "Journal_DatensatzTabelle"
    RUFDAUER_MS = "Journal_Rufdauer_ms"
    VERBDAUER_SEC = "Journal_VerbDauer_sec"
    LCR = "Journal_LCR"
    GEBUEHREN = "Journal_Gebühren"
    AMTSHOLUNG = "Journal_Amtsholung"
    ID = "ID"


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    type: ColumnType
    kind: Kind
    size: int  # characters for TEXT; 0 otherwise
    field: str  # attribute of JournalEntry that feeds the column
    content: str


SPECS: dict[ColumnType, ColumnSpec] = {
    s.type: s
    for s in (
        ColumnSpec(ColumnType.IN_OUT, Kind.TEXT, 1, "in_out", "i = incoming, o = outgoing"),
        ColumnSpec(ColumnType.ZEITPUNKT, Kind.TEXT, 20, "zeitpunkt", "YYYY-MM-DD HH:MM:SS"),
        ColumnSpec(ColumnType.ZEITPUNKT_NUMERISCH, Kind.DATETIME, 0, "zeitpunkt", "date/time"),
        ColumnSpec(ColumnType.VERB_ZUSTAND, Kind.TEXT, 4, "verb_zustand", "CONN, RING or BUSY"),
        ColumnSpec(ColumnType.RUFNUMMER, Kind.TEXT, 30, "rufnummer", "other party's number"),
        ColumnSpec(ColumnType.NAME, Kind.TEXT, 100, "name", "name for the number"),
        ColumnSpec(ColumnType.FIRMA, Kind.TEXT, 100, "firma", "company for the number"),
        ColumnSpec(ColumnType.LOKALE_RUFNUMMER, Kind.TEXT, 30, "lokale_rufnummer", "own MSN"),
        ColumnSpec(ColumnType.WEITERGELEITET, Kind.TEXT, 30, "weitergeleitet", "forwarded via"),
        ColumnSpec(ColumnType.DATENSATZ_ID, Kind.TEXT, 50, "datensatz_id", "contact record id"),
        ColumnSpec(ColumnType.DATENSATZ_TABELLE, Kind.TEXT, 30, "datensatz_tabelle", "its table"),
        ColumnSpec(ColumnType.RUFDAUER_MS, Kind.INTEGER, 0, "rufdauer_ms", "ringing time, ms"),
        ColumnSpec(ColumnType.VERBDAUER_SEC, Kind.INTEGER, 0, "verbdauer_sec", "talk time, s"),
        ColumnSpec(ColumnType.LCR, Kind.TEXT, 10, "lcr", "least-cost-routing prefix"),
        ColumnSpec(ColumnType.GEBUEHREN, Kind.INTEGER, 0, "gebuehren", "charges in cents"),
        ColumnSpec(ColumnType.AMTSHOLUNG, Kind.TEXT, 4, "amtsholung", "outside-line prefix"),
        ColumnSpec(ColumnType.ID, Kind.TEXT, 32, "event_id", "the entry's stable event id"),
    )
}

JOURNAL_TYPES: tuple[ColumnType, ...] = tuple(t for t in ColumnType if t is not ColumnType.ID)


def _fold(name: str) -> str:
    folded = unicodedata.normalize("NFC", name).strip().casefold()
    folded = folded.replace("ü", "ue")
    return folded.removeprefix("journal_")


_BY_FOLDED: dict[str, ColumnType] = {_fold(t.value): t for t in ColumnType}


def type_for_name(name: str) -> ColumnType | None:
    """The column type a column *name* stands for by default, or None.

    Case-insensitive, with or without the `Journal_` prefix, `Gebühren` and `Gebuehren` alike.
    """
    return _BY_FOLDED.get(_fold(name))


def parse_type(value: str) -> ColumnType:
    """A column type given in the config (e.g. "Journal_Name", "name", "ID"); ValueError if none."""
    found = type_for_name(value)
    if found is None:
        names = ", ".join(t.value for t in ColumnType)
        raise ValueError(f"unknown column type {value!r}; one of {names}")
    return found
