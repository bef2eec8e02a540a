"""`cti-journal subject export|erase NUMBER`: answers to data subjects (GDPR Art. 15 and 17)
about one phone number, over every place the pipeline keeps it.

* the journal table: rows whose number reads as the subject's (writer/subject_match.py);
* the ledger: the event ids of those rows. It holds only the id and the call's day, no number;
  `erase` keeps these entries on purpose — they are what stops a redelivered message or a
  re-import of the same journal file from writing the erased rows again. `export` lists them.
* the dead-letter queue `<prefix>.dead`: letters with the subject's entries or line
  (writer/subject_dead.py: erasure republishes the other letters with confirms, losing none).

Every request (also `--dry-run` and `export`) leaves a record in `<table>_audit`: who
(`--operator`, the OS user, the host), when, what, and the counts per table — never the number
(writer/subject_audit.py). An erasure is committed together with its record.

The number must be complete (`089 1234567`, `+49 89 1234567`); shortened or suppressed values
are other people's and are refused. `erase` deletes the rows (the default: erasure means the row
is gone) or, with `--anonymise`, keeps the calls for statistics and empties the numbers and the
contact fields; `--dry-run` lists every row, ledger entry and dead letter it would touch.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import pyodbc

from cti_journal.shared.arguments import WRITER, add_config_argument, load_settings
from cti_journal.shared.config import Settings
from cti_journal.shared.masking import mask_number
from cti_journal.shared.odbc import classify
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.privacy_patterns import load_normalizer
from cti_journal.writer.journal_db import journal_dsn, open_journal
from cti_journal.writer.ledger import Ledger
from cti_journal.writer.subject_audit import AuditRecord, AuditTable, os_user
from cti_journal.writer.subject_dead import DeadLetters, DeadReport
from cti_journal.writer.subject_match import Match, SubjectFinder, subject_number
from cti_journal.writer.subject_output import Export, listing, open_new_file, write_export
from cti_journal.writer.table import load_plan


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("action", choices=("export", "erase"))
    parser.add_argument("number", help="the data subject's complete phone number, any notation")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="export (csv)")
    parser.add_argument("--output", "-o", help="export: write to this NEW file (mode 0600)")
    parser.add_argument("--dry-run", action="store_true", help="erase: list what it would touch")
    parser.add_argument(
        "--anonymise",
        action="store_true",
        help="erase: keep the calls, empty their numbers and contact fields (default: delete)",
    )
    parser.add_argument("--operator", default="", help="who handles the request (default: OS user)")
    parser.add_argument("--reference", default="", help="the request's ticket or letter, audited")
    parser.add_argument(
        "--skip-dead-letters",
        action="store_true",
        help="leave out the dead-letter queue (broker down); the audit record says so",
    )


@dataclass
class Found:
    export: Export
    matches: list[Match]
    dead: DeadReport | None


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, WRITER)  # the journal database and the broker's dead letters
    w = settings.writer
    journal_dsn(w)  # a missing DSN before anything else
    rules = PrivacyRules.from_settings(settings)
    subject_number(args.number, rules.normalizer or load_normalizer(settings.lookup))
    conn = open_journal(w)
    try:
        finder = SubjectFinder(settings, load_plan(conn, w.table, w.columns))
        audit = AuditTable(finder.plan.table, finder.plan.dialect)
        audit.ensure(conn)
        erasing = args.action == "erase" and not args.dry_run
        found = _find(conn, settings, finder, args, erase_dead=erasing)
        if args.action == "export":
            return _export(conn, audit, found, args)
        return _erase(conn, audit, finder, found, args)
    except pyodbc.Error as exc:
        print(f"cti-journal: subject {args.action} stopped: {classify(exc)}", file=sys.stderr)
        return 1
    finally:
        conn.close()


def _find(
    conn: pyodbc.Connection,
    settings: Settings,
    finder: SubjectFinder,
    args: argparse.Namespace,
    *,
    erase_dead: bool,
) -> Found:
    wanted = finder.targets(args.number)
    matches = finder.find(conn, args.number)
    rows = finder.rows(conn, matches)
    export = Export([c.name for c in finder.plan.columns], rows)
    export.ledger = _in_ledger(conn, settings, finder, finder.event_ids(rows))
    dead = None
    if not args.skip_dead_letters:
        # Erasure goes through the queue first: the journal's commit below then records it.
        dead = DeadLetters(settings, finder, wanted).scan(erase=erase_dead)
        export.dead = dead.matches
    return Found(export, matches, dead)


def _in_ledger(
    conn: pyodbc.Connection, settings: Settings, finder: SubjectFinder, ids: list[str]
) -> list[str]:
    if not ids:
        return []
    name = settings.writer.ledger_table or f"{finder.plan.table}_ledger"
    ledger = Ledger(name, finder.plan.dialect)
    try:
        ledger.detect(conn)
        found = ledger.existing(conn.cursor(), ids)
    except pyodbc.Error:
        return []  # no ledger (yet): nothing of the subject's in it
    finally:
        conn.rollback()
    return [i for i in ids if i in found]


def _record(args: argparse.Namespace, action: str, found: Found, detail: str) -> AuditRecord:
    dead = found.dead
    where = (
        "dead letters: not looked at (--skip-dead-letters)"
        if dead is None
        else f"dead letters ({dead.queue}): {len(dead.matches)} of {dead.scanned}"
    )
    return AuditRecord(
        action=action,
        operator=args.operator or os_user(),
        reference=args.reference,
        journal_rows=len(found.export.rows),
        ledger_rows=len(found.export.ledger),
        dead_letters=len(dead.matches) if dead else 0,
        detail=f"{detail}; ledger: {len(found.export.ledger)} entries; {where}",
    )


def _export(
    conn: pyodbc.Connection, audit: AuditTable, found: Found, args: argparse.Namespace
) -> int:
    export = found.export
    if args.output:
        with open_new_file(args.output) as fh:
            write_export(export, args.format, fh, terminal=False)
    else:
        write_export(export, args.format, sys.stdout, terminal=True)
    detail = f"journal: {len(export.rows)} rows exported to {'a file' if args.output else 'stdout'}"
    audit.add(conn.cursor(), _record(args, "export", found, detail))
    conn.commit()
    where = args.output or "stdout"
    print(
        f"subject export: {len(export.rows)} rows, {len(export.ledger)} ledger entries, "
        f"{len(export.dead)} dead letters to {where} (recorded in {audit.name})",
        file=sys.stderr,
    )
    return 0


def _erase(
    conn: pyodbc.Connection,
    audit: AuditTable,
    finder: SubjectFinder,
    found: Found,
    args: argparse.Namespace,
) -> int:
    for match in found.matches:
        print(f"  {match.column.name} = {mask_number(match.value)}: {match.rows} rows")
    total = len(found.export.rows)
    what = "anonymise" if args.anonymise else "delete"
    if args.dry_run:
        for line in listing(found.export):
            print(line)
        detail = f"journal: {total} rows would be {what}d (dry run)"
        audit.add(conn.cursor(), _record(args, f"{what}-dry-run", found, detail))
        conn.commit()
        print(
            f"subject erase: would {what} {total} rows and remove "
            f"{len(found.export.dead)} dead letters (dry run; recorded in {audit.name})"
        )
        return 0
    changed = finder.erase(conn, found.matches, args.anonymise, commit=False)
    done = "anonymised" if args.anonymise else "deleted"
    audit.add(conn.cursor(), _record(args, what, found, f"journal: {changed} rows {done}"))
    conn.commit()  # the erasure and its record together
    dead = found.dead
    letters = (
        f"; dead letters: {dead.removed} removed, {dead.trimmed} bundles trimmed"
        if dead
        else "; dead letters NOT looked at (--skip-dead-letters)"
    )
    print(f"subject erase: {done} {changed} rows{letters} (recorded in {audit.name})")
    return 0
