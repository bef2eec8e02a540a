"""Contact sources on two real databases through ODBC: PostgreSQL (a CRM table, priority 10,
incremental by a modified column) and MariaDB (an ERP query, priority 20, full reloads).

Each test creates its own tables (the `table_name` fixture) and drops them afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyodbc
import pytest

from cti_journal.lookup.sources.base import SourceUnavailableError
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from tests.support.services import drop_table


def execute(dsn: str, *statements: str) -> None:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        cursor = conn.cursor()
        for sql in statements:
            cursor.execute(sql)
    finally:
        conn.close()


@dataclass
class Sources:
    pg_dsn: str
    maria_dsn: str
    crm_table: str
    erp_table: str
    settings: LookupSettings
    reports: list[tuple[str, bool, int]]

    def holder(self) -> IndexHolder:
        return IndexHolder(
            self.settings, lambda name, ok, records, _s: self.reports.append((name, ok, records))
        )


@pytest.fixture
def sources(pg_dsn: str, maria_dsn: str, table_name: str) -> Iterator[Sources]:
    crm, erp = f"{table_name}_crm", f"{table_name}_erp"
    # Mixed-case and spaced column names: only correct identifier quoting reads them.
    execute(
        pg_dsn,
        f'CREATE TABLE {crm} ("KontaktID" INTEGER PRIMARY KEY, "Vorname" VARCHAR(50), '
        f'"Nachname" VARCHAR(50), "Firma" VARCHAR(100), "Telefon" VARCHAR(100), '
        f'"Mobil" VARCHAR(100), "Geändert" TIMESTAMP NOT NULL)',
        f"INSERT INTO {crm} VALUES "
        "(1, 'Hans', 'Müller', 'ACME GmbH', '089 123456-77', '0171/2345678', '2024-01-01 10:00'),"
        "(2, 'Eva', 'Maier', '', 'Tel. +49 (0)30 9876543 (privat)', NULL, '2024-01-01 10:00')",
    )
    execute(
        maria_dsn,
        f"CREATE TABLE {erp} (kundennr VARCHAR(20) PRIMARY KEY, firma VARCHAR(100), "
        "`Telefon Zentrale` VARCHAR(100), aktiv INTEGER) CHARACTER SET utf8mb4",
        f"INSERT INTO {erp} VALUES "
        "('K-100', 'ACME GmbH', '089 123456-0', 1),"
        "('K-200', 'Beta AG', '0171 2345678', 1),"  # the same mobile as CRM record 1
        "('K-300', 'Alt KG', '040 555555', 0)",
    )
    settings = LookupSettings(
        area_code="89",
        refresh_s=3600,
        sources=(
            ContactSourceSettings(
                name="crm",
                dsn=pg_dsn,
                table=crm,
                id_column="KontaktID",
                first_name_column="Vorname",
                last_name_column="Nachname",
                company_column="Firma",
                phone_columns=("Telefon", "Mobil"),
                priority=10,
                modified_column="Geändert",
            ),
            ContactSourceSettings(
                name="erp",
                dsn=maria_dsn,
                query=f"SELECT kundennr, firma, `Telefon Zentrale` FROM {erp} WHERE aktiv = 1",
                id_column="kundennr",
                company_column="firma",
                phone_columns=("Telefon Zentrale",),
                label="Kunden",
                priority=20,
            ),
        ),
    )
    try:
        yield Sources(pg_dsn, maria_dsn, crm, erp, settings, [])
    finally:
        drop_table(pg_dsn, crm)
        drop_table(maria_dsn, erp)


def found(holder: IndexHolder, number: str) -> tuple[str, str, str, str, bool] | None:
    match = holder.current.find(number)
    if match is None:
        return None
    c = match.contact
    return match.kind, c.label, c.record_id, c.name or c.company, match.ambiguous


def test_two_databases_with_priorities(sources: Sources) -> None:
    holder = sources.holder()
    holder.start()
    try:
        # The same mobile in both: the CRM (priority 10) wins, flagged ambiguous.
        assert found(holder, "01712345678") == ("hit", sources.crm_table, "1", "Hans Müller", True)
        assert found(holder, "+49 30 9876543") == (
            "hit",
            sources.crm_table,
            "2",
            "Eva Maier",
            False,
        )
        assert found(holder, "0891234560") == ("hit", "Kunden", "K-100", "ACME GmbH", False)
        # A direct dial nobody has: the company record of its switchboard.
        assert found(holder, "008912345612") == ("company", "Kunden", "K-100", "ACME GmbH", False)
        assert found(holder, "040555555") is None  # filtered out by the source's query
        assert sorted(sources.reports) == [("crm", True, 2), ("erp", True, 2)]
    finally:
        holder.stop()


def test_refresh_picks_up_new_and_changed_contacts(sources: Sources) -> None:
    holder = sources.holder()
    holder.start()
    try:
        assert found(holder, "089 7777777") is None
        execute(
            sources.pg_dsn,
            f"INSERT INTO {sources.crm_table} VALUES "
            "(3, 'Neu', 'Kunde', '', '089 7777777', NULL, '2024-01-02 09:00')",
            f"UPDATE {sources.crm_table} SET \"Mobil\" = '0172 1111111', "
            '"Geändert" = \'2024-01-02 09:30\' WHERE "KontaktID" = 1',
        )
        execute(sources.maria_dsn, f"UPDATE {sources.erp_table} SET aktiv = 1")
        sources.reports.clear()
        holder.refresh_now()
        assert found(holder, "7777777") == ("hit", sources.crm_table, "3", "Neu Kunde", False)
        assert found(holder, "0172 1111111") == (
            "hit",
            sources.crm_table,
            "1",
            "Hans Müller",
            False,
        )
        # Record 1's old mobile now belongs to the ERP customer alone.
        assert found(holder, "01712345678") == ("hit", "Kunden", "K-200", "Beta AG", False)
        assert found(holder, "040555555") == ("hit", "Kunden", "K-300", "Alt KG", False)
        assert sources.reports == [("crm", True, 3), ("erp", True, 3)]
    finally:
        holder.stop()


def test_a_failing_source_keeps_its_last_good_data(sources: Sources) -> None:
    holder = sources.holder()
    holder.start()
    try:
        drop_table(sources.maria_dsn, sources.erp_table)  # the ERP's table is gone
        execute(
            sources.pg_dsn,
            f"INSERT INTO {sources.crm_table} VALUES "
            "(4, 'Weiter', 'Da', '', '089 8888888', NULL, '2024-01-03 09:00')",
        )
        sources.reports.clear()
        holder.refresh_now()
        assert sources.reports == [("crm", True, 3), ("erp", False, 2)]
        assert found(holder, "0891234560") == ("hit", "Kunden", "K-100", "ACME GmbH", False)
        assert found(holder, "089 8888888") == ("hit", sources.crm_table, "4", "Weiter Da", False)
    finally:
        holder.stop()


def test_a_source_that_cannot_be_read_at_start_is_a_clear_error(sources: Sources) -> None:
    drop_table(sources.pg_dsn, sources.crm_table)
    holder = sources.holder()
    with pytest.raises(SourceUnavailableError, match=r"source crm .*cannot read"):
        holder.start()
