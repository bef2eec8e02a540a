"""Value conversion of the table plan, the default name mapping and identifier quoting: pure,
no database. What the catalog of a real database reports is covered by
tests/integration/test_table_catalog.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from cti_journal.shared.columns import ColumnType
from cti_journal.shared.errors import ConfigError, PermanentError
from cti_journal.shared.message import JournalEntry
from cti_journal.writer.catalog import CatalogColumn
from cti_journal.writer.dialect import Dialect, max_params, quote_identifier
from cti_journal.writer.mapping import (
    MappedColumn,
    _by_name,  # the default mapping, tested without a catalog
    _cannot_hold,
    _sql_type,
)
from cti_journal.writer.table import TablePlan
from cti_journal.writer.values import ole_date

ENTRY = JournalEntry(
    event_id="0123456789abcdef0123456789abcdef",
    source="test",
    received_at=0.0,
    in_out="i",
    zeitpunkt="2026-01-01 12:00:00",
    utc="2026-01-01T11:00:00Z",
    verb_zustand="CONN",
    rufnummer="0891234567",
    name="Müller, Hans",
    firma="Müller & Söhne GmbH",
    datensatz_id="4711",
    rufdauer_ms=5300,
    verbdauer_sec=61,
    gebuehren=None,
)


def text(name: str, ctype: ColumnType, size: int | None = 100, nullable: bool = True):
    return MappedColumn(name, ctype, "text", size, nullable)


def integer(name: str, ctype: ColumnType, bits: int = 32, nullable: bool = True):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return MappedColumn(name, ctype, "integer", None, nullable, low=low, high=high)


def plan(*columns: MappedColumn, dialect: Dialect = Dialect.POSTGRESQL, calls=None) -> TablePlan:
    on_truncate = calls.append if calls is not None else (lambda _c: None)
    return TablePlan("journal", dialect, columns, on_truncate)


# --- OLE Automation dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(1899, 12, 30, 0, 0), 0.0),
        (datetime(1899, 12, 31, 6, 0), 1.25),
        (datetime(1900, 1, 1, 0, 0), 2.0),
        (datetime(2026, 1, 1, 12, 0), 46023.5),
        (datetime(2026, 1, 1, 0, 0), 46023.0),
        (datetime(2026, 1, 1, 18, 0), 46023.75),
        # Before the epoch Access counts the days down and the time of day up.
        (datetime(1899, 12, 29, 6, 0), -1.25),
    ],
)
def test_ole_date_exact_values(moment, expected):
    assert ole_date(moment) == expected


def test_ole_date_keeps_the_second():
    value = ole_date(datetime(2026, 1, 1, 12, 0, 1))
    assert value == pytest.approx(46023.5 + 1 / 86400, abs=1e-9)
    assert value != ole_date(datetime(2026, 1, 1, 12, 0, 0))


# --- values into columns ----------------------------------------------------------------------


def test_zeitpunkt_numerisch_into_each_kind_of_column():
    p = plan(
        MappedColumn("ts", ColumnType.ZEITPUNKT_NUMERISCH, "datetime", None, True),
        MappedColumn("tz", ColumnType.ZEITPUNKT_NUMERISCH, "datetime", None, True, utc=True),
        MappedColumn("ole", ColumnType.ZEITPUNKT_NUMERISCH, "float", None, True),
        MappedColumn(
            "dec", ColumnType.ZEITPUNKT_NUMERISCH, "float", None, True, -999999, 999999, 6
        ),
        text("txt", ColumnType.ZEITPUNKT_NUMERISCH, 20),
    )
    ts, tz, ole, dec, txt = p.row(replace(ENTRY, zeitpunkt="2026-01-01 12:00:01"))
    assert ts == datetime(2026, 1, 1, 12, 0, 1)  # naive local wall-clock time
    assert tz == "2026-01-01T11:00:00Z"  # a zoned column gets the instant
    assert ole == pytest.approx(46023.5 + 1 / 86400, abs=1e-9)
    assert dec == round(46023.5 + 1 / 86400, 6)
    assert txt == "2026-01-01 12:00:01"


def test_a_bad_zeitpunkt_is_permanent_and_names_the_column():
    p = plan(MappedColumn("Wann", ColumnType.ZEITPUNKT_NUMERISCH, "datetime", None, True))
    with pytest.raises(PermanentError) as info:
        p.row(replace(ENTRY, zeitpunkt="01.01.2026 12:00"))
    assert info.value.column == "Wann"


def test_text_longer_than_the_column_is_cut_and_reported_every_time():
    calls: list[str] = []
    p = plan(text("Name", ColumnType.NAME, 5), text("Firma", ColumnType.FIRMA, 8), calls=calls)
    assert p.row(ENTRY) == ("Mülle", "Müller &")
    assert p.row(ENTRY) == ("Mülle", "Müller &")
    assert calls == ["Name", "Firma", "Name", "Firma"]


def test_text_that_fits_is_not_reported():
    calls: list[str] = []
    p = plan(text("Name", ColumnType.NAME, 12), text("t", ColumnType.FIRMA, None), calls=calls)
    assert p.row(ENTRY) == ("Müller, Hans", "Müller & Söhne GmbH")
    assert calls == []


def test_empty_text_is_null_when_nullable_and_empty_string_when_not_null():
    p = plan(text("a", ColumnType.LCR, 10, True), text("b", ColumnType.LCR, 10, False))
    assert p.row(ENTRY) == (None, "")


def test_missing_number_is_null_when_nullable_and_zero_when_not_null():
    p = plan(integer("a", ColumnType.GEBUEHREN), integer("b", ColumnType.GEBUEHREN, nullable=False))
    assert p.row(ENTRY) == (None, 0)


def test_integer_overflow_is_permanent_and_names_the_column():
    p = plan(integer("Dauer", ColumnType.RUFDAUER_MS, bits=16))
    assert p.row(replace(ENTRY, rufdauer_ms=32767)) == (32767,)
    with pytest.raises(PermanentError) as info:
        p.row(replace(ENTRY, rufdauer_ms=32768))
    assert info.value.column == "Dauer"
    assert "32768" in str(info.value)


def test_unsigned_column_refuses_negative_numbers():
    col = MappedColumn("g", ColumnType.GEBUEHREN, "integer", None, True, low=0, high=255)
    with pytest.raises(PermanentError):
        plan(col).row(replace(ENTRY, gebuehren=-1))


def test_a_number_into_a_text_column_is_never_cut():
    p = plan(text("Dauer", ColumnType.RUFDAUER_MS, 3))
    assert p.row(replace(ENTRY, rufdauer_ms=999)) == ("999",)
    with pytest.raises(PermanentError) as info:
        p.row(replace(ENTRY, rufdauer_ms=1000))
    assert info.value.column == "Dauer"


def test_datensatz_id_into_an_integer_column():
    p = plan(integer("Kontakt", ColumnType.DATENSATZ_ID))
    assert p.row(ENTRY) == (4711,)
    assert p.row(replace(ENTRY, datensatz_id=" -12 ")) == (-12,)
    assert p.row(replace(ENTRY, datensatz_id="")) == (None,)
    with pytest.raises(PermanentError) as info:
        p.row(replace(ENTRY, datensatz_id="A-4711"))
    assert info.value.column == "Kontakt"
    with pytest.raises(PermanentError):
        p.row(replace(ENTRY, datensatz_id="99999999999"))  # beyond 32 bits


def test_datensatz_id_into_a_text_column_is_the_text():
    assert plan(text("k", ColumnType.DATENSATZ_ID, 50)).row(ENTRY) == ("4711",)


def test_the_event_id_is_never_cut():
    p = plan(text("ID", ColumnType.ID, 16))
    with pytest.raises(PermanentError) as info:
        p.row(ENTRY)
    assert info.value.column == "ID"
    assert plan(text("ID", ColumnType.ID, 32)).row(ENTRY) == (ENTRY.event_id,)


def test_every_journal_type_takes_its_field():
    p = plan(
        text("a", ColumnType.IN_OUT, 1),
        text("b", ColumnType.VERB_ZUSTAND, 4),
        text("c", ColumnType.RUFNUMMER, 30),
        integer("d", ColumnType.VERBDAUER_SEC),
        MappedColumn("e", ColumnType.RUFDAUER_MS, "float", None, True),
    )
    assert p.row(ENTRY) == ("i", "CONN", "0891234567", 61, 5300)


# --- statements -------------------------------------------------------------------------------


def test_insert_sql_quotes_every_identifier():
    p = plan(
        text("Journal_Gebühren", ColumnType.GEBUEHREN),
        text("order", ColumnType.NAME),
        text('we"ird', ColumnType.FIRMA),
    )
    assert p.insert_sql(2) == (
        'INSERT INTO "journal" ("Journal_Gebühren", "order", "we""ird") VALUES (?, ?, ?), (?, ?, ?)'
    )
    maria = replace(p, dialect=Dialect.MARIADB)
    assert maria.insert_sql(1) == (
        'INSERT INTO `journal` (`Journal_Gebühren`, `order`, `we"ird`) VALUES (?, ?, ?)'
    )


def test_rows_per_statement_respect_the_parameter_limit():
    cols = tuple(text(f"c{i}", ColumnType.NAME) for i in range(17))
    assert plan(*cols, dialect=Dialect.POSTGRESQL).max_rows_per_statement() == 100
    assert plan(*cols, dialect=Dialect.SQLITE).max_rows_per_statement() == 999 // 17
    assert plan(*cols, dialect=Dialect.MSSQL).max_rows_per_statement() == 100  # 2000 // 17 = 117
    assert plan(*cols * 2, dialect=Dialect.MSSQL).max_rows_per_statement() == 2000 // 34
    assert plan(*cols, dialect=Dialect.ACCESS).max_rows_per_statement() == 1
    assert plan(*cols, dialect=Dialect.OTHER).max_rows_per_statement() == 1
    with pytest.raises(ValueError):
        plan(*cols, dialect=Dialect.SQLITE).insert_sql(999 // 17 + 1)
    with pytest.raises(ValueError):
        plan(*cols).insert_sql(0)


def test_max_params():
    assert max_params(Dialect.SQLITE) == 999
    assert max_params(Dialect.MSSQL) <= 2100


# --- quoting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "how", "expected"),
    [
        ("Journal_Gebühren", Dialect.POSTGRESQL, '"Journal_Gebühren"'),
        ("order", Dialect.SQLITE, '"order"'),
        ('a"b', Dialect.POSTGRESQL, '"a""b"'),
        ("a`b", Dialect.MARIADB, "`a``b`"),
        ("a b", Dialect.MSSQL, "[a b]"),
        ("a]b", Dialect.MSSQL, "[a]]b]"),
        ("my journal", Dialect.ACCESS, "[my journal]"),
        ("x", '"', '"x"'),
        ("x`y", "`", "`x``y`"),
        ("plain_1", " ", "plain_1"),  # the driver cannot quote: a plain name stays as it is
    ],
)
def test_quote_identifier(name, how, expected):
    assert quote_identifier(name, how) == expected


@pytest.mark.parametrize(("name", "how"), [("a\x00b", Dialect.POSTGRESQL), ("", "`"), ("a b", " ")])
def test_quote_identifier_refuses(name, how):
    with pytest.raises(ValueError):
        quote_identifier(name, how)


# --- mapping by name and type checks ----------------------------------------------------------


def catalog(name: str, data_type: int = 12, type_name: str = "VARCHAR", size: int | None = 100):
    return CatalogColumn(name, data_type, type_name, size, None, True, False)


def test_default_mapping_by_column_name():
    columns = [
        catalog("JOURNAL_NAME"),
        catalog("firma"),
        catalog("Gebuehren", 4, "INTEGER"),
        catalog("Journal_Rufdauer_ms", 4, "INTEGER"),
        catalog("Bemerkung"),
        catalog("id", 4, "INTEGER"),  # an integer id is a key, not the event id
    ]
    types = {c.name: _sql_type(Dialect.POSTGRESQL, c) for c in columns}
    assert _by_name(columns, types) == {
        "JOURNAL_NAME": ColumnType.NAME,
        "firma": ColumnType.FIRMA,
        "Gebuehren": ColumnType.GEBUEHREN,
        "Journal_Rufdauer_ms": ColumnType.RUFDAUER_MS,
    }
    text_id = [catalog("ID", size=32), catalog("Journal_Gebühren", 4, "INTEGER")]
    types = {c.name: _sql_type(Dialect.SQLITE, c) for c in text_id}
    assert _by_name(text_id, types) == {
        "ID": ColumnType.ID,
        "Journal_Gebühren": ColumnType.GEBUEHREN,
    }


def test_default_mapping_refuses_two_columns_for_one_type():
    columns = [catalog("Name"), catalog("Journal_Name")]
    types = {c.name: _sql_type(Dialect.SQLITE, c) for c in columns}
    with pytest.raises(ConfigError) as info:
        _by_name(columns, types)
    assert "Journal_Name" in str(info.value)


@pytest.mark.parametrize(
    ("ctype", "column", "fits"),
    [
        (ColumnType.NAME, catalog("c", 4, "INTEGER"), False),
        (ColumnType.DATENSATZ_ID, catalog("c", 4, "INTEGER"), True),
        (ColumnType.RUFDAUER_MS, catalog("c", 12, "VARCHAR"), True),
        (ColumnType.RUFDAUER_MS, catalog("c", 93, "TIMESTAMP"), False),
        (ColumnType.ZEITPUNKT_NUMERISCH, catalog("c", 8, "DOUBLE"), True),
        (ColumnType.ZEITPUNKT_NUMERISCH, catalog("c", 7, "REAL"), False),  # single precision
        (ColumnType.ZEITPUNKT_NUMERISCH, catalog("c", 4, "INTEGER"), False),
        (ColumnType.ID, catalog("c", 12, "VARCHAR", 20), False),  # an event id is never cut
        (ColumnType.ID, catalog("c", 12, "VARCHAR", 32), True),
    ],
)
def test_which_sql_types_can_hold_which_journal_types(ctype, column, fits):
    sql = _sql_type(Dialect.MARIADB, column)
    assert not isinstance(sql, str)
    assert (_cannot_hold(ctype, sql) is None) is fits


def test_decimal_for_an_ole_date_needs_five_decimals():
    wide = CatalogColumn("c", 3, "DECIMAL", 12, 6, True, False)
    narrow = CatalogColumn("c", 3, "DECIMAL", 12, 2, True, False)
    for col, fits in ((wide, True), (narrow, False)):
        sql = _sql_type(Dialect.MARIADB, col)
        assert not isinstance(sql, str)
        assert (_cannot_hold(ColumnType.ZEITPUNKT_NUMERISCH, sql) is None) is fits


def test_date_only_and_postgresql_json_are_refused():
    assert isinstance(_sql_type(Dialect.POSTGRESQL, catalog("d", 91, "date")), str)
    assert isinstance(_sql_type(Dialect.POSTGRESQL, catalog("j", -9, "jsonb")), str)
    assert isinstance(_sql_type(Dialect.POSTGRESQL, catalog("b", 12, "bool")), str)
    assert isinstance(_sql_type(Dialect.MARIADB, catalog("e", -8, "ENUM")), str)
