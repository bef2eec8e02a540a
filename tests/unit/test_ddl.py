"""The `schema` command's DDL. That it runs unchanged on PostgreSQL, MariaDB and SQLite is
proved in tests/integration/test_table_catalog.py."""

from __future__ import annotations

import argparse

import pytest

from cti_journal.shared.columns import JOURNAL_TYPES, ColumnType
from cti_journal.shared.errors import ConfigError
from cti_journal.writer import ddl
from cti_journal.writer.ddl import create_table_sql
from cti_journal.writer.dialect import Dialect, quote_identifier


def run_schema(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    ddl.configure(parser)
    return ddl.run(parser.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("dialect", "text", "integer", "moment"),
    [
        (
            Dialect.POSTGRESQL,
            '"Journal_Name" VARCHAR(100)',
            '"Journal_Gebühren" INTEGER',
            "TIMESTAMP",
        ),
        (Dialect.MARIADB, "`Journal_Name` VARCHAR(100)", "`Journal_Gebühren` INT", "DATETIME"),
        (Dialect.SQLITE, '"Journal_Name" VARCHAR(100)', '"Journal_Gebühren" INTEGER', "TIMESTAMP"),
        (Dialect.MSSQL, "[Journal_Name] NVARCHAR(100)", "[Journal_Gebühren] INT", "DATETIME2"),
        (Dialect.ACCESS, "[Journal_Name] TEXT(100)", "[Journal_Gebühren] LONG", "DATETIME"),
    ],
)
def test_all_sixteen_columns_with_the_seed_sizes(dialect, text, integer, moment):
    sql = create_table_sql(dialect)
    assert sql.startswith("CREATE TABLE ")
    assert text in sql
    assert integer in sql
    assert f"{quote_identifier('Journal_ZeitpunktNumerisch', dialect)} {moment}" in sql
    assert all(t.value in sql for t in JOURNAL_TYPES)
    assert sql.count("\n    ") == 16
    assert "ID" not in sql.replace("DatensatzID", "")


def test_mariadb_table_is_transactional_and_utf8mb4():
    assert create_table_sql(Dialect.MARIADB).endswith(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")


def test_a_subset_in_the_given_order_with_the_id_first():
    sql = create_table_sql(
        Dialect.POSTGRESQL,
        "Anrufe 2026",
        [ColumnType.RUFNUMMER, ColumnType.IN_OUT, ColumnType.RUFNUMMER],
        id_column=True,
    )
    assert sql == (
        'CREATE TABLE "Anrufe 2026" (\n'
        '    "ID" VARCHAR(32) NOT NULL PRIMARY KEY,\n'
        '    "Journal_Rufnummer" VARCHAR(30),\n'
        '    "Journal_In_Out" VARCHAR(1)\n'
        ")"
    )


def test_access_names_its_primary_key():
    sql = create_table_sql(Dialect.ACCESS, types=[ColumnType.ID, ColumnType.LCR])
    assert "[ID] TEXT(32) NOT NULL CONSTRAINT [journal_pk] PRIMARY KEY" in sql


def test_no_ddl_for_an_unknown_database_or_an_empty_table():
    with pytest.raises(ValueError):
        create_table_sql(Dialect.OTHER)
    with pytest.raises(ValueError):
        create_table_sql(Dialect.SQLITE, types=[])


def test_schema_command_prints_the_ddl(capsys):
    assert run_schema("--dialect", "mariadb", "--types", "in_out, Gebuehren", "--with-id") == 0
    out = capsys.readouterr().out
    assert out == (
        "CREATE TABLE `journal` (\n"
        "    `ID` VARCHAR(32) NOT NULL PRIMARY KEY,\n"
        "    `Journal_In_Out` VARCHAR(1),\n"
        "    `Journal_Gebühren` INT\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
    )


def test_schema_command_names_a_bad_type():
    with pytest.raises(ConfigError) as info:
        run_schema("--dialect", "sqlite", "--types", "Name,Telefon")
    assert info.value.setting == "--types"
    assert "Telefon" in info.value.problem


def test_schema_command_refuses_an_unknown_dialect(capsys):
    with pytest.raises(SystemExit):
        run_schema("--dialect", "oracle")
    assert "invalid choice" in capsys.readouterr().err
