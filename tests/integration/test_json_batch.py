"""The `json` strategy stores exactly what multi-row VALUES stores, on every database.

The same entries go through two writer sinks — `writer.strategy = "values"` into one table,
`"json"` into its twin — and the tables (and ledgers) are compared row by row: the values as
pyodbc reads them *and* as the database prints them (`quote()` on SQLite, a cast to text
elsewhere), so that a float's last digit, a timestamp's milliseconds or a NULL that became ""
would show. The entries: hostile hand-made values (quotes, backslashes, controls, Unicode outside
the BMP, integers at the columns' limits, texts longer than their column), the number notations
of the repository's corpus (tests/corpus/, from libphonenumber and real exports), and
hypothesis-drawn texts and integers. Outcomes per entry must match too: a value the database
refuses is found by bisection and dead-lettered under both strategies.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyodbc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_journal.shared.config import WriterSettings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.writer.dialect import Dialect, detect_dialect, quote_identifier
from cti_journal.writer.sink import OdbcJournalSink
from tests.support.services import drop_table

CORPUS = Path(__file__).parents[1] / "corpus"

# column -> (Journal_* type, SQL type per dialect)
COLUMNS: dict[str, tuple[str, dict[Dialect, str]]] = {
    "ID": ("ID", {d: "VARCHAR(40) NOT NULL PRIMARY KEY" for d in Dialect}),
    "name_v": ("Name", {d: "VARCHAR(100)" for d in Dialect}),
    "firma_t": (
        "Firma",
        {Dialect.POSTGRESQL: "TEXT", Dialect.MARIADB: "TEXT", Dialect.SQLITE: "TEXT"},
    ),
    "nummer_cut": ("Rufnummer", {d: "VARCHAR(8)" for d in Dialect}),
    "inout_nn": ("In_Out", {d: "VARCHAR(1) NOT NULL" for d in Dialect}),
    "zustand_c": ("Journal_VerbZustand", {d: "CHAR(4)" for d in Dialect}),
    "lokal_nn": ("Journal_LokaleRufnummer", {d: "VARCHAR(30) NOT NULL" for d in Dialect}),
    "weiter_v": ("Weitergeleitet", {d: "VARCHAR(30)" for d in Dialect}),
    "dsid_int": ("Journal_DatensatzID", {d: "BIGINT" for d in Dialect}),
    "tabelle_v": ("Journal_DatensatzTabelle", {d: "VARCHAR(30)" for d in Dialect}),
    "ms_big": ("Rufdauer_ms", {d: "BIGINT" for d in Dialect}),
    "sec_small": ("Journal_VerbDauer_sec", {d: "SMALLINT" for d in Dialect}),
    "geb_dec": ("Journal_Gebühren", {d: "NUMERIC(12,0)" for d in Dialect}),
    "lcr_v": ("LCR", {d: "VARCHAR(10)" for d in Dialect}),
    "amt_int": ("Amtsholung", {d: "VARCHAR(4)" for d in Dialect}),
    "zp_text": ("Zeitpunkt", {d: "VARCHAR(20)" for d in Dialect}),
    "zp_ts": (
        "ZeitpunktNumerisch",
        {Dialect.POSTGRESQL: "TIMESTAMP", Dialect.MARIADB: "DATETIME", Dialect.SQLITE: "TIMESTAMP"},
    ),
    "zp_double": (
        "ZeitpunktNumerisch",
        {Dialect.POSTGRESQL: "DOUBLE PRECISION", Dialect.MARIADB: "DOUBLE", Dialect.SQLITE: "REAL"},
    ),
    "zp_dec": ("ZeitpunktNumerisch", {d: "NUMERIC(12,6)" for d in Dialect}),
}
PG_ONLY = {"zp_tz": ("ZeitpunktNumerisch", "TIMESTAMPTZ")}

HOSTILE_TEXTS = [
    "",
    " ",
    "'",
    "''; DROP TABLE x; --",
    '"',
    "\\",
    "\\\\n",
    "a\\u0041",
    "Müller, Jürgen",
    "Bäckerei Groß & Söhne",
    "\U0001f600\U0001f4de",  # outside the BMP
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\t",
    "a\tb",
    "".join(chr(c) for c in range(1, 32)),
    "\x7f\x80\x9f",
    "\u2028\u2029\ufeff",
    "x" * 99 + "\U0001f600",  # 100 characters, the last one four bytes in UTF-8
    "y" * 250,  # cut to its column
    "null",
    "NULL",
    "[1,2]",
    '{"a": 1}',
    "0",
    "-0",
    "1e5",
]
INTEGERS = [0, 1, -1, 2**15 - 1, -(2**15), 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 10**12 - 1]


def corpus_texts() -> list[str]:
    out: list[str] = []
    for name in ("messy.tsv", "notations.tsv"):
        with (CORPUS / name).open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                text = next(iter(row.values()))
                # messy.tsv writes its characters as \uXXXX escapes
                out.append(text.encode("ascii", "backslashreplace").decode("unicode_escape"))
    return out


def entry(n: int, text: str, number: int, **more: Any) -> JournalEntry:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "source": "test",
        "received_at": 0.0,
        "in_out": "io"[n % 2] if n % 3 else "",
        "zeitpunkt": f"20{n % 100:02d}-{n % 12 + 1:02d}-{n % 28 + 1:02d} "
        f"{n % 24:02d}:{n % 60:02d}:{(n * 7) % 60:02d}",
        "utc": f"2026-01-01T11:00:{n % 60:02d}Z",
        "verb_zustand": ["CONN", "RING", "BUSY", ""][n % 4],
        "name": text,
        "firma": text * 3,
        "rufnummer": text,
        "lokale_rufnummer": text[:30] if n % 2 else "",
        "weitergeleitet": text[:30],
        "datensatz_id": str(number) if n % 5 else "",
        "datensatz_tabelle": text[-30:],
        "rufdauer_ms": number,
        "verbdauer_sec": number,
        "gebuehren": number,
        "lcr": text[:10],
        "amtsholung": text[:4],
    }
    values.update(more)
    return JournalEntry(**values)


class Twins:
    """Two tables (and ledgers) of the same shape, one sink each."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = pyodbc.connect(dsn, autocommit=True)
        self.dialect = detect_dialect(self.conn)
        tag = uuid.uuid4().hex[:10]
        self.tables = {"values": f"jv_{tag}", "json": f"jj_{tag}"}
        columns = {name: (t, sql[self.dialect]) for name, (t, sql) in COLUMNS.items()}
        if self.dialect is Dialect.POSTGRESQL:
            columns.update(PG_ONLY)
        self.columns = list(columns)
        body = ", ".join(f"{self.q(n)} {sql}" for n, (_t, sql) in columns.items())
        options = " DEFAULT CHARSET=utf8mb4" if self.dialect is Dialect.MARIADB else ""
        self.sinks: dict[str, OdbcJournalSink] = {}
        for strategy, table in self.tables.items():
            self.conn.cursor().execute(f"CREATE TABLE {self.q(table)} ({body}){options}")
            sink = OdbcJournalSink(
                WriterSettings(
                    dsn=dsn,
                    table=table,
                    ledger_table=f"{table}_l",
                    columns={n: t for n, (t, _sql) in columns.items()},
                    strategy=strategy,  # type: ignore[arg-type]
                ),
                make_metrics(),
            )
            sink.open()
            self.sinks[strategy] = sink

    def q(self, name: str) -> str:
        return quote_identifier(name, self.dialect)

    def write_both(self, entries: list[JournalEntry]) -> None:
        outcomes = {s: sink.write(entries) for s, sink in self.sinks.items()}
        shown = {s: [type(o).__name__ if o else None for o in out] for s, out in outcomes.items()}
        assert shown["json"] == shown["values"]

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        texts = ", ".join(self._text(c) for c in self.columns)
        if self.dialect in (Dialect.MARIADB, Dialect.SQLITE):
            # as type/text and hex only: both drivers mis-decode some characters outside the
            # BMP they read (SQLite's into invalid UTF-16 now and then)
            sql = f"SELECT {texts} FROM {self.q(table)} ORDER BY 1"
            return [tuple(r) for r in self.conn.cursor().execute(sql).fetchall()]
        names = ", ".join(self._value(c) for c in self.columns)
        sql = f"SELECT {names}, {texts} FROM {self.q(table)} ORDER BY 1"
        return [tuple(r) for r in self.conn.cursor().execute(sql).fetchall()]

    def ledger(self, table: str) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT event_id, call_date, {self._as_text('call_date')} FROM {self.q(table + '_l')} "
            "ORDER BY event_id"
        )
        return [(bytes(r[0]), r[1], r[2]) for r in self.conn.cursor().execute(sql).fetchall()]

    def _as_text(self, column: str) -> str:
        if self.dialect is Dialect.SQLITE:
            return f"quote({self.q(column)})"  # type and value
        if self.dialect is Dialect.MARIADB:
            return f"CONCAT(CAST({self.q(column)} AS CHAR), '|', HEX({self.q(column)}))"
        return f"CAST({self.q(column)} AS TEXT)"

    def _value(self, column: str) -> str:
        return self.q(column)

    def _text(self, column: str) -> str:
        if self.dialect is Dialect.SQLITE:  # type and value's bytes
            return f"typeof({self.q(column)}) || ':' || hex({self.q(column)})"
        if self.dialect is Dialect.MARIADB:
            return f"HEX({self._value(column)})"  # NULL stays NULL, '' stays ''"
        return f"CAST({self.q(column)} AS TEXT)"

    def assert_equal(self) -> int:
        old, new = self.rows(self.tables["values"]), self.rows(self.tables["json"])
        assert len(new) == len(old)
        for a, b in zip(old, new, strict=True):
            assert b == a
        old_ids, new_ids = self.ledger(self.tables["values"]), self.ledger(self.tables["json"])
        assert new_ids == old_ids
        return len(old)

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.conn.close()
        for table in self.tables.values():
            drop_table(self.dsn, self.q(table))
            drop_table(self.dsn, self.q(table + "_l"))


