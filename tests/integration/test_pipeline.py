"""The whole pipeline, end to end, with the real processes: CTI server (the simulator) → gateway →
RabbitMQ → 2 lookup workers (contacts in the same database) → writer → the journal table through
each ODBC driver. Every test compares what the database holds with what was sent, column by
column, as multisets: 0 lost, 0 doubled, enrichment exactly where a contact's number was called.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyodbc
import pytest

from cti_journal.shared.columns import JOURNAL_TYPES, SPECS, ColumnType
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.simulator.server import Simulator
from cti_journal.writer.ddl import create_table_sql
from cti_journal.writer.dialect import Dialect, detect_dialect, quote_identifier
from tests.support.harness import Pipeline, count_rows, fetch_rows, free_port, wait_for

TIMEZONE = "Europe/Berlin"
_FIRST = ("Anna", "Jürgen", "Renée", "Dieter", "Eva", "Frank", "Gisela", "Hans", "Ines", "Jörg")
_LAST = ("Müller", "Schmidt", "Weiß", "Fischer", "O'Neill", "Meyer", "Groß", "Becker")
_COMPANY = (
    "Bäckerei Huber",
    "Autohaus Süd GmbH",
    "Kanzlei Roth & Partner",
    "Meier; Partner KG",
    'Café "Größenwahn"',
    "",
)
_AREAS = ("89", "30", "40", "221", "69", "711")


@dataclass(frozen=True)
class Contact:
    record_id: str
    name: str
    company: str
    phone: str


@dataclass
class Db:
    """The database under test: its journal and contacts tables, dropped afterwards."""

    dsn: str
    dialect: Dialect
    journal: str
    contacts: str

    @property
    def ledger(self) -> str:
        # A ledger of the test's own: the default one is shared by everything writing to this
        # database, and would remember the event ids of an earlier run of the same seed.
        return f"{self.journal}_ledger"

    def q(self, name: str) -> str:
        return quote_identifier(name, self.dialect)

    def execute(self, sql: str, params: list[tuple[Any, ...]] | None = None) -> None:
        conn = pyodbc.connect(self.dsn, autocommit=False)
        try:
            cursor = conn.cursor()
            if params is None:
                cursor.execute(sql)
            else:
                cursor.executemany(sql, params)
            conn.commit()
        finally:
            conn.close()

    def create_contacts(self, count: int, seed: int) -> list[Contact]:
        rng = random.Random(seed)
        options = " DEFAULT CHARSET=utf8mb4" if self.dialect is Dialect.MARIADB else ""
        self.execute(
            f"CREATE TABLE {self.q(self.contacts)} (id INTEGER PRIMARY KEY, name VARCHAR(100),"
            f" company VARCHAR(100), phone VARCHAR(40)){options}"
        )
        contacts: list[Contact] = []
        used: set[str] = set()
        while len(contacts) < count:
            phone = "0" + rng.choice(_AREAS) + str(rng.randrange(2_000_000, 9_999_999))
            if phone in used:
                continue
            used.add(phone)
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            contacts.append(Contact(str(len(contacts) + 1), name, rng.choice(_COMPANY), phone))
        self.execute(
            f"INSERT INTO {self.q(self.contacts)} (id, name, company, phone) VALUES (?, ?, ?, ?)",
            [(int(c.record_id), c.name, c.company or None, c.phone) for c in contacts],
        )
        return contacts

    def create_journal(self) -> None:
        self.execute(create_table_sql(self.dialect, self.journal))

    def rows(self) -> list[tuple[Any, ...]]:
        columns = ", ".join(self.q(t.value) for t in JOURNAL_TYPES)
        return fetch_rows(self.dsn, f"SELECT {columns} FROM {self.q(self.journal)}")

    def count(self) -> int:
        return count_rows(self.dsn, self.q(self.journal))

    def drop(self) -> None:
        for table in (self.journal, self.contacts, self.ledger):
            with contextlib.suppress(pyodbc.Error):
                self.execute(f"DROP TABLE IF EXISTS {self.q(table)}")


@pytest.fixture
def db(any_dsn: str, table_name: str) -> Iterator[Db]:
    conn = pyodbc.connect(any_dsn, autocommit=True)
    try:
        dialect = detect_dialect(conn)
    finally:
        conn.close()
    database = Db(any_dsn, dialect, table_name, f"{table_name}_contacts")
    yield database
    database.drop()


@pytest.fixture
def sqlite_db(sqlite_dsn: str, table_name: str) -> Iterator[Db]:
    database = Db(sqlite_dsn, Dialect.SQLITE, table_name, f"{table_name}_contacts")
    yield database
    database.drop()


def settings_for(db: Db, gateway: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway": {"timezone": TIMEZONE, "source_id": "cti-test", **gateway},
        "lookup": {
            "area_code": "89",
            "prefetch": 100,
            "sources": [
                {
                    "name": "crm",
                    "dsn": db.dsn,
                    "table": db.contacts,
                    "id_column": "id",
                    "name_column": "name",
                    "company_column": "company",
                    "phone_columns": ["phone"],
                }
            ],
        },
        "writer": {
            "dsn": db.dsn,
            "table": db.journal,
            "ledger_table": db.ledger,
            "batch_size": 200,
            "batch_ms": 100,
        },
    }


def start_all(pipeline: Pipeline, lookups: int = 2) -> None:
    pipeline.start("writer", "writer")
    for i in range(lookups):
        pipeline.start(f"lookup-{i + 1}", "lookup")
    pipeline.start("gateway", "gateway")


def expected_row(
    entry: dict[str, Any], contacts: dict[str, Contact], label: str
) -> tuple[Any, ...]:
    """The row the writer must produce for a sent entry: every empty value NULL, the look-up
    fields from the contact when the number is a contact's and the entry did not bring its own."""
    values = dict(entry)
    contact = contacts.get(values["rufnummer"])
    if contact is not None and not (values["name"] or values["datensatz_id"]):
        values.update(
            name=contact.name,
            firma=contact.company,
            datensatz_id=contact.record_id,
            datensatz_tabelle=label,
        )
    out: list[Any] = []
    for ctype in JOURNAL_TYPES:
        if ctype is ColumnType.ZEITPUNKT_NUMERISCH:
            out.append(datetime.strptime(values["zeitpunkt"], "%Y-%m-%d %H:%M:%S"))
            continue
        value = values[SPECS[ctype].field]
        out.append(None if value == "" else value)
    return tuple(out)


