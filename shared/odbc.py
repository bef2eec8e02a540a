"""pyodbc at the edge: connect with timeouts, and translate driver errors into the project's
error classes by what the driver reports — SQLSTATE *and* message — because drivers disagree
(the SQLite ODBC driver reports a UNIQUE violation as HY000, see shared/measurements.md)."""

from __future__ import annotations

import logging
import re
from typing import Final

import pyodbc

from cti_journal.shared import secrets
from cti_journal.shared.errors import ConnectionLostError, PermanentError, TransientError

log = logging.getLogger(__name__)

# Things that mean "the connection is gone": reconnect and try again; the entry is innocent.
_CONNECTION_STATES: Final = ("08", "HYT01", "57P01", "57P02", "57P03", "IM002", "HY000:closed")
_CONNECTION_TEXT: Final = re.compile(
    r"server has gone away|lost connection|connection (?:was )?(?:closed|reset|refused|lost)"
    r"|could not connect|no connection|communication link|server closed the connection"
    r"|terminating connection|broken pipe|can't connect|Connection timed out"
    r"|the database system is (?:starting up|shutting down)",
    re.IGNORECASE,
)
# Things worth retrying on the same connection: lock and serialization conflicts, timeouts.
_TRANSIENT_STATES: Final = ("40001", "40P01", "HYT00", "55P03", "57014")
_TRANSIENT_TEXT: Final = re.compile(
    r"database is locked|database table is locked|SQLITE_BUSY|deadlock|lock wait timeout"
    r"|try restarting transaction|too many connections",
    re.IGNORECASE,
)
# Things the data did: this row will never go in as it is.
_ROW_STATES: Final = ("22", "23")
_ROW_TEXT: Final = re.compile(
    r"constraint failed|UNIQUE constraint|NOT NULL constraint|CHECK constraint|datatype mismatch"
    r"|out of range|too long|Incorrect .* value|Data truncat|value too large|duplicate",
    re.IGNORECASE,
)


# At start-up: the database answered and will keep refusing until someone changes the config or
# the database - credentials, an unknown database, driver or DSN, a table, column or query that
# does not exist. PostgreSQL reports all of these as 08001 with a FATAL text, MariaDB as 28000 or
# 42xxx, unixODBC as IM002 or 01000 "Can't open lib".
_REFUSED_STATES: Final = ("28", "3D", "42", "IM")
_REFUSED_TEXT: Final = re.compile(
    r"password authentication failed|authentication failed|access denied|login failed"
    r"|role \S+ does not exist|database \S+ does not exist|unknown database|no pg_hba\.conf entry"
    r"|permission denied|no such (?:table|column)|doesn't exist|can't open lib"
    r"|data source name not found",
    re.IGNORECASE,
)


def sqlstate(exc: pyodbc.Error) -> str:
    first = exc.args[0] if exc.args else ""
    return first if isinstance(first, str) and len(first) == 5 else ""


def describe(exc: pyodbc.Error) -> str:
    """The driver's message without the ODBC decoration."""
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    text = re.sub(r"\[[^\]]*\]", "", text).strip()
    return re.sub(r"\s*\(SQL\w+\)$", "", text).removesuffix(" (0)").strip()


class RowError(PermanentError):
    """The database rejected a row's values (constraint, type, size)."""


class UnknownDatabaseError(TransientError):
    """A driver error we cannot place: isolated by bisecting, then retried a bounded number of
    times before it is dead-lettered, so that it can neither block the queue nor lose the entry."""


class SchemaError(ConnectionLostError):
    """The table is not as it was (dropped, altered, permission revoked): no entry's fault.
    The writer waits as for a lost connection and reads the catalog again on reconnect, rather
    than dead-lettering every entry while an admin repairs the table."""


def classify(exc: pyodbc.Error) -> TransientError | PermanentError:
    state = sqlstate(exc)
    text = describe(exc)
    message = f"{state or 'no SQLSTATE'}: {text}"
    if (
        state.startswith("08")
        or state in _CONNECTION_STATES
        or _CONNECTION_TEXT.search(text)
        or isinstance(exc, pyodbc.InterfaceError)
    ):
        return ConnectionLostError(message)
    if state.startswith("42") or re.search(r"no such (?:table|column)", text, re.IGNORECASE):
        return SchemaError(message)
    if state in _TRANSIENT_STATES or _TRANSIENT_TEXT.search(text):
        return TransientError(message)
    if (
        state[:2] in _ROW_STATES
        or _ROW_TEXT.search(text)
        or isinstance(exc, pyodbc.IntegrityError | pyodbc.DataError)
    ):
        return RowError(message)
    return UnknownDatabaseError(message)


def refused_for_good(exc: BaseException | None) -> bool:
    """True for a driver error that restarting cannot fix (see _REFUSED_TEXT): the process
    should exit 2 (a configuration problem) instead of retrying."""
    if not isinstance(exc, pyodbc.Error):
        return False
    return sqlstate(exc)[:2] in _REFUSED_STATES or bool(_REFUSED_TEXT.search(describe(exc)))


def connect(dsn: str, *, login_timeout_s: int = 10, query_timeout_s: int = 60) -> pyodbc.Connection:
    """A connection in manual-commit mode with timeouts, or ConnectionLostError."""
    try:
        conn = pyodbc.connect(dsn, autocommit=False, timeout=login_timeout_s)
    except pyodbc.Error as exc:
        raise ConnectionLostError(f"cannot connect: {describe(exc)}") from exc
    try:
        conn.timeout = query_timeout_s
    except pyodbc.Error as exc:
        # pyodbc sets SQL_ATTR_CONNECTION_TIMEOUT with it, which psqlODBC refuses (HY000):
        # such a driver runs without a query timeout rather than not at all.
        log.debug("driver refused a query timeout: %s", describe(exc))
    utf8_parameters(conn)
    return conn


def utf8_parameters(conn: pyodbc.Connection) -> bool:
    """Text parameters as UTF-8 on a MariaDB/MySQL connection whose character set is UTF-8.

    pyodbc binds a str as UTF-16 by default, and MariaDB Connector/ODBC 3.1.15 stores such
    parameters wrongly: every text longer than 128 characters garbled at its end or refused
    ("Memory allocation error … SQLPutData"), a non-ASCII one a NUL longer — 299 of 304 drawn
    texts, against 0 of 304 bound as UTF-8 (tests/integration/test_odbc_text_parameters.py).
    Returns whether it switched."""
    try:
        dbms = str(conn.getinfo(pyodbc.SQL_DBMS_NAME) or "").lower()
    except pyodbc.Error:
        return False
    if "mariadb" not in dbms and "mysql" not in dbms:
        return False
    try:
        row = conn.cursor().execute("SELECT @@character_set_client").fetchone()
        conn.rollback()
    except pyodbc.Error as exc:
        log.debug("could not read the connection's character set: %s", describe(exc))
        return False
    if row is None or not str(row[0]).lower().startswith("utf8"):
        return False  # a DSN with another CHARSET: its bytes would be read in that one
    conn.setencoding(encoding="utf-8")
    return True


def redact_dsn(dsn: str) -> str:
    """The DSN with every value that can carry a secret replaced, for logs and errors."""
    return secrets.redact_dsn(dsn)