@pytest.fixture
def twins(any_dsn: str) -> Iterator[Twins]:
    pair = Twins(any_dsn)
    try:
        yield pair
    finally:
        pair.close()


def test_hostile_values_and_the_corpus_are_stored_alike(twins: Twins) -> None:
    texts = HOSTILE_TEXTS + corpus_texts()
    entries = [entry(n, text, INTEGERS[n % len(INTEGERS)]) for n, text in enumerate(texts)]
    entries += [entry(1000 + n, "z", number) for n, number in enumerate(INTEGERS)]
    for at in range(0, len(entries), 500):
        twins.write_both(entries[at : at + 500])
    stored = twins.assert_equal()
    assert stored > len(texts) // 2  # most entries fit: the comparison compared rows


def test_a_nul_character_gets_the_same_outcome(twins: Twins) -> None:
    twins.write_both([entry(1, "a\x00b", 1), entry(2, "fine", 2)])
    twins.assert_equal()


def test_a_batch_of_more_rows_than_one_statement_holds(twins: Twins) -> None:
    twins.write_both([entry(n, f"n{n}", n) for n in range(2100)])
    assert twins.assert_equal() == 2100


def test_a_redelivered_batch_adds_nothing(twins: Twins) -> None:
    batch = [entry(n, f"r{n}", n) for n in range(20)]
    twins.write_both(batch)
    twins.write_both([*batch[5:], entry(99, "new", 99)])
    assert twins.assert_equal() == 21


_texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(_texts, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        min_size=1,
        max_size=40,
    )
)
def test_drawn_texts_and_integers_are_stored_alike(
    twins: Twins, drawn: list[tuple[str, int]]
) -> None:
    twins.write_both([entry(n, text, number) for n, (text, number) in enumerate(drawn)])
    twins.assert_equal()


def test_mariadb_values_str_parameters_gain_a_nul(maria_dsn: str, table_name: str) -> None:
    """Why the MariaDB reference above is written as UTF-8: what the VALUES strategy stores
    through pyodbc's default UTF-16 parameters, and what the json strategy stores."""
    conn = pyodbc.connect(maria_dsn, autocommit=True)
    try:
        conn.cursor().execute(f"CREATE TABLE {table_name} (a VARCHAR(4)) DEFAULT CHARSET=utf8mb4")
        conn.cursor().execute(f"INSERT INTO {table_name} VALUES (?)", "00Ø")
        conn.cursor().execute(
            f"INSERT INTO {table_name} SELECT j.a FROM JSON_TABLE(CONVERT(? USING utf8mb4), "
            "'$[*]' COLUMNS (a VARCHAR(4) CHARACTER SET utf8mb4 PATH '$[0]')) AS j",
            '[["00Ø"]]'.encode(),
        )
        stored = [r[0] for r in conn.cursor().execute(f"SELECT HEX(a) FROM {table_name}")]
    finally:
        conn.close()
        drop_table(maria_dsn, table_name)
    assert stored == ["3030C39800", "3030C398"]  # VALUES: a NUL more; json: the text


