"""Opening the journal database, with the setting to blame when it cannot be opened.

A database that refuses us for good (a login, an unknown database) is a configuration error:
restarting cannot fix it, so the process or command exits 2 naming `writer.dsn`. One that is
only unreachable is a configuration error for a command too (`purge`, `subject`: the admin is
there to read it), while the writer process waits it out (`unreachable_is_transient`).
"""

from __future__ import annotations

import pyodbc

from cti_journal.shared.config import WriterSettings
from cti_journal.shared.errors import ConfigError, ConnectionLostError
from cti_journal.shared.odbc import connect, redact_dsn, refused_for_good


def journal_dsn(writer: WriterSettings) -> str:
    """`writer.dsn`, or ConfigError when it is not set."""
    if not writer.dsn:
        raise ConfigError("writer.dsn", "the ODBC connection string of the journal database")
    return writer.dsn


def open_journal(
    writer: WriterSettings, *, unreachable_is_transient: bool = False
) -> pyodbc.Connection:
    """A connection in manual-commit mode (shared/odbc.py). ConfigError naming `writer.dsn`
    when it is not set or the database cannot be used; with `unreachable_is_transient`, an
    unreachable database raises ConnectionLostError instead, for the caller to retry."""
    dsn = journal_dsn(writer)
    try:
        return connect(dsn)
    except ConnectionLostError as exc:
        if unreachable_is_transient and not refused_for_good(exc.__cause__):
            raise
        raise ConfigError("writer.dsn", f"{redact_dsn(dsn)}: {exc}") from exc
