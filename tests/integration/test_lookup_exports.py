"""The outside corpus of issue 16 (tests/corpus/exports/: 13 address-book exports of 12 systems,
with hand-written expected numbers) loaded as contact records through a real ODBC source (SQLite)
into the real index, and called from every form a PBX delivers.

Every record is a person (the exports' names are not in the loader: `Person <record>`). Measured:
- exact: a number the corpus expects on exactly one record finds that record from every
  delivery (a base + extension is the direct line base digits + extension; a switchboard, `-0`
  or one the field calls so, is no person's and is not called);
- shared: a number the corpus expects on several records finds no person (no coin flip);
- wrong: any call that finds a record the corpus does not expect for that number, or any
  record for a number near an expected one (one digit off, a prefix, plus digits).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pyodbc
import pytest

from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.holder import IndexHolder
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.simulator.server import Simulator
from cti_journal.writer.dialect import Dialect
from tests.corpus import exports_loader as corpus
from tests.integration.test_pipeline import Contact as PipelineContact
from tests.integration.test_pipeline import (
    Db,
    assert_rows,
    expected_row,
    settings_for,
    settled,
    start_all,
)

MAX_FIELDS = 24  # Outlook's export has 19 phone columns


def _records() -> tuple[list[tuple[str, list[str]]], dict[str, set[str]]]:
    """(record id, its phone fields) and, per expected E.164 key, the records expected to own it."""
    records: list[tuple[str, list[str]]] = []
    owners: dict[str, set[str]] = defaultdict(set)
    for path in corpus.export_files():
        fields = {r.record: r.fields for r in corpus.load_export(path)}
        expected = corpus.load_expected(Path(f"{path}.expected.tsv"))
        for record, phones in fields.items():
            rid = f"{path.name}/{record}"
            assert len(phones) <= MAX_FIELDS, rid
            records.append((rid, list(phones.values())))
        for entry in expected:
            if entry.expected.kind != "numbers":
                continue
            for reading in entry.expected.readings:
                if reading.ext is None:
                    owners[reading.number].add(f"{path.name}/{entry.record}")
                elif reading.ext != "0" and not reading.switchboard:
                    direct = reading.number + reading.ext
                    # (base + extension is a line only where it is a possible number: not in
                    # closed plans such as NANP's `+1 212 555 0123 x45`)
                    if phonenumbers.is_possible_number(phonenumbers.parse(direct)):
                        owners[direct].add(f"{path.name}/{entry.record}")
    return records, owners


def _load(dsn: str, records: list[tuple[str, list[str]]]) -> LookupSettings:
    columns = [f"phone_{i}" for i in range(MAX_FIELDS)]
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE exported (id VARCHAR(200) PRIMARY KEY, name VARCHAR(200), "
            + ", ".join(f"{c} VARCHAR(400)" for c in columns)
            + ")"
        )
        for rid, phones in records:
            values = phones + [None] * (MAX_FIELDS - len(phones))
            cursor.execute(
                f"INSERT INTO exported VALUES (?, ?, {', '.join('?' * MAX_FIELDS)})",
                rid, f"Person {rid}", *values,
            )  # fmt: skip
    finally:
        conn.close()
    source = ContactSourceSettings(
        name="exports", dsn=dsn, table="exported", id_column="id", name_column="name",
        phone_columns=tuple(columns), priority=10,
    )  # fmt: skip
    return LookupSettings(region="DE", area_code="89", outside_prefix="0", sources=(source,))


def _deliveries(e164: str) -> list[tuple[str, str, bool]]:
    digits = e164[1:]
    forms = [(f"+{digits}", "", True), (f"00{digits}", "", True), (f"000{digits}", "0", True)]
    if digits.startswith("49"):
        national = "0" + digits[2:]
        forms += [(national, "", True), ("0" + national, "0", True), ("0" + national, "", False)]
    return forms


def _near(e164: str) -> list[str]:
    digits = e164[1:]
    last = str((int(digits[-1]) + 1) % 10)
    return [f"+{digits[:-1]}{last}", f"+{digits[:-1]}", f"+{digits}7", f"+{digits}12"]


def _who(index: ContactIndex, call: tuple[str, str, bool]) -> str | None:
    match = index.find(call[0], call[1], incoming=call[2])
    if match is None or match.kind == "undecided":
        return None
    return match.contact.record_id if match.kind == "hit" else f"company:{match.contact.record_id}"


def test_the_exports_through_odbc_and_the_index(sqlite_dsn: str) -> None:
    records, owners = _records()
    holder = IndexHolder(_load(sqlite_dsn, records))
    holder.refresh_now()
    index = holder.current
    assert index.records == len(records)
    exact = exact_right = shared = shared_right = 0
    wrong: list[str] = []
    missed: list[str] = []
    for number, expected in sorted(owners.items()):
        for call in _deliveries(number):
            got = _who(index, call)
            if len(expected) == 1:
                exact += 1
                exact_right += got in expected
                if got is None:
                    missed.append(f"{call} {number} {expected}")
            else:
                shared += 1
                shared_right += got is None
                if got is not None:
                    missed.append(f"shared {call} {number} {sorted(expected)}: {got}")
            if got is not None and got not in expected:
                wrong.append(f"{call}: {got}, expected {sorted(expected)}")
        for near in _near(number):
            if near in owners:
                continue
            got = _who(index, (near, "", True))
            if got is not None:
                wrong.append(f"near {near} of {number}: {got}")
    summary = (
        f"exports: exact {exact_right}/{exact}, shared numbers without a person "
        f"{shared_right}/{shared}, wrong {len(wrong)}: {wrong[:5]}, missed {missed[:5]}"
    )
    print(summary)  # the figures docs/contact-matching.md quotes (pytest -s)
    assert wrong == [], summary
    assert exact_right == exact, summary
    assert shared_right == shared, summary


# -- a sample through the whole pipeline ------------------------------------------------------

SAMPLE = 24


def _sample() -> list[tuple[str, str]]:
    """(raw field, the one plain number it means) of export fields whose number nobody else
    in the corpus claims: the contacts of the pipeline run."""
    records, owners = _records()
    del records
    sample: list[tuple[str, str]] = []
    for path in corpus.export_files():
        fields = {r.record: r.fields for r in corpus.load_export(path)}
        for entry in corpus.load_expected(Path(f"{path}.expected.tsv")):
            readings = entry.expected.readings
            if entry.expected.kind != "numbers" or len(readings) != 1 or readings[0].ext:
                continue
            number = readings[0].number
            if owners[number] == {f"{path.name}/{entry.record}"} and number.startswith("+49"):
                sample.append((fields[entry.record][entry.field], number))
    return sample[:: max(1, len(sample) // SAMPLE)][:SAMPLE]


@pytest.fixture
def exports_db(sqlite_dsn: str, table_name: str) -> Iterator[Db]:
    database = Db(sqlite_dsn, Dialect.SQLITE, table_name, f"{table_name}_contacts")
    yield database
    database.drop()


def test_a_sample_of_the_exports_through_the_whole_pipeline(
    exports_db: Db, pipeline_factory: Any
) -> None:
    db = exports_db
    sample = _sample()
    assert len(sample) >= SAMPLE // 2
    db.execute(
        f"CREATE TABLE {db.q(db.contacts)} (id INTEGER PRIMARY KEY, name VARCHAR(100), "
        "company VARCHAR(100), phone VARCHAR(400))"
    )
    db.execute(
        f"INSERT INTO {db.q(db.contacts)} (id, name, company, phone) VALUES (?, ?, ?, ?)",
        [(i + 1, f"Person {i + 1}", None, field) for i, (field, _) in enumerate(sample)],
    )
    db.create_journal()
    # the national form, as the network delivers an incoming call
    delivered = {"0" + number[3:]: i for i, (_, number) in enumerate(sample)}
    calls = list(
        generate_calls(
            seed=16, count=120, numbers=sorted(delivered), hit_ratio=0.6,
            contact_forms="verbatim", duplicate_ratio=0.0, mean_gap_s=2.0,
        )
    )  # fmt: skip
    contacts = {
        phone: PipelineContact(str(i + 1), f"Person {i + 1}", "", phone)
        for phone, i in delivered.items()
    }
    expected = Counter(expected_row(e, contacts, db.contacts) for e in calls)
    assert sum(1 for e in calls if e["rufnummer"] in contacts) > 40
    simulator = Simulator(calls, LineFormat())
    thread = threading.Thread(target=simulator.serve, args=("127.0.0.1", 0), daemon=True)
    thread.start()
    try:
        _host, port = simulator.wait_ready(10) or ("", 0)
        pipeline = pipeline_factory(settings_for(db, {"source": "tcp", "port": port}))
        start_all(pipeline, lookups=1)
        settled(pipeline, db, len(calls))
    finally:
        simulator.stop()
        thread.join(timeout=10)
    assert_rows(db, expected)
