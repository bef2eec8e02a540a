"""The table plan against real databases through their ODBC drivers: what the catalog reports,
what `load_plan` maps, and the rows that `insert_sql` + `TablePlan.row` actually store.

Every test creates its own table (the `table_name` fixture) and drops it afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pyodbc
import pytest

from cti_journal.shared.columns import JOURNAL_TYPES, ColumnType
from cti_journal.shared.errors import ConfigError, PermanentError
from cti_journal.shared.message import JournalEntry
from cti_journal.writer.ddl import create_table_sql
from cti_journal.writer.dialect import Dialect, detect_dialect, quote_identifier
from cti_journal.writer.table import TablePlan, load_plan
from tests.support.services import drop_table

# Per database: text of n characters, integer, smallint, double, single, timestamp, decimal.
TYPES: dict[Dialect, dict[str, str]] = {
    Dialect.POSTGRESQL: {
        "text": "VARCHAR({n})",
        "int": "INTEGER",
        "small": "SMALLINT",
        "double": "DOUBLE PRECISION",
        "single": "REAL",
        "ts": "TIMESTAMP",
        "dec": "NUMERIC(12,6)",
    },
    Dialect.MARIADB: {
        "text": "VARCHAR({n})",
        "int": "INT",
        "small": "SMALLINT",
        "double": "DOUBLE",
        "single": "FLOAT",
        "ts": "DATETIME",
        "dec": "DECIMAL(12,6)",
    },
    Dialect.SQLITE: {
        "text": "VARCHAR({n})",
        "int": "INTEGER",
        "small": "SMALLINT",
        "double": "REAL",  # SQLite's REAL is 8 bytes
        "single": "",
        "ts": "TIMESTAMP",
        "dec": "NUMERIC(12,6)",
    },
}


def entry(n: int = 1, **fields: Any) -> JournalEntry:
    values: dict[str, Any] = {
        "event_id": f"{n:032x}",
        "source": "test",
        "received_at": 0.0,
        "in_out": "i",
        "zeitpunkt": f"2026-01-01 12:00:{n % 60:02d}",
        "utc": f"2026-01-01T11:00:{n % 60:02d}Z",
        "verb_zustand": "CONN",
    }
    values.update(fields)
    return JournalEntry(**values)


FULL = entry(
    7,
    in_out="o",
    verb_zustand="RING",
    rufnummer="+49891234567",
    name="Müller, Jürgen",
    firma="Bäckerei Groß & Söhne",
    lokale_rufnummer="20",
    weitergeleitet="21",
    datensatz_id="A-4711",
    datensatz_tabelle="Kontakte",
    rufdauer_ms=12500,
    verbdauer_sec=0,
    lcr="01013",
    gebuehren=42,
    amtsholung="0",
)


class Db:
    """One connection to the database under test, plus helpers that quote for it."""

    def __init__(self, dsn: str, table: str) -> None:
        self.dsn = dsn
        self.table = table
        self.conn = pyodbc.connect(dsn, autocommit=True)
        self.dialect = detect_dialect(self.conn)
        self.created: list[str] = []

    def q(self, name: str) -> str:
        return quote_identifier(name, self.dialect)

    def type(self, key: str, n: int = 0) -> str:
        return TYPES[self.dialect][key].format(n=n)

    def create(self, columns: dict[str, str], table: str | None = None) -> str:
        table = table or self.table
        body = ", ".join(f"{self.q(name)} {sql}" for name, sql in columns.items())
        options = " DEFAULT CHARSET=utf8mb4" if self.dialect is Dialect.MARIADB else ""
        self.execute(f"CREATE TABLE {self.q(table)} ({body}){options}", table=table)
        return table

    def execute(self, sql: str, *params: Any, table: str | None = None) -> None:
        if table is not None:
            self.created.append(table)
        self.conn.cursor().execute(sql, *params)

    def insert(self, plan: TablePlan, entries: list[JournalEntry]) -> None:
        """All entries in one multi-row statement and one transaction, as the writer does."""
        params = [value for e in entries for value in plan.row(e)]
        self.conn.autocommit = False
        try:
            self.conn.cursor().execute(plan.insert_sql(len(entries)), params)
            self.conn.commit()
        finally:
            self.conn.autocommit = True

    def select(self, plan: TablePlan, order_by: str) -> list[tuple[Any, ...]]:
        names = ", ".join(self.q(c.name) for c in plan.columns)
        sql = f"SELECT {names} FROM {self.q(plan.table)} ORDER BY {self.q(order_by)}"
        return [tuple(r) for r in self.conn.cursor().execute(sql).fetchall()]

    def close(self) -> None:
        for table in reversed(self.created):
            self.conn.cursor().execute(f"DROP TABLE IF EXISTS {self.q(table)}")
        self.conn.close()


@pytest.fixture
def db(any_dsn: str, table_name: str) -> Iterator[Db]:
    database = Db(any_dsn, table_name)
    try:
        yield database
    finally:
        database.close()
        drop_table(any_dsn, table_name)


def moment(value: Any) -> datetime:
    """A timestamp read back: sqliteodbc may return the text it stored."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(microsecond=0)


