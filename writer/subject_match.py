"""Which journal rows are one data subject's: the number read exactly as the look-up reads it.

A number may be stored in any notation the CTI server delivered (`089 1234567`, `0891234567`,
`+49891234567`, `0049891234567`, with the outside prefix `0` in front): every distinct value of
Rufnummer and Weitergeleitet (with the row's Amtsholung and direction, where mapped) is read the
way the look-up reads journal numbers, and a row is the subject's when that one reading is the
subject's number. Rows a `pseudonymise` rule wrote are found by the number's pseudonym.

Exact only: the subject's number must be a complete number (digits and the separators people
type, read by the look-up as a full international number). `anonym`, `0891234xxx` or an
extension are refused — stored as text they are *other* people's shortened or suppressed
numbers, and a request must never touch those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import pyodbc

from cti_journal.shared.columns import ColumnType
from cti_journal.shared.config import Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.privacy import PrivacyRules, canonical_number
from cti_journal.shared.privacy_patterns import load_normalizer
from cti_journal.writer.dialect import quote_identifier
from cti_journal.writer.mapping import MappedColumn
from cti_journal.writer.table import TablePlan

NUMBER_TYPES: Final = (ColumnType.RUFNUMMER, ColumnType.WEITERGELEITET)
CONTACT_TYPES: Final = (
    ColumnType.NAME,
    ColumnType.FIRMA,
    ColumnType.DATENSATZ_ID,
    ColumnType.DATENSATZ_TABELLE,
)
_CHUNK: Final = 50  # matches per WHERE (each a few parameters)
# What a full number may be written with: digits and the separators people type. No letters
# (`anonym`, `xxx`), no wildcards.
_FULL_NUMBER: Final = re.compile(r"\+?[0-9][0-9 ()/.\-]*[0-9]")
MIN_SUBJECT_DIGITS: Final = 6


@dataclass(frozen=True)
class Match:
    """Stored values that are the subject's number, with the columns that decide how the value
    is read (an Amtsholung, the direction) as stored: None is SQL NULL."""

    column: MappedColumn  # Rufnummer or Weitergeleitet
    value: str  # as stored
    rows: int
    amtsholung: Any = None
    in_out: Any = None


class SubjectFinder:
    def __init__(self, settings: Settings, plan: TablePlan) -> None:
        self.plan = plan
        self.rules = PrivacyRules.from_settings(settings)
        self.normalizer = self.rules.normalizer or _normalizer(settings)
        self.by_type = {c.type: c for c in plan.columns}
        self.number_columns = [self.by_type[t] for t in NUMBER_TYPES if t in self.by_type]
        if ColumnType.RUFNUMMER not in self.by_type:
            raise ConfigError(
                "writer.columns",
                f"table {plan.table} has no column mapped to Journal_Rufnummer: "
                "nothing to look for",
            )
        self.pseudonym_key = bool(settings.privacy.pseudonym_key)

    def q(self, name: str) -> str:
        return quote_identifier(name, self.plan.dialect)

    def targets(self, number: str) -> set[str]:
        """The subject's number in its one canonical reading (and its pseudonym, if a key is
        set). What an admin types is read as dialled from outside: no outside prefix."""
        canonical = subject_number(number, self.normalizer)
        found = {canonical}
        if self.pseudonym_key:
            found.add(self.rules.pseudonym_of(canonical))
        return found

    def find(self, conn: pyodbc.Connection, number: str) -> list[Match]:
        wanted = self.targets(number)
        context = [self.by_type.get(ColumnType.AMTSHOLUNG), self.by_type.get(ColumnType.IN_OUT)]
        extra = "".join(f", {self.q(c.name)}" for c in context if c is not None)
        matches: list[Match] = []
        for column in self.number_columns:
            col = self.q(column.name)
            sql = (
                f"SELECT {col}{extra}, COUNT(*) FROM {self.q(self.plan.table)} "
                f"WHERE {col} IS NOT NULL GROUP BY {col}{extra}"
            )
            for row in conn.cursor().execute(sql).fetchall():
                values = iter(row[1:-1])
                amts, in_out = (next(values) if c is not None else None for c in context)
                value = str(row[0])
                if value.strip() and self.is_subject(value, amts, in_out, wanted):
                    matches.append(Match(column, value, int(row[-1]), amts, in_out))
        conn.rollback()
        return matches

    def is_subject(self, value: str, amtsholung: Any, in_out: Any, wanted: set[str]) -> bool:
        """The stored value is the subject's number when its one canonical reading — as the
        look-up reads a number of that direction and Amtsholung — is: a value that merely *could*
        be read as the subject's (an incoming 0043… is also a Kiel number with its outside
        prefix) belongs to someone else. Without a mapped In_Out column, values are read as
        outgoing."""
        if value in wanted:
            return True  # a pseudonym
        incoming = str(in_out or "").strip().lower() == "i"
        return (
            canonical_number(value, str(amtsholung or ""), self.normalizer, incoming=incoming)
            in wanted
        )

    # -- rows ---------------------------------------------------------------------------------
    def where(self, matches: Sequence[Match]) -> Iterator[tuple[str, list[Any]]]:
        """WHERE clauses (with parameters) that select exactly the matched rows — the value and
        the Amtsholung and direction it was read with — in chunks."""
        amts = self.by_type.get(ColumnType.AMTSHOLUNG)
        in_out = self.by_type.get(ColumnType.IN_OUT)
        for start in range(0, len(matches), _CHUNK):
            terms: list[str] = []
            params: list[Any] = []
            for m in matches[start : start + _CHUNK]:
                term = [f"{self.q(m.column.name)} = ?"]
                params.append(m.value)
                for column, stored in ((amts, m.amtsholung), (in_out, m.in_out)):
                    if column is None:
                        continue
                    if stored is None:
                        term.append(f"{self.q(column.name)} IS NULL")
                    else:
                        term.append(f"{self.q(column.name)} = ?")
                        params.append(stored)
                terms.append("(" + " AND ".join(term) + ")")
            yield " OR ".join(terms), params

    def rows(self, conn: pyodbc.Connection, matches: Sequence[Match]) -> list[dict[str, Any]]:
        names = ", ".join(self.q(c.name) for c in self.plan.columns)
        table = self.q(self.plan.table)
        seen: set[tuple[Any, ...]] = set()
        out: list[dict[str, Any]] = []
        for clause, params in self.where(matches):
            for row in conn.cursor().execute(f"SELECT {names} FROM {table} WHERE {clause}", params):
                values = tuple(row)
                if values in seen:  # matched by Rufnummer and by Weitergeleitet
                    continue
                seen.add(values)
                out.append(
                    {c.name: _plain(v) for c, v in zip(self.plan.columns, values, strict=True)}
                )
        conn.rollback()
        return out

    def erase(
        self,
        conn: pyodbc.Connection,
        matches: Sequence[Match],
        anonymise: bool,
        *,
        commit: bool = True,
    ) -> int:
        table = self.q(self.plan.table)
        changed = 0
        cursor = conn.cursor()
        for clause, params in self.where(matches):
            if anonymise:
                cleared = [c for t in (*NUMBER_TYPES, *CONTACT_TYPES) if (c := self.by_type.get(t))]
                sets = ", ".join(f"{self.q(c.name)} = {_empty(c)}" for c in cleared)
                cursor.execute(f"UPDATE {table} SET {sets} WHERE {clause}", params)
            else:
                cursor.execute(f"DELETE FROM {table} WHERE {clause}", params)
            changed += max(0, int(cursor.rowcount))
        if commit:
            conn.commit()
        return changed

    def event_ids(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """The event ids of matched rows, where the table keeps them (a column mapped to ID)."""
        id_column = self.by_type.get(ColumnType.ID)
        if id_column is None:
            return []
        return [str(r[id_column.name]) for r in rows if r.get(id_column.name)]


def subject_number(number: str, normalizer: Any) -> str:
    """The canonical reading (`+<E.164>`) of a data subject's number, or ConfigError: only a
    complete number the look-up reads as one is a subject's (see the module's docstring)."""
    text = number.strip()
    digits = sum(c.isdigit() for c in text)
    if not _FULL_NUMBER.fullmatch(text) or digits < MIN_SUBJECT_DIGITS:
        raise ConfigError(
            "NUMBER",
            "give the subject's complete phone number: digits with spaces, '+', '-', '/', "
            f"'(', ')' or '.' only, at least {MIN_SUBJECT_DIGITS} digits (e.g. 089 1234567 or "
            "+49 89 1234567); text such as 'anonym' or a shortened number ('0891234xxx') "
            "matches other people's rows and is refused",
        )
    canonical = canonical_number(text, "", normalizer, incoming=True)
    if not canonical.startswith("+"):
        raise ConfigError(
            "NUMBER",
            "not a complete external number the look-up can read (an internal extension, or "
            "digits missing): give it with its area code, e.g. 089 1234567",
        )
    return canonical


def _empty(column: MappedColumn) -> str:
    return "NULL" if column.nullable else "''"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)  # Decimal and driver-specific types


def _normalizer(settings: Settings) -> Any:
    return load_normalizer(settings.lookup)