def settled(pipeline: Pipeline, db: Db, expected: int, timeout: float = 90.0) -> None:
    """Wait for `expected` rows, then for empty work queues, and check nothing more arrives."""

    def done() -> bool:
        pipeline.assert_running()
        return db.count() >= expected

    wait_for(done, timeout, f"{expected} rows in {db.journal}")
    wait_for(
        lambda: pipeline.queue_depth("lookup") == 0 and pipeline.queue_depth("write") == 0,
        30,
        "empty work queues",
    )
    time.sleep(0.5)  # a late duplicate, if there were one, would land now
    assert db.count() == expected


def assert_rows(db: Db, expected: Counter[tuple[Any, ...]]) -> None:
    got = Counter(db.rows())
    missing, extra = expected - got, got - expected
    assert not missing and not extra, (
        f"{sum(missing.values())} missing, {sum(extra.values())} unexpected rows; "
        f"e.g. missing {list(missing)[:2]}, unexpected {list(extra)[:2]}"
    )


# -- the happy path on every database ---------------------------------------------------------


def test_every_entry_becomes_exactly_one_row_with_every_column_right(
    db: Db, pipeline_factory: Any
) -> None:
    count = 1500
    contacts = db.create_contacts(300, seed=11)
    db.create_journal()
    calls = list(
        generate_calls(
            seed=5,
            count=count,
            numbers=[c.phone for c in contacts],
            hit_ratio=0.5,
            contact_forms="verbatim",
            duplicate_ratio=0.01,
            preenriched_ratio=0.05,
            mean_gap_s=3.0,
        )
    )
    by_number = {c.phone: c for c in contacts}
    expected = Counter(expected_row(e, by_number, db.contacts) for e in calls)
    # The test is only as good as its data: identical entries, hits, misses and presets present.
    assert any(n == 2 for n in Counter(tuple(sorted(e.items())) for e in calls).values())
    hits = sum(1 for e in calls if e["rufnummer"] in by_number and not e["name"])
    assert 500 < hits < 1000
    assert any(e["name"] for e in calls)

    simulator = Simulator(calls, LineFormat())
    thread = threading.Thread(target=simulator.serve, args=("127.0.0.1", 0), daemon=True)
    thread.start()
    try:
        _host, port = simulator.wait_ready(10) or ("", 0)
        pipeline = pipeline_factory(settings_for(db, {"source": "tcp", "port": port}))
        start_all(pipeline)
        settled(pipeline, db, count)
    finally:
        simulator.stop()
        thread.join(timeout=10)
    assert simulator.sent == count
    assert_rows(db, expected)
    assert pipeline.dead_letters() == []


# -- bad input --------------------------------------------------------------------------------