WIDE_DECIMALS: dict[str, tuple[str, dict[Dialect, str]]] = {
    "ID": ("ID", {d: "VARCHAR(40) NOT NULL PRIMARY KEY" for d in Dialect}),
    "inout_nn": ("In_Out", {d: "VARCHAR(1)" for d in Dialect}),
    "geb_19": ("Journal_Gebühren", {d: "DECIMAL(19,0)" for d in Dialect}),
    "ms_20": ("Rufdauer_ms", {d: "DECIMAL(20,0)" for d in Dialect}),
    "sec_38": ("Journal_VerbDauer_sec", {d: "DECIMAL(38,0)" for d in Dialect}),
}


def test_wide_decimal_columns_keep_negative_numbers(
    any_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DECIMAL(p,0) of 19 digits or more holds numbers beyond BIGINT's on both sides: read
    as BIGINT UNSIGNED, MariaDB's JSON_TABLE turned every negative value into 0 without an
    error (found in review, 2026-12-03)."""
    monkeypatch.setitem(globals(), "COLUMNS", WIDE_DECIMALS)
    monkeypatch.setitem(globals(), "PG_ONLY", {})
    numbers = [-5, -1, 0, 7, -(2**63), 2**63 - 1]
    pair = Twins(any_dsn)
    try:
        pair.write_both([entry(n, "x", number) for n, number in enumerate(numbers)])
        pair.assert_equal()
        stored = pair.conn.cursor().execute(
            f"SELECT geb_19, ms_20, sec_38 FROM {pair.q(pair.tables['json'])}"
        )
        got = sorted(tuple(int(v) for v in row) for row in stored.fetchall())
    finally:
        pair.close()
    assert got == sorted((n, n, n) for n in numbers)


def test_mariadb_text_longer_in_bytes_than_a_tinytext_is_refused_not_wrapped(
    maria_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TINYTEXT holds 255 *bytes*; the writer cuts by characters. A bound parameter of 200 × ü
    (400 bytes) is refused (the entry is dead-lettered); `INSERT … SELECT FROM JSON_TABLE`
    stored it with its length wrapped (144 bytes), silently. Such a batch goes the VALUES way;
    a text that fits is stored exactly (found in review, 2026-12-03)."""
    columns = {
        "ID": ("ID", {d: "VARCHAR(40) NOT NULL PRIMARY KEY" for d in Dialect}),
        "inout_nn": ("In_Out", {d: "VARCHAR(1)" for d in Dialect}),
        "firma_tt": ("Firma", {d: "TINYTEXT" for d in Dialect}),
    }
    monkeypatch.setitem(globals(), "COLUMNS", columns)
    entries = [entry(1, "x", 1, firma="ü" * 200), entry(2, "x", 2, firma="ü" * 100)]
    pair = Twins(maria_dsn)
    try:
        outcomes = {s: sink.write(entries) for s, sink in pair.sinks.items()}
        sql = f"SELECT CHAR_LENGTH(firma_tt), HEX(firma_tt) FROM {pair.q(pair.tables['json'])}"
        stored = pair.conn.cursor().execute(sql).fetchall()
    finally:
        pair.close()
    assert [type(o).__name__ if o else None for o in outcomes["json"]] == ["RowError", None]
    assert [type(o).__name__ if o else None for o in outcomes["values"]] == ["RowError", None]
    assert [tuple(r) for r in stored] == [(100, "C3BC" * 100)]