def test_dialect_is_detected(db: Db):
    expected = {
        "PostgreSQL": Dialect.POSTGRESQL,
        "MariaDB": Dialect.MARIADB,
        "SQLite3": Dialect.SQLITE,
    }
    assert [d for name, d in expected.items() if name in db.dsn] == [db.dialect]


def test_full_table_from_the_schema_ddl_maps_all_sixteen(db: Db):
    db.execute(create_table_sql(db.dialect, db.table), table=db.table)
    truncated: list[str] = []
    plan = load_plan(db.conn, db.table, {}, truncated.append)
    assert [c.type for c in plan.columns] == list(JOURNAL_TYPES)
    assert plan.columns[geb := JOURNAL_TYPES.index(ColumnType.GEBUEHREN)].name == "Journal_Gebühren"

    sparse = entry(8, zeitpunkt="2026-12-31 23:59:59")  # empty optional fields, missing numbers
    db.insert(plan, [FULL, sparse])
    first, second = db.select(plan, "Journal_Zeitpunkt")
    assert truncated == []
    expected = {
        ColumnType.IN_OUT: "o",
        ColumnType.ZEITPUNKT: "2026-01-01 12:00:07",
        ColumnType.VERB_ZUSTAND: "RING",
        ColumnType.RUFNUMMER: "+49891234567",
        ColumnType.NAME: "Müller, Jürgen",
        ColumnType.FIRMA: "Bäckerei Groß & Söhne",
        ColumnType.DATENSATZ_ID: "A-4711",
        ColumnType.RUFDAUER_MS: 12500,
        ColumnType.VERBDAUER_SEC: 0,
        ColumnType.GEBUEHREN: 42,
        ColumnType.AMTSHOLUNG: "0",
    }
    for i, col in enumerate(plan.columns):
        if col.type in expected:
            assert first[i] == expected[col.type], col.name
    numerisch = JOURNAL_TYPES.index(ColumnType.ZEITPUNKT_NUMERISCH)
    assert moment(first[numerisch]) == datetime(2026, 1, 1, 12, 0, 7)
    assert moment(second[numerisch]) == datetime(2026, 12, 31, 23, 59, 59)
    # Empty text and missing numbers are NULL in nullable columns.
    assert second[JOURNAL_TYPES.index(ColumnType.NAME)] is None
    assert second[geb] is None


def test_schema_ddl_with_id_refuses_a_second_row_for_the_same_event(db: Db):
    db.execute(create_table_sql(db.dialect, db.table, id_column=True), table=db.table)
    plan = load_plan(db.conn, db.table, {})
    assert plan.columns[0].type is ColumnType.ID
    assert len(plan.columns) == 17
    db.insert(plan, [FULL])
    with pytest.raises(pyodbc.Error):
        db.insert(plan, [replace(FULL, name="again")])
    assert db.select(plan, "ID")[0][0] == FULL.event_id


