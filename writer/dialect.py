"""Which database sits behind an ODBC connection, and the few things that differ per database:
how identifiers are quoted and how many parameters one statement may carry.

The dialect is detected from what the driver reports (`SQL_DBMS_NAME`, then the driver's file
name), never from the DSN text, because a DSN may name a data source defined in odbc.ini.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import pyodbc


class Dialect(enum.Enum):
    POSTGRESQL = "postgresql"
    MARIADB = "mariadb"  # MySQL, too: same catalog, quoting and limits
    SQLITE = "sqlite"
    MSSQL = "mssql"
    ACCESS = "access"
    OTHER = "other"


# Substrings of SQL_DBMS_NAME (lower case), first match wins.
_BY_DBMS: Final = (
    ("postgres", Dialect.POSTGRESQL),
    ("mariadb", Dialect.MARIADB),
    ("mysql", Dialect.MARIADB),
    ("sqlite", Dialect.SQLITE),
    ("microsoft sql server", Dialect.MSSQL),
    ("access", Dialect.ACCESS),
)
# Substrings of SQL_DRIVER_NAME (the driver library), for drivers whose DBMS name is unusual.
_BY_DRIVER: Final = (
    ("psqlodbc", Dialect.POSTGRESQL),
    ("maodbc", Dialect.MARIADB),
    ("myodbc", Dialect.MARIADB),
    ("sqlite", Dialect.SQLITE),
    ("msodbcsql", Dialect.MSSQL),
    ("sqlncli", Dialect.MSSQL),
    ("sqlsrv", Dialect.MSSQL),
    ("odbcjt32", Dialect.ACCESS),
    ("aceodbc", Dialect.ACCESS),
)

_QUOTE: Final = {
    Dialect.POSTGRESQL: '"',
    Dialect.MARIADB: "`",  # works whether or not sql_mode has ANSI_QUOTES
    Dialect.SQLITE: '"',
    Dialect.MSSQL: "[",  # works whatever QUOTED_IDENTIFIER is set to
    Dialect.ACCESS: "[",
    Dialect.OTHER: '"',  # SQL-92
}
_CLOSING: Final = {'"': '"', "`": "`", "[": "]"}

# Bind parameters one statement may carry. SQLite's limit is a compile-time option (999 before
# 3.32, 32766 since): the driver may bundle an old library, so stay at the old limit. SQL Server
# allows 2100 but reserves some for sp_prepexec. Access and unknown databases get 1 row per
# statement anyway (see `multi_row_values`), so their figure only bounds the column count.
_MAX_PARAMS: Final = {
    Dialect.POSTGRESQL: 32767,  # the wire protocol's Int16 count, signed in psqlODBC
    Dialect.MARIADB: 65535,
    Dialect.SQLITE: 999,
    Dialect.MSSQL: 2000,
    Dialect.ACCESS: 255,
    Dialect.OTHER: 255,
}


def detect_dialect(conn: pyodbc.Connection) -> Dialect:
    """The database behind *conn*, from the DBMS name the driver reports, else the driver's name."""
    dbms = _info(conn, pyodbc.SQL_DBMS_NAME)
    for needle, dialect in _BY_DBMS:
        if needle in dbms:
            return dialect
    driver = _info(conn, pyodbc.SQL_DRIVER_NAME)
    for needle, dialect in _BY_DRIVER:
        if needle in driver:
            return dialect
    return Dialect.OTHER


def _info(conn: pyodbc.Connection, what: int) -> str:
    try:
        value: Any = conn.getinfo(what)
    except pyodbc.Error:
        return ""
    return str(value or "").lower()


def quote_identifier(name: str, dialect_or_quote_char: Dialect | str) -> str:
    """*name* quoted for the dialect (or for a driver's SQL_IDENTIFIER_QUOTE_CHAR).

    Embedded closing quote characters are doubled, so any name is safe. A NUL cannot be part of
    an identifier in any of our databases and would cut the statement short in C drivers.
    """
    if not name:
        raise ValueError("an identifier cannot be empty")
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL character")
    if isinstance(dialect_or_quote_char, Dialect):
        opening = _QUOTE[dialect_or_quote_char]
    else:
        opening = dialect_or_quote_char.strip()
    if not opening:
        # SQL_IDENTIFIER_QUOTE_CHAR " " means the driver has no quoting at all.
        if not name.replace("_", "").isalnum() or not name.isascii():
            raise ValueError(f"identifier {name!r} needs quoting but the driver cannot quote")
        return name
    closing = _CLOSING.get(opening, opening)
    return opening + name.replace(closing, closing * 2) + closing


def max_params(dialect: Dialect) -> int:
    """How many `?` parameters one statement may carry on this database."""
    return _MAX_PARAMS[dialect]


def multi_row_values(dialect: Dialect) -> bool:
    """Whether `INSERT … VALUES (…), (…)` works. Access SQL has no row constructors, and for an
    unknown database one row per statement is the only form certain to work."""
    return dialect not in (Dialect.ACCESS, Dialect.OTHER)
