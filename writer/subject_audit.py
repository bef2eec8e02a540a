"""The audit record of data subject requests: who asked for what, when, and what it touched —
never the number itself.

It is a table next to the journal, `<table>_audit`, one row per request (export, erase, dry
run): kept in the database whose data it is about, so it is backed up, access-controlled and
retained with it, and every admin host that runs `subject` writes to the same place (a file would
be on whichever host ran the command). An erasure and its audit row are committed in one
transaction: there is no erasure without its record. The row holds the operator (`--operator`,
default the OS user), the OS user and host, the time (UTC), the action, counts per store
(journal rows, ledger entries, dead letters) and a short text per table — no number, no name,
no row contents: the record must not keep what was erased.
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass

import pyodbc

from cti_journal.writer.ddl import create_if_missing
from cti_journal.writer.dialect import Dialect, quote_identifier

_TEXT = {Dialect.MSSQL: "NVARCHAR", Dialect.ACCESS: "TEXT"}


@dataclass(frozen=True)
class AuditRecord:
    action: str  # export, erase, anonymise, erase-dry-run, anonymise-dry-run
    operator: str
    reference: str  # the request's ticket or letter, if given (--reference)
    journal_rows: int
    ledger_rows: int
    dead_letters: int
    detail: str  # per table: what matched and what was done, counts only


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container)
        return "uid-unknown"


class AuditTable:
    def __init__(self, journal_table: str, dialect: Dialect) -> None:
        self.name = f"{journal_table}_audit"
        self.dialect = dialect
        self.q = quote_identifier(self.name, dialect)

    def create_sql(self) -> str:
        text = _TEXT.get(self.dialect, "VARCHAR")
        return (
            f"CREATE TABLE {self.q} (requested_at {text}(20) NOT NULL, "
            f"operator {text}(200) NOT NULL, os_user {text}(100) NOT NULL, "
            f"host {text}(200) NOT NULL, action {text}(20) NOT NULL, "
            f"reference {text}(200) NOT NULL, journal_rows INTEGER NOT NULL, "
            f"ledger_rows INTEGER NOT NULL, dead_letters INTEGER NOT NULL, "
            f"detail {text}(1000) NOT NULL)"
        )

    def ensure(self, conn: pyodbc.Connection) -> None:
        def exists() -> bool:
            return any(True for _ in conn.cursor().tables(table=self.name))

        create_if_missing(conn, exists, self.create_sql())

    def add(self, cursor: pyodbc.Cursor, record: AuditRecord) -> None:
        """Inserts the row; the caller commits (with the erasure it records)."""
        cursor.execute(
            f"INSERT INTO {self.q} (requested_at, operator, os_user, host, action, reference, "
            "journal_rows, ledger_rows, dead_letters, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            record.operator[:200],
            os_user()[:100],
            socket.gethostname()[:200],
            record.action,
            record.reference[:200],
            record.journal_rows,
            record.ledger_rows,
            record.dead_letters,
            record.detail[:1000],
        )