def test_renamed_subset_with_an_id_column_and_defaults(db: Db):
    db.create(
        {
            "Richtung": db.type("text", 1),
            "Wann": db.type("ts"),
            "Nummer": db.type("text", 30),
            "Kontakt Name": db.type("text", 100),
            "Dauer": db.type("int"),
            "Ereignis": db.type("text", 32) + " NOT NULL",
            "Notiz": db.type("text", 20) + " DEFAULT 'neu'",
        }
    )
    mapping = {
        "richtung": "In_Out",  # other case than in the table: the catalog's spelling is used
        "Wann": "Journal_ZeitpunktNumerisch",
        "Nummer": "Rufnummer",
        "Kontakt Name": "journal_name",
        "Dauer": "VerbDauer_sec",
        "Ereignis": "ID",
    }
    plan = load_plan(db.conn, db.table.upper(), mapping)
    assert plan.table == db.table
    assert [c.name for c in plan.columns] == [
        "Richtung",
        "Wann",
        "Nummer",
        "Kontakt Name",
        "Dauer",
        "Ereignis",
    ]
    rows = [entry(n, rufnummer=f"08{n}", name=f"Kunde {n}", verbdauer_sec=n) for n in (1, 2, 3)]
    db.insert(plan, rows)
    got = db.select(plan, "Ereignis")
    assert [(r[0], moment(r[1]), r[2], r[3], r[4], r[5]) for r in got] == [
        ("i", datetime(2026, 1, 1, 12, 0, n), f"08{n}", f"Kunde {n}", n, f"{n:032x}")
        for n in (1, 2, 3)
    ]
    notes = db.conn.cursor().execute(f"SELECT {db.q('Notiz')} FROM {db.q(db.table)}").fetchall()
    assert [r[0] for r in notes] == ["neu"] * 3


def test_narrow_text_columns_are_cut_and_reported(db: Db):
    db.create(
        {
            "Journal_Name": db.type("text", 5),
            "Journal_Firma": db.type("text", 8),
            "Journal_In_Out": db.type("text", 1),
            "Journal_LCR": db.type("text", 3) + " NOT NULL",
        }
    )
    truncated: list[str] = []
    plan = load_plan(db.conn, db.table, {}, truncated.append)
    assert [c.size for c in plan.columns] == [5, 8, 1, 3]
    db.insert(plan, [FULL, entry(2, name="Ute")])
    assert db.select(plan, "Journal_In_Out") == [
        ("Ute", None, "i", ""),  # an empty text in a NOT NULL column is ""
        ("Mülle", "Bäckerei", "o", "010"),
    ]
    assert truncated == ["Journal_Name", "Journal_Firma", "Journal_LCR"]


def test_numeric_zeitpunkt_numerisch_is_the_ole_date(db: Db):
    db.create(
        {
            "Journal_Zeitpunkt": db.type("text", 20),
            "Journal_ZeitpunktNumerisch": db.type("double"),
            "Als Dezimal": db.type("dec"),
        }
    )
    mapping = {
        "Journal_Zeitpunkt": "Zeitpunkt",
        "Journal_ZeitpunktNumerisch": "ZeitpunktNumerisch",
        "Als Dezimal": "ZeitpunktNumerisch",
    }
    plan = load_plan(db.conn, db.table, mapping)
    assert [c.sql_kind for c in plan.columns] == ["text", "float", "float"]
    db.insert(
        plan,
        [
            entry(1, zeitpunkt="2026-01-01 12:00:00"),
            entry(2, zeitpunkt="1899-12-30 00:00:00"),
            entry(3, zeitpunkt="2026-01-01 12:00:01"),
        ],
    )
    got = db.select(plan, "Journal_Zeitpunkt")
    assert [(r[0], float(r[1])) for r in got] == [
        ("1899-12-30 00:00:00", 0.0),
        ("2026-01-01 12:00:00", 46023.5),
        ("2026-01-01 12:00:01", pytest.approx(46023.5 + 1 / 86400, abs=1e-9)),
    ]
    # A fixed-point column keeps its six decimals; SQLite's NUMERIC is floating point anyway.
    one_second = 46023.5 + 1 / 86400 if db.dialect is Dialect.SQLITE else 46023.500012
    assert [float(r[2]) for r in got] == [0.0, 46023.5, pytest.approx(one_second, abs=1e-9)]


