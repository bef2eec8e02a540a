"""A contact world the look-up did not generate, loaded through real ODBC sources, and the calls
a PBX delivers for it with the record each must find.

`tests/corpus/world/` is written by someone who did not read lookup/; `tests/corpus/world_lookup/`
by the look-up's author. Each holds `crm_persons.csv` (id, first_name, last_name, company, phone,
mobile), `erp_companies.csv` (id, name, phone, fax) and `calls.tsv` (direction, number,
amtsholung, expected = `crm_persons:<id>` | `erp_companies:<id>` |
`switchboard:erp_companies:<id>` | `NONE`). The company is in Munich (DE, 089, outside prefix 0).

Measured: exact matches (the expected record, as a hit), switchboard fallbacks (a direct dial
nobody lists finds its company's record) and wrong contacts (a record other than the expected
one, or any record where none is expected). Misses stay misses.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pyodbc
import pytest

from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.config import ContactSourceSettings, LookupSettings

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
WORLDS = ("world", "world_lookup")


@dataclass
class Figures:
    exact: int = 0
    exact_right: int = 0
    switchboard: int = 0
    switchboard_right: int = 0
    none: int = 0
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"exact {self.exact_right}/{self.exact}, switchboard "
            f"{self.switchboard_right}/{self.switchboard}, NONE {self.none}, "
            f"wrong {len(self.wrong)}: {self.wrong[:10]}, missed {self.missed[:10]}"
        )


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _load_sqlite(dsn: str, world: Path) -> None:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE crm_persons (id INTEGER PRIMARY KEY, first_name VARCHAR(100), "
            "last_name VARCHAR(100), company VARCHAR(200), phone VARCHAR(200), "
            "mobile VARCHAR(200))"
        )
        cursor.execute(
            "CREATE TABLE erp_companies (id INTEGER PRIMARY KEY, name VARCHAR(200), "
            "phone VARCHAR(200), fax VARCHAR(200))"
        )
        for row in _csv(world / "crm_persons.csv"):
            cursor.execute(
                "INSERT INTO crm_persons VALUES (?, ?, ?, ?, ?, ?)",
                int(row["id"]), row["first_name"], row["last_name"], row["company"],
                row["phone"] or None, row["mobile"] or None,
            )  # fmt: skip
        for row in _csv(world / "erp_companies.csv"):
            cursor.execute(
                "INSERT INTO erp_companies VALUES (?, ?, ?, ?)",
                int(row["id"]), row["name"], row["phone"] or None, row["fax"] or None,
            )  # fmt: skip
    finally:
        conn.close()


def _settings(dsn: str) -> LookupSettings:
    crm = ContactSourceSettings(
        name="crm_persons", dsn=dsn, table="crm_persons", first_name_column="first_name",
        last_name_column="last_name", company_column="company",
        phone_columns=("phone", "mobile"), priority=10,
    )  # fmt: skip
    erp = ContactSourceSettings(
        name="erp_companies", dsn=dsn, table="erp_companies", company_column="name",
        phone_columns=("phone", "fax"), priority=20,
    )  # fmt: skip
    return LookupSettings(region="DE", area_code="89", outside_prefix="0", sources=(crm, erp))


def measure(index: ContactIndex, calls: list[dict[str, str]]) -> Figures:
    figures = Figures()
    for call in calls:
        number, expected = call["number"], call["expected"].strip()
        incoming = call["direction"].strip().lower() in ("i", "in", "incoming")
        match = index.find(number, call.get("amtsholung") or "", incoming=incoming)
        got = "NONE"
        if match is not None:
            got = f"{match.contact.source}:{match.contact.record_id}"
            if match.kind == "company":
                got = f"switchboard:{got}"
        what = f"{call['direction']} {number!r} amt {call.get('amtsholung')!r}: {got}, {expected}"
        if expected == "NONE":
            figures.none += 1
        elif expected.startswith("switchboard:"):
            figures.switchboard += 1
            figures.switchboard_right += got == expected
        else:
            figures.exact += 1
            figures.exact_right += got == expected
        if got != "NONE" and got.removeprefix("switchboard:") != expected.removeprefix(
            "switchboard:"
        ):
            figures.wrong.append(what)
        elif got != expected:
            figures.missed.append(what)
    return figures


@pytest.mark.parametrize("name", WORLDS)
def test_a_world_through_odbc(name: str, sqlite_dsn: str) -> None:
    world = CORPUS / name
    if not (world / "calls.tsv").exists():
        pytest.skip(f"tests/corpus/{name} is not merged yet")
    _load_sqlite(sqlite_dsn, world)
    holder = IndexHolder(_settings(sqlite_dsn))
    holder.refresh_now()
    with (world / "calls.tsv").open(encoding="utf-8", newline="") as fh:
        calls = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    figures = measure(holder.current, calls)
    print(f"{name}: {figures.summary()}")  # the figures docs/contact-matching.md quotes (pytest -s)
    assert figures.wrong == [], figures.summary()
    assert figures.exact_right >= 0.99 * figures.exact, figures.summary()
    assert figures.switchboard_right >= 0.95 * figures.switchboard, figures.summary()
