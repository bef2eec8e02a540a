"""Every text the writer binds is stored exactly, on every database (shared/odbc.py `connect`).

MariaDB Connector/ODBC 3.1 stores pyodbc's default UTF-16 text parameters wrongly — a text over
128 characters garbled at its end or refused, a non-ASCII one a NUL longer — which the `values`
strategy (and the `json` strategy's fallback for a batch it cannot send as JSON) would write
into the journal. The writer's connections bind text as UTF-8 there. Texts are drawn from all
of Unicode but NUL and lone surrogates (which no driver takes), up to 3,000 characters, and
read back as bytes, not through the driver's decoding.
"""

from __future__ import annotations

import uuid

import pyodbc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.shared.odbc import connect, utf8_parameters
from cti_journal.writer.dialect import Dialect, detect_dialect
from tests.support.services import drop_table

_TEXTS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=3000
)
_AS_HEX = {
    Dialect.POSTGRESQL: "encode(convert_to(a, 'UTF8'), 'hex')",
    Dialect.MARIADB: "HEX(a)",
    Dialect.SQLITE: "hex(a)",
}
_TEXT_TYPE = {Dialect.POSTGRESQL: "TEXT", Dialect.MARIADB: "MEDIUMTEXT", Dialect.SQLITE: "TEXT"}


@pytest.fixture
def table(any_dsn: str):
    conn = connect(any_dsn)
    dialect = detect_dialect(conn)
    name = f"tp_{uuid.uuid4().hex[:10]}"
    options = " DEFAULT CHARSET=utf8mb4" if dialect is Dialect.MARIADB else ""
    conn.cursor().execute(f"CREATE TABLE {name} (n INTEGER, a {_TEXT_TYPE[dialect]}){options}")
    conn.commit()
    try:
        yield conn, dialect, name
    finally:
        conn.close()
        drop_table(any_dsn, name)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(_TEXTS, min_size=1, max_size=12))
def test_a_bound_text_is_stored_as_its_utf8_bytes(table, texts: list[str]) -> None:
    conn, dialect, name = table
    cursor = conn.cursor()
    cursor.execute(f"DELETE FROM {name}")
    for n, text in enumerate(texts):
        cursor.execute(f"INSERT INTO {name} (n, a) VALUES (?, ?)", n, text)
    conn.commit()
    stored = cursor.execute(f"SELECT n, {_AS_HEX[dialect]} FROM {name} ORDER BY n").fetchall()
    conn.commit()
    assert [bytes.fromhex(h or "").decode() for _n, h in stored] == texts


def test_only_a_utf8_mariadb_connection_is_switched(any_dsn: str) -> None:
    conn = pyodbc.connect(any_dsn)
    try:
        switched = utf8_parameters(conn)
        assert switched == (detect_dialect(conn) is Dialect.MARIADB)
    finally:
        conn.close()


def test_without_it_mariadb_garbles_a_long_ascii_text(maria_dsn: str) -> None:
    """The driver fault itself, so that this test shows when a newer driver no longer has it
    (then `utf8_parameters` may go)."""
    conn = pyodbc.connect(maria_dsn, autocommit=True)
    name = f"tp_{uuid.uuid4().hex[:10]}"
    try:
        conn.cursor().execute(f"CREATE TABLE {name} (a TEXT) DEFAULT CHARSET=utf8mb4")
        text = "x" * 200
        try:
            conn.cursor().execute(f"INSERT INTO {name} VALUES (?)", text)
            (stored,) = conn.cursor().execute(f"SELECT HEX(a) FROM {name}").fetchone()
            assert bytes.fromhex(stored) != text.encode()
        except pyodbc.Error as exc:
            assert "SQLPutData" in str(exc)
    finally:
        conn.close()
        drop_table(maria_dsn, name)