def test_single_precision_cannot_hold_an_ole_date(db: Db):
    if not db.type("single"):
        pytest.skip("SQLite has no single-precision type")
    db.create({"Journal_ZeitpunktNumerisch": db.type("single")})
    with pytest.raises(ConfigError) as info:
        load_plan(db.conn, db.table, {})
    assert info.value.setting == "writer.columns.Journal_ZeitpunktNumerisch"


def test_integer_datensatz_id(db: Db):
    db.create({"Journal_Zeitpunkt": db.type("text", 20), "Journal_DatensatzID": db.type("int")})
    plan = load_plan(db.conn, db.table, {})
    assert plan.columns[1].sql_kind == "integer"
    db.insert(plan, [entry(1, datensatz_id="4711"), entry(2, datensatz_id="")])
    assert db.select(plan, "Journal_Zeitpunkt") == [
        ("2026-01-01 12:00:01", 4711),
        ("2026-01-01 12:00:02", None),
    ]
    with pytest.raises(PermanentError) as info:
        plan.row(entry(3, datensatz_id="A-4711"))
    assert info.value.column == "Journal_DatensatzID"


def test_umlaut_reserved_word_and_space_in_column_names(db: Db):
    db.create(
        {
            "Journal_Gebühren": db.type("int"),
            "order": db.type("int"),
            "select": db.type("text", 40),
            "Firma Name": db.type("text", 100),
        }
    )
    mapping = {
        "Journal_Gebühren": "Gebuehren",
        "order": "Rufdauer_ms",
        "select": "ID",
        "Firma Name": "Firma",
    }
    plan = load_plan(db.conn, db.table, mapping)
    db.insert(plan, [FULL, entry(2, gebuehren=0, rufdauer_ms=900)])
    assert db.select(plan, "order") == [
        (0, 900, f"{2:032x}", None),
        (42, 12500, FULL.event_id, "Bäckerei Groß & Söhne"),
    ]


def test_smallint_overflow_is_a_permanent_error_for_the_entry(db: Db):
    db.create({"Journal_Zeitpunkt": db.type("text", 20), "Dauer": db.type("small")})
    plan = load_plan(db.conn, db.table, {"Journal_Zeitpunkt": "Zeitpunkt", "Dauer": "Rufdauer_ms"})
    fits, too_big = entry(1, rufdauer_ms=32767), entry(2, rufdauer_ms=40000)
    if db.dialect is Dialect.SQLITE:
        assert plan.row(too_big)[1] == 40000  # SQLite stores 64 bits whatever it is declared as
        return
    with pytest.raises(PermanentError) as info:
        plan.row(too_big)
    assert info.value.column == "Dauer"
    db.insert(plan, [fits])
    assert db.select(plan, "Journal_Zeitpunkt") == [("2026-01-01 12:00:01", 32767)]


def test_a_missing_mapped_column_is_named(db: Db):
    db.create({"Journal_Name": db.type("text", 100)})
    with pytest.raises(ConfigError) as info:
        load_plan(db.conn, db.table, {"Journal_Name": "Name", "Firmenname": "Firma"})
    assert info.value.setting == "writer.columns.Firmenname"
    assert "Journal_Name" in info.value.problem  # the columns the table does have


def test_a_missing_table_is_named(db: Db):
    with pytest.raises(ConfigError) as info:
        load_plan(db.conn, db.table, {})
    assert info.value.setting == "writer.table"
    assert db.table in info.value.problem


def test_a_column_that_cannot_hold_its_type_is_named(db: Db):
    db.create({"Journal_Name": db.type("int")})
    with pytest.raises(ConfigError) as info:
        load_plan(db.conn, db.table, {})
    assert info.value.setting == "writer.columns.Journal_Name"
    assert "cannot hold" in info.value.problem