def _connect_when_listening(port: int, timeout: float = 30.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _metric(port: int, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return 0.0


def test_malformed_lines_are_dead_lettered_and_the_good_ones_all_arrive(
    sqlite_db: Db, pipeline_factory: Any
) -> None:
    db = sqlite_db
    contacts = db.create_contacts(50, seed=3)
    db.create_journal()
    max_line = 1024
    calls = list(
        generate_calls(
            seed=9,
            count=300,
            numbers=[c.phone for c in contacts],
            hit_ratio=0.5,
            contact_forms="verbatim",
        )
    )
    fmt = LineFormat()
    good = [fmt.format(e) for e in calls]
    template = good[0].rstrip(b"\n").split(b";")

    def variant(index: int, value: bytes) -> bytes:
        fields = list(template)
        fields[index] = value
        return b";".join(fields) + b"\n"

    bad = {
        "wrong field count": (b"i;2024-03-04 08:00:00;CONN;0891234567\n", "4 fields"),
        "bad date": (variant(1, b"2024-02-30 08:00:00"), "Zeitpunkt"),
        "non-numeric duration": (variant(10, b"12s"), "not a whole number"),
        "invalid UTF-8": (variant(4, b"M\xfcller"), "not valid utf-8"),
        "control character": (variant(4, b"Mu\x00ller"), "control character"),
        "too long": (variant(4, b"x" * 3000), "longer than gateway.max_line_bytes"),
    }
    metrics_port = free_port()
    listen_port = free_port()
    pipeline = pipeline_factory(
        settings_for(
            db,
            {
                "source": "listen",
                "listen_port": listen_port,
                "max_line_bytes": max_line,
                "metrics_port": metrics_port,
            },
        )
    )
    start_all(pipeline, lookups=1)

    # The bad lines mixed in between good ones; then a second client, to show the gateway is
    # still serving after all of them.
    stream = list(good[:200])
    for i, (line, _reason) in enumerate(bad.values()):
        stream.insert(10 + 30 * i, line)
    with _connect_when_listening(listen_port) as conn:
        conn.sendall(b"".join(stream))
    wait_for(lambda: db.count() >= 200, 60, "the first 200 good lines")
    with _connect_when_listening(listen_port) as conn:
        conn.sendall(b"".join(good[200:]))
    settled(pipeline, db, len(good))

    expected = Counter(expected_row(e, {c.phone: c for c in contacts}, db.contacts) for e in calls)
    assert_rows(db, expected)
    dead = pipeline.dead_letters()
    assert len(dead) == len(bad)
    by_body = {body: headers for headers, body in dead}
    for what, (line, reason) in bad.items():
        raw = line[:max_line] if len(line) > max_line else line
        assert raw in by_body, f"{what}: not in the dead-letter queue with its raw bytes"
        headers = by_body[raw]
        assert reason.lower() in str(headers["x-cti-reason"]).lower(), (what, headers)
        assert headers["x-cti-stage"] == "gateway"
        assert headers["x-cti-raw-bytes"] == len(raw)
    rejected = "cti_journal_entries_rejected_total"
    assert _metric(metrics_port, rejected, 'reason="parse"') == len(bad) - 1
    assert _metric(metrics_port, rejected, 'reason="too_long"') == 1
    pipeline.assert_running()


# -- pre-enriched entries ---------------------------------------------------------------------


def test_preenriched_entries_go_straight_to_the_writer_and_keep_their_contact(
    sqlite_db: Db, pipeline_factory: Any
) -> None:
    """No lookup worker runs: what arrives in the table can only have come straight from the
    gateway, and the rest must wait in the look-up queue."""
    db = sqlite_db
    db.create_contacts(20, seed=1)
    db.create_journal()
    calls = list(generate_calls(seed=21, count=400, preenriched_ratio=0.4, duplicate_ratio=0.0))
    preset = [e for e in calls if e["name"] or e["datensatz_id"]]
    assert 80 < len(preset) < 250
    simulator = Simulator(calls, LineFormat())
    thread = threading.Thread(target=simulator.serve, args=("127.0.0.1", 0), daemon=True)
    thread.start()
    try:
        _host, port = simulator.wait_ready(10) or ("", 0)
        pipeline = pipeline_factory(settings_for(db, {"source": "tcp", "port": port}))
        start_all(pipeline, lookups=0)
        wait_for(lambda: db.count() >= len(preset), 60, f"{len(preset)} pre-enriched rows")
        wait_for(
            lambda: pipeline.entry_count("lookup") == len(calls) - len(preset),
            30,
            "the other entries in the look-up queue",
        )
    finally:
        simulator.stop()
        thread.join(timeout=10)
    time.sleep(0.5)
    assert db.count() == len(preset)
    assert_rows(db, Counter(expected_row(e, {}, "") for e in preset))
