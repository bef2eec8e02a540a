"""`cti-journal subject export NUMBER` and `cti-journal subject erase NUMBER [--dry-run]`:
answers to data subjects (GDPR Art. 15 and 17) about one phone number.

A number may be stored in any notation the CTI server delivered (`089 1234567`, `0891234567`,
`+49891234567`, `0049891234567`, with the outside prefix `0` in front): the command reads every
distinct value of Rufnummer and Weitergeleitet (with the row's Amtsholung, where mapped) the way
the look-up reads journal numbers (lookup/normalize.py, through shared/privacy.py), and takes the
rows whose value can be the subject's number. Rows a `pseudonymise` rule wrote are found too,
by computing the number's pseudonym with the configured key. Shortened numbers (`0891234xxx`)
cannot be attributed to one person and are not matched.

`erase` deletes the rows (the default: erasure means the row is gone) or, with `--anonymise`,
keeps the calls for statistics and empties the numbers and the contact fields. It prints the
count per stored notation (masked) first; `--dry-run` stops there.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any, Final

import orjson
import pyodbc

from cti_journal.shared.arguments import DATABASE, add_config_argument, load_settings
from cti_journal.shared.columns import ColumnType
from cti_journal.shared.config import Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.masking import mask_number
from cti_journal.shared.odbc import classify
from cti_journal.shared.privacy import PrivacyRules, canonical_number
from cti_journal.shared.privacy_patterns import load_normalizer
from cti_journal.writer.dialect import quote_identifier
from cti_journal.writer.journal_db import open_journal
from cti_journal.writer.mapping import MappedColumn
from cti_journal.writer.table import TablePlan, load_plan

NUMBER_TYPES: Final = (ColumnType.RUFNUMMER, ColumnType.WEITERGELEITET)
CONTACT_TYPES: Final = (
    ColumnType.NAME,
    ColumnType.FIRMA,
    ColumnType.DATENSATZ_ID,
    ColumnType.DATENSATZ_TABELLE,
)
_CHUNK: Final = 50  # matches per WHERE (each a few parameters)


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
        canonical = canonical_number(number, "", self.normalizer, incoming=True)
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
                if value.strip() and self._is_subject(value, amts, in_out, wanted):
                    matches.append(Match(column, value, int(row[-1]), amts, in_out))
        conn.rollback()
        return matches

    def _is_subject(self, value: str, amtsholung: Any, in_out: Any, wanted: set[str]) -> bool:
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

    def erase(self, conn: pyodbc.Connection, matches: Sequence[Match], anonymise: bool) -> int:
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
        conn.commit()
        return changed


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


# -- the command ----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("action", choices=("export", "erase"))
    parser.add_argument("number", help="the data subject's phone number, in any notation")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="export (csv)")
    parser.add_argument("--output", "-o", help="export: write to this file (mode 0600), not stdout")
    parser.add_argument("--dry-run", action="store_true", help="erase: only count")
    parser.add_argument(
        "--anonymise",
        action="store_true",
        help="erase: keep the calls, empty their numbers and contact fields (default: delete)",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, DATABASE)
    w = settings.writer
    conn = open_journal(w)
    try:
        finder = SubjectFinder(settings, load_plan(conn, w.table, w.columns))
        matches = finder.find(conn, args.number)
        if args.action == "export":
            _export(finder.rows(conn, matches), finder.plan, args)
            return 0
        return _erase(conn, finder, matches, args)
    except pyodbc.Error as exc:
        print(f"cti-journal: subject {args.action} stopped: {classify(exc)}", file=sys.stderr)
        return 1
    finally:
        conn.close()


def _export(rows: list[dict[str, Any]], plan: TablePlan, args: argparse.Namespace) -> None:
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            _write(rows, plan, args.format, fh)
    else:
        _write(rows, plan, args.format, sys.stdout)
    where = args.output or "stdout"
    print(f"subject export: {len(rows)} rows to {where}", file=sys.stderr)


def _write(rows: list[dict[str, Any]], plan: TablePlan, fmt: str, fh: IO[str]) -> None:
    if fmt == "json":
        fh.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    writer = csv.DictWriter(fh, fieldnames=[c.name for c in plan.columns])
    writer.writeheader()
    writer.writerows(rows)


def _erase(
    conn: pyodbc.Connection, finder: SubjectFinder, matches: list[Match], args: argparse.Namespace
) -> int:
    for match in matches:
        print(f"  {match.column.name} = {mask_number(match.value)}: {match.rows} rows")
    total = sum(m.rows for m in matches)
    what = "anonymise" if args.anonymise else "delete"
    if args.dry_run:
        print(f"subject erase: would {what} the rows above ({total} matches; dry run)")
        return 0
    changed = finder.erase(conn, matches, args.anonymise)
    done = "anonymised" if args.anonymise else "deleted"
    print(f"subject erase: {done} {changed} rows")
    return 0