def test_a_table_without_any_journal_column(db: Db):
    db.create({"Bemerkung": db.type("text", 10)})
    with pytest.raises(ConfigError) as info:
        load_plan(db.conn, db.table, {})
    assert info.value.setting == "writer.columns"


def test_an_unmapped_not_null_column_without_default_is_named(db: Db):
    db.create({"Journal_Name": db.type("text", 100), "Pflicht": db.type("int") + " NOT NULL"})
    with pytest.raises(ConfigError) as info:
        load_plan(db.conn, db.table, {})
    assert info.value.setting == "writer.columns.Pflicht"
    assert "NOT NULL" in info.value.problem


def test_an_auto_increment_key_needs_no_mapping(db: Db):
    key = {
        Dialect.POSTGRESQL: "SERIAL PRIMARY KEY",
        Dialect.MARIADB: "INT AUTO_INCREMENT PRIMARY KEY",
        Dialect.SQLITE: "INTEGER PRIMARY KEY NOT NULL",
    }[db.dialect]
    db.create({"id": key, "Journal_Name": db.type("text", 100)})
    plan = load_plan(db.conn, db.table, {})
    assert [(c.name, c.type) for c in plan.columns] == [("Journal_Name", ColumnType.NAME)]
    db.insert(plan, [entry(1, name="a"), entry(2, name="b")])
    assert len(db.select(plan, "id")) == 2


def test_a_same_named_table_elsewhere_is_ignored(db: Db):
    """PostgreSQL: only the current schema; MariaDB: only the current database."""
    if db.dialect is Dialect.SQLITE:
        pytest.skip("an SQLite connection sees one database")
    other = f"o_{uuid.uuid4().hex[:10]}"
    kind = "SCHEMA" if db.dialect is Dialect.POSTGRESQL else "DATABASE"
    db.execute(f"CREATE {kind} {other}")
    try:
        elsewhere = f"{other}.{db.q(db.table)}"
        db.execute(f"CREATE TABLE {elsewhere} (x INTEGER, Journal_Firma VARCHAR(10))")
        with pytest.raises(ConfigError) as info:
            load_plan(db.conn, db.table, {})
        assert info.value.setting == "writer.table"
        db.create({"Journal_Name": db.type("text", 100)})
        plan = load_plan(db.conn, db.table, {})
        assert [c.name for c in plan.columns] == ["Journal_Name"]
    finally:
        db.execute(f"DROP {kind} {other} CASCADE" if kind == "SCHEMA" else f"DROP {kind} {other}")


def test_many_rows_in_one_statement(db: Db):
    db.execute(create_table_sql(db.dialect, db.table, id_column=True), table=db.table)
    plan = load_plan(db.conn, db.table, {})
    n = plan.max_rows_per_statement()
    assert n == (999 // 17 if db.dialect is Dialect.SQLITE else 100)
    db.insert(plan, [replace(FULL, event_id=f"{i:032x}") for i in range(n)])
    count = db.conn.cursor().execute(f"SELECT COUNT(*) FROM {db.q(db.table)}").fetchone()
    assert count[0] == n


def test_load_plan_leaves_no_transaction_open(db: Db):
    db.create({"Journal_Name": db.type("text", 100)})
    conn = pyodbc.connect(db.dsn, autocommit=False)
    try:
        plan = load_plan(conn, db.table, {})
        # Another connection can change the table at once: no lock or snapshot is left behind.
        # sqliteodbc's busy timeout (ms): fail fast instead of waiting 100 s for a held lock.
        busy = "Timeout=2000;" if db.dialect is Dialect.SQLITE else ""
        other = pyodbc.connect(db.dsn + busy, autocommit=True, timeout=5)
        try:
            other.cursor().execute(f"ALTER TABLE {db.q(db.table)} ADD {db.q('x')} INTEGER")
        finally:
            other.close()
        assert [c.name for c in plan.columns] == ["Journal_Name"]
    finally:
        conn.close()
