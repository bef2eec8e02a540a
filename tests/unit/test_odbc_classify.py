"""Driver errors → the project's error classes (shared/odbc.py `classify`), with the SQLSTATEs and
messages the ODBC drivers really report."""

from __future__ import annotations

import pyodbc
import pytest

from cti_journal.shared.errors import ConnectionLostError, PermanentError, TransientError
from cti_journal.shared.odbc import (
    RowError,
    SchemaError,
    UnknownDatabaseError,
    classify,
    describe,
    redact_dsn,
    sqlstate,
)

PG_TAIL = ";\nError while executing the query (1) (SQLExecDirectW)"
MARIA = "[ma-3.1.20][11.4.2-MariaDB]"

CASES = [
    # -- the row's fault: dead-letter it ------------------------------------------------------
    (
        pyodbc.IntegrityError(
            "23505",
            '[23505] ERROR: duplicate key value violates unique constraint "journal_pkey"'
            + PG_TAIL,
        ),
        RowError,
        '23505: ERROR: duplicate key value violates unique constraint "journal_pkey";\n'
        "Error while executing the query (1)",
    ),
    (
        pyodbc.IntegrityError(
            "23000",
            f"[23000] {MARIA}Duplicate entry 'abc' for key 'PRIMARY' (1062) (SQLExecDirectW)",
        ),
        RowError,
        "23000: Duplicate entry 'abc' for key 'PRIMARY' (1062)",
    ),
    (
        pyodbc.Error("HY000", "[HY000] UNIQUE constraint failed: journal.ID (19) (SQLExecDirectW)"),
        RowError,
        "HY000: UNIQUE constraint failed: journal.ID (19)",
    ),
    (
        pyodbc.DataError(
            "22001", "[22001] ERROR: value too long for type character varying(30)" + PG_TAIL
        ),
        RowError,
        None,
    ),
    (
        pyodbc.DataError(
            "22001",
            f"[22001] {MARIA}Data too long for column 'Name' at row 1 (1406) (SQLExecDirectW)",
        ),
        RowError,
        None,
    ),
    (
        pyodbc.Error(
            "HY000", "[HY000] NOT NULL constraint failed: journal.x (19) (SQLExecDirectW)"
        ),
        RowError,
        None,
    ),
    (pyodbc.DataError("22003", "[22003] numeric value out of range"), RowError, None),
    # -- the connection is gone: reconnect ----------------------------------------------------
    (
        pyodbc.OperationalError(
            "08S01",
            f"[08S01] {MARIA}Lost connection to server during query (2013) (SQLExecDirectW)",
        ),
        ConnectionLostError,
        "08S01: Lost connection to server during query (2013)",
    ),
    (
        pyodbc.OperationalError(
            "08001",
            "[08001] could not connect to server: Connection refused\n\tIs the server running on "
            'host "127.0.0.1" and accepting\n\tTCP/IP connections on port 5432?\n (101) '
            "(SQLDriverConnect)",
        ),
        ConnectionLostError,
        None,
    ),
    (
        pyodbc.OperationalError(
            "08S01",
            "[08S01] server closed the connection unexpectedly\n\tThis probably means the server "
            "terminated abnormally (26) (SQLExecDirectW)",
        ),
        ConnectionLostError,
        None,
    ),
    (
        pyodbc.Error("HY000", f"[HY000] {MARIA}Server has gone away (2006) (SQLExecDirectW)"),
        ConnectionLostError,
        None,
    ),
    (
        pyodbc.Error("57P01", "[57P01] FATAL: terminating connection due to administrator command"),
        ConnectionLostError,
        None,
    ),
    (
        pyodbc.InterfaceError("IM002", "[IM002] Data source name not found"),
        ConnectionLostError,
        None,
    ),
    (
        pyodbc.OperationalError("HYT01", "[HYT01] Connection timeout expired"),
        ConnectionLostError,
        None,
    ),
    # -- worth another try on the same connection ---------------------------------------------
    (
        pyodbc.Error("40P01", "[40P01] ERROR: deadlock detected" + PG_TAIL),
        TransientError,
        "40P01: ERROR: deadlock detected;\nError while executing the query (1)",
    ),
    (
        pyodbc.Error(
            "HY000",
            f"[HY000] {MARIA}Lock wait timeout exceeded; try restarting transaction (1205) "
            "(SQLExecDirectW)",
        ),
        TransientError,
        "HY000: Lock wait timeout exceeded; try restarting transaction (1205)",
    ),
    (
        pyodbc.Error(
            "40001", f"[40001] {MARIA}Deadlock found when trying to get lock; try restarting"
        ),
        TransientError,
        None,
    ),
    (
        pyodbc.Error("HY000", "[HY000] database is locked (5) (SQLExecDirectW)"),
        TransientError,
        "HY000: database is locked (5)",
    ),
    (pyodbc.OperationalError("HYT00", "[HYT00] Query timeout expired"), TransientError, None),
    (
        pyodbc.OperationalError("57014", "[57014] ERROR: canceling statement due to timeout"),
        TransientError,
        None,
    ),
    # -- the table is not as it was: wait as for a lost connection, re-read the catalog ------
    (
        pyodbc.ProgrammingError(
            "42P01", '[42P01] ERROR: relation "journal" does not exist' + PG_TAIL
        ),
        SchemaError,
        '42P01: ERROR: relation "journal" does not exist;\nError while executing the query (1)',
    ),
    (
        pyodbc.Error("HY000", "[SQLite]no such table: journal (1) (SQLExecDirectW)"),
        SchemaError,
        "HY000: no such table: journal (1)",
    ),
    # -- neither: bounded retries, then dead-lettered -----------------------------------------
    (pyodbc.Error("something odd"), UnknownDatabaseError, "no SQLSTATE: something odd"),
    (pyodbc.Error(), UnknownDatabaseError, "no SQLSTATE: "),
]


@pytest.mark.parametrize(("exc", "kind", "message"), CASES)
def test_classify(exc: pyodbc.Error, kind: type[Exception], message: str | None) -> None:
    result = classify(exc)
    assert type(result) is kind
    if message is not None:
        # the driver's function name at the end is left as `describe` leaves it
        assert str(result).startswith(message)


def test_class_tree() -> None:
    assert issubclass(RowError, PermanentError)
    assert issubclass(UnknownDatabaseError, TransientError)
    assert issubclass(ConnectionLostError, TransientError)
    assert not issubclass(UnknownDatabaseError, ConnectionLostError)


def test_connection_beats_row_text() -> None:
    """A 08 state wins even if the message mentions a constraint."""
    exc = pyodbc.IntegrityError("08S01", "[08S01] connection lost during constraint check")
    assert type(classify(exc)) is ConnectionLostError


def test_sqlstate_and_describe() -> None:
    exc = pyodbc.Error("23505", "[23505] [driver][x] duplicate (7) (SQLExecDirectW)")
    assert sqlstate(exc) == "23505"
    assert describe(exc).startswith("duplicate (7)")
    assert sqlstate(pyodbc.Error("no state here")) == ""
    assert sqlstate(pyodbc.Error(5, "x")) == ""
    assert describe(pyodbc.Error("plain")) == "plain"


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        ("Driver=x;Uid=u;Pwd=secret;Server=s", "Driver=x;Uid=u;Pwd=***;Server=s"),
        ("DRIVER=x;PASSWORD={se;cret};X=1", "DRIVER=x;PASSWORD=***;X=1"),
        ("Driver=x;pwd=secret", "Driver=x;pwd=***"),
    ],
)
def test_redact_dsn(dsn: str, redacted: str) -> None:
    assert redact_dsn(dsn) == redacted
