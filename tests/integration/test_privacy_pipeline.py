"""Privacy on real rows, on PostgreSQL, MariaDB and SQLite: each rule action through the real
pipeline processes (before rules never let the number reach the broker), retention deleting only
what is due while the pipeline writes, `purge`, and subject requests finding one number stored in
several notations."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyodbc
import pytest

from cti_journal.shared.config import Settings
from cti_journal.shared.loader import build
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.privacy import PrivacyRules
from cti_journal.shared.record import LineFormat
from cti_journal.writer.ddl import create_table_sql
from cti_journal.writer.dialect import Dialect, detect_dialect, quote_identifier
from cti_journal.writer.sink import OdbcJournalSink
from tests.support.harness import Pipeline, fetch_rows, free_port, to_toml, wait_for
from tests.support.services import AMQP_URL

TZ = "Europe/Berlin"
KEY = "integration-test-pseudonym-key-0123456789"


@dataclass
class Db:
    dsn: str
    dialect: Dialect
    journal: str

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

    def contacts(self, table: str, rows: list[tuple[int, str, str]]) -> None:
        charset = " DEFAULT CHARSET=utf8mb4" if self.dialect is Dialect.MARIADB else ""
        self.execute(
            f"CREATE TABLE {self.q(table)} (id INTEGER PRIMARY KEY, name VARCHAR(100),"
            f" phone VARCHAR(40)){charset}"
        )
        self.execute(f"INSERT INTO {self.q(table)} (id, name, phone) VALUES (?, ?, ?)", rows)

    def rows(self, *columns: str) -> list[tuple[Any, ...]]:
        names = ", ".join(self.q(c) for c in columns)
        return fetch_rows(self.dsn, f"SELECT {names} FROM {self.q(self.journal)}")

    def count(self) -> int:
        sql = f"SELECT COUNT(*) FROM {self.q(self.journal)}"
        return int(fetch_rows(self.dsn, sql)[0][0])


@pytest.fixture
def db(any_dsn: str, table_name: str) -> Iterator[Db]:
    conn = pyodbc.connect(any_dsn, autocommit=True)
    try:
        dialect = detect_dialect(conn)
    finally:
        conn.close()
    database = Db(any_dsn, dialect, table_name)
    database.execute(create_table_sql(dialect, table_name))
    yield database
    for suffix in ("", "_ledger", "_crm", "_private", "_audit"):
        with contextlib.suppress(pyodbc.Error):
            database.execute(f"DROP TABLE IF EXISTS {database.q(table_name + suffix)}")


def line(**values: Any) -> bytes:
    base: dict[str, Any] = {
        "zeitpunkt": "2026-11-25 08:00:00",
        "verb_zustand": "CONN",
        "lokale_rufnummer": "200",
        "rufdauer_ms": 1000,
        "verbdauer_sec": 30,
        "gebuehren": 0,
    }
    return LineFormat().format({**base, **values})


def connect_when_listening(port: int, timeout: float = 30.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def metric(port: int, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = f"{name}{{{labels}}} " if labels else f"{name} "
    for row in text.splitlines():
        if row.startswith(wanted):
            return float(row.split()[-1])
    return 0.0


def base_settings(db: Db, **writer: Any) -> dict[str, Any]:
    return {
        "gateway": {
            "timezone": TZ,
            "source_id": "privacy-test",
            "source": "listen",
            "listen_port": free_port(),
            "metrics_port": free_port(),
        },
        "lookup": {"area_code": "89", "prefetch": 50, "metrics_port": free_port()},
        "writer": {
            "dsn": db.dsn,
            "table": db.journal,
            "ledger_table": f"{db.journal}_ledger",
            "batch_size": 100,
            "batch_ms": 50,
            **writer,
        },
        "privacy": {"pseudonym_key": KEY},
    }


# -- each action, through the pipeline ----------------------------------------------------------

RULES = [
    {"name": "council", "stage": "before", "local": ["4711"], "action": "anonymise"},
    {"name": "helpline", "stage": "before", "number": ["0800 1110111"], "action": "drop"},
    {"name": "private", "contact_source": ["Privat"], "action": "anonymise"},
    {"name": "busy", "states": ["BUSY"], "action": "drop"},
    {"name": "counted", "direction": "in", "local": ["300"], "action": "pseudonymise"},
    {"name": "outgoing", "direction": "out", "action": "shorten", "digits": 3},
]


def test_each_action_on_real_rows(db: Db, pipeline_factory: Any) -> None:
    db.contacts(
        f"{db.journal}_crm",
        [
            (1, "Anna Kunde", "089 1111111"),
            (2, "Bernd Lieferant", "089 2222222"),
            (3, "Carla Betriebsrat-Anruferin", "089 3333333"),
        ],
    )
    db.contacts(f"{db.journal}_private", [(1, "Dora Privat", "089 4444444")])
    settings = base_settings(db)
    settings["lookup"]["sources"] = [
        {
            "name": "crm",
            "dsn": db.dsn,
            "table": f"{db.journal}_crm",
            "label": "crm",
            "name_column": "name",
            "phone_columns": ["phone"],
        },
        {
            "name": "private",
            "dsn": db.dsn,
            "table": f"{db.journal}_private",
            "label": "Privat",
            "name_column": "name",
            "phone_columns": ["phone"],
        },
    ]
    settings["privacy"]["rules"] = RULES
    calls = {  # Zeitpunkt (one per call, to find its row) -> line
        "08:00:01": line(in_out="i", rufnummer="0891111111"),  # no rule: kept
        "08:00:02": line(in_out="o", rufnummer="0892222222", weitergeleitet="0897777777"),
        "08:00:03": line(in_out="i", rufnummer="0893333333", lokale_rufnummer="4711"),
        "08:00:04": line(in_out="o", rufnummer="08001110111"),
        "08:00:05": line(in_out="i", rufnummer="0894444444"),
        "08:00:06": line(in_out="i", rufnummer="0895555555", verb_zustand="BUSY"),
        "08:00:07": line(in_out="i", rufnummer="0896666666", lokale_rufnummer="300"),
        "08:00:08": line(
            in_out="i", rufnummer="0049896666666", lokale_rufnummer="300", amtsholung="9"
        ),
    }
    stream = b"".join(_set_time(raw, clock) for clock, raw in calls.items())
    pipeline: Pipeline = pipeline_factory(settings)
    pipeline.start("writer", "writer")
    pipeline.start("gateway", "gateway")
    with connect_when_listening(settings["gateway"]["listen_port"]) as conn:
        conn.sendall(stream)

    # No look-up runs yet: what a before rule changed is in the table already, what it dropped
    # is nowhere, and neither number is in the look-up queue.
    wait_for(lambda: db.count() >= 1 and pipeline.entry_count("lookup") == 6, 60, "phase 1")
    waiting = orjson.dumps(pipeline.entries("lookup"))
    assert b"0893333333" not in waiting and b"08001110111" not in waiting
    assert db.count() == 1
    gateway_port = settings["gateway"]["metrics_port"]
    applied = "cti_journal_privacy_applied_total"
    assert metric(gateway_port, applied, 'action="drop",rule="helpline"') == 1
    assert metric(gateway_port, applied, 'action="anonymise",rule="council"') == 1
    assert metric(gateway_port, "cti_journal_publish_failed_total") == 0  # a drop is not sent

    pipeline.start("lookup", "lookup")
    wait_for(lambda: db.count() >= 6 and pipeline.entry_count("lookup") == 0, 60, "all rows")
    time.sleep(0.5)
    rows = {
        str(r[0])[-8:]: r[1:]
        for r in db.rows(
            "Journal_Zeitpunkt",
            "Journal_Rufnummer",
            "Journal_Name",
            "Journal_Weitergeleitet",
            "Journal_DatensatzTabelle",
        )
    }
    pseudonym = _rules(settings).pseudonym("0896666666")
    assert rows == {
        "08:00:01": ("0891111111", "Anna Kunde", None, "crm"),
        "08:00:02": ("0892222xxx", "Bernd Lieferant", "0897777xxx", "crm"),  # found, then cut
        "08:00:03": (None, None, None, None),  # anonymised before: not even looked up
        "08:00:05": (None, None, None, None),  # the private book's contact: anonymised after
        "08:00:07": (pseudonym, None, None, None),
        "08:00:08": (pseudonym, None, None, None),  # the same number, another notation
    }
    lookup_port = settings["lookup"]["metrics_port"]
    assert metric(lookup_port, applied, 'action="drop",rule="busy"') == 1
    assert metric(lookup_port, applied, 'action="shorten",rule="outgoing"') == 1
    assert pipeline.dead_letters() == []
    pipeline.assert_running()


def _set_time(raw: bytes, clock: str) -> bytes:
    fields = raw.rstrip(b"\n").split(b";")
    fields[1] = f"2026-11-25 {clock}".encode()
    return b";".join(fields) + b"\n"


def _rules(settings: dict[str, Any]) -> PrivacyRules:
    return PrivacyRules.from_settings(build(Settings, settings, ""))


# -- retention --------------------------------------------------------------------------------


def test_retention_deletes_only_what_is_due_while_the_pipeline_writes(
    db: Db, pipeline_factory: Any
) -> None:
    settings = base_settings(db, retention_days=30, retention_every_s=0.3, metrics_port=free_port())
    settings["broker"] = {"dead_letter_days": 30}
    now = datetime.now(ZoneInfo(TZ)).replace(tzinfo=None, microsecond=0)
    bursts: list[list[bytes]] = []
    old: list[str] = []
    new: list[str] = []
    for burst in range(5):
        lines = []
        for i in range(60):
            due = i % 2 == 0
            # due: 31 to 400 days old; kept: up to 29 days old (a day's margin either side)
            age = (
                timedelta(days=31 + (burst * 60 + i) % 369)
                if due
                else timedelta(days=(burst * 60 + i) % 29, minutes=i)
            )
            stamp = (now - age - timedelta(seconds=burst * 60 + i)).strftime("%Y-%m-%d %H:%M:%S")
            (old if due else new).append(stamp)
            lines.append(line(in_out="i", zeitpunkt=stamp, rufnummer=f"0891{burst:02d}{i:04d}"))
        bursts.append(lines)
    pipeline: Pipeline = pipeline_factory(settings)
    pipeline.start("writer", "writer")
    pipeline.start("lookup", "lookup")
    pipeline.start("gateway", "gateway")
    for lines in bursts:  # the pipeline writes while retention runs every 0.3 s
        with connect_when_listening(settings["gateway"]["listen_port"]) as conn:
            conn.sendall(b"".join(lines))
        time.sleep(0.4)
    port = settings["writer"]["metrics_port"]

    def settled() -> bool:
        pipeline.assert_running()
        return metric(port, "cti_journal_rows_written_total") == len(old) + len(new) and metric(
            port, "cti_journal_retention_deleted_rows_total"
        ) == len(old)

    wait_for(settled, 90, "every row written and the due ones deleted")
    kept = sorted(str(r[0]) for r in db.rows("Journal_Zeitpunkt"))
    assert kept == sorted(new)
    assert metric(port, "cti_journal_retention_last_run_timestamp_seconds") > 0


def test_purge_once_with_dry_run_and_the_ledger_follows(db: Db, tmp_path: Path) -> None:
    now = datetime.now(ZoneInfo(TZ)).replace(tzinfo=None, microsecond=0)
    ages = [1, 5, 89, 91, 120, 400]
    entries = [_entry(i, now - timedelta(days=d), "0891234567") for i, d in enumerate(ages)]
    _write(db, entries)
    config = _config(tmp_path, db)
    dry = _cli("purge", "--older-than", "90d", "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    assert "3 rows" in dry.stdout and db.count() == 6
    done = _cli("purge", "--older-than", "90d", config=config)
    assert done.returncode == 0, done.stderr
    assert "deleted 3 rows" in done.stdout
    assert db.count() == 3
    bad = _cli("purge", "--older-than", "ninety days", config=config)
    assert bad.returncode == 2 and "--older-than" in bad.stderr


def test_purge_refuses_a_text_time_column_with_times_in_another_format(
    sqlite_dsn: str, tmp_path: Path
) -> None:
    """A text Zeitpunkt compares as text: '01.12.2026 10:00' of an older journal client sorts
    before '2026-…' and would be deleted whatever its age. Purge refuses until it is converted."""
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute(
        'CREATE TABLE journal ("Journal_Zeitpunkt" VARCHAR(20), "Journal_Rufnummer" VARCHAR(30))'
    )
    recent = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    for when in ("2020-01-01 10:00:00", recent, "01.12.2026 10:00"):
        conn.cursor().execute("INSERT INTO journal VALUES (?, '0891234567')", when)
    config = tmp_path / "text.toml"
    config.write_text(
        to_toml({"gateway": {"timezone": TZ}, "writer": {"dsn": sqlite_dsn, "table": "journal"}}),
        encoding="utf-8",
    )
    refused = _cli("purge", "--older-than", "90d", config=config)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "1 rows of journal have a Journal_Zeitpunkt not written as YYYY-MM-DD" in refused.stderr
    assert conn.cursor().execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 3
    conn.cursor().execute("DELETE FROM journal WHERE \"Journal_Zeitpunkt\" LIKE '01.%'")
    done = _cli("purge", "--older-than", "90d", config=config)
    assert done.returncode == 0 and "deleted 1 rows" in done.stdout, done.stdout + done.stderr
    assert conn.cursor().execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 1
    conn.close()


# -- subject requests -------------------------------------------------------------------------


def test_subject_export_and_erase_find_a_number_in_every_notation(db: Db, tmp_path: Path) -> None:
    when = datetime(2026, 11, 25, 9, 0, 0)
    rules = _rules({"lookup": {"area_code": "89"}, "privacy": {"pseudonym_key": KEY}})
    stored = [
        ("089 1234567", ""),
        ("+49891234567", ""),
        ("00891234567", "0"),  # with the outside prefix
        ("1234567", ""),  # a local number in the company's area code
        (rules.pseudonym("0891234567"), ""),  # what a pseudonymise rule wrote
    ]
    others = [("0891234568", ""), ("0301234567", ""), ("+43891234567", ""), ("0891234xxx", "")]
    entries = [
        _entry(i, when + timedelta(minutes=i), number, amtsholung=prefix)
        for i, (number, prefix) in enumerate(stored + others)
    ]
    entries.append(_entry(99, when, "0301111111", weitergeleitet="0891234567"))  # forwarded via
    _write(db, entries)
    config = _config(tmp_path, db)

    export = _cli("subject", "export", "+49 89 1234567", "--format", "json", config=config)
    assert export.returncode == 0, export.stderr
    found = orjson.loads(export.stdout)["journal"]
    numbers = sorted(r["Journal_Rufnummer"] for r in found)
    assert numbers == sorted([n for n, _ in stored] + ["0301111111"])
    assert "6 rows" in export.stderr

    out = tmp_path / "subject.csv"
    as_csv = _cli("subject", "export", "0891234567", "-o", str(out), config=config)
    assert as_csv.returncode == 0, as_csv.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_text().count("\n") == 7  # header + 6 rows

    dry = _cli("subject", "erase", "089/1234567", "--dry-run", config=config)
    assert dry.returncode == 0 and db.count() == len(entries)
    assert "0891234567" not in dry.stdout  # the listing shows the notations masked
    erase = _cli("subject", "erase", "089/1234567", config=config)
    assert erase.returncode == 0, erase.stderr
    assert "deleted 6 rows" in erase.stdout
    left = sorted(str(r[0]) for r in db.rows("Journal_Rufnummer"))
    assert left == sorted(n for n, _ in others)

    anonymised = _cli("subject", "erase", "0301234567", "--anonymise", config=config)
    assert "anonymised 1 rows" in anonymised.stdout, anonymised.stdout + anonymised.stderr
    assert db.count() == len(others)
    assert sorted(str(r[0]) for r in db.rows("Journal_Rufnummer")) == sorted(
        ["None", "0891234568", "+43891234567", "0891234xxx"]
    )


def test_subject_erase_takes_only_rows_whose_reading_is_the_subjects(
    db: Db, tmp_path: Path
) -> None:
    """The same digits can be two numbers: an incoming 0043 1 234567 is Vienna, an outgoing
    call to 0 0431 234567 (outside prefix 0) is Kiel. A Kiel subject's request must never touch
    the Vienna caller's rows, and a row whose Amtsholung differs is another number."""
    when = datetime(2026, 11, 25, 9, 0, 0)
    entries = [
        _entry(1, when, "00431234567", in_out="i"),  # Vienna calling in
        _entry(2, when, "00431234567", in_out="o", amtsholung="0"),  # Kiel, dialled out
        _entry(3, when, "00431234567", in_out="o"),  # Kiel too: the PBX's outside prefix 0
        _entry(4, when, "0431234567", in_out="i"),  # Kiel calling in
    ]
    _write(db, entries)
    config = _config(tmp_path, db)
    erase = _cli("subject", "erase", "+49 431 234567", config=config)
    assert erase.returncode == 0, erase.stderr
    assert "deleted 3 rows" in erase.stdout, erase.stdout
    assert [str(r[0]) for r in db.rows("Journal_Rufnummer")] == ["00431234567"]
    vienna = _cli("subject", "export", "0043 1 234567", "--format", "json", config=config)
    assert len(orjson.loads(vienna.stdout)["journal"]) == 1, vienna.stdout + vienna.stderr


def _entry(i: int, when: datetime, number: str, in_out: str = "i", **fields: Any) -> JournalEntry:
    local = when.strftime("%Y-%m-%d %H:%M:%S")
    return JournalEntry(
        event_id=f"{i:032x}",
        source="t",
        received_at=0.0,
        in_out=in_out,
        zeitpunkt=local,
        utc=local.replace(" ", "T") + "Z",
        verb_zustand="CONN",
        rufnummer=number,
        **fields,
    )


def _write(db: Db, entries: list[JournalEntry]) -> None:
    from cti_journal.shared.config import WriterSettings

    sink = OdbcJournalSink(
        WriterSettings(dsn=db.dsn, table=db.journal, ledger_table=f"{db.journal}_ledger"),
        make_metrics(),
    )
    sink.open()
    try:
        assert sink.write(entries) == [None] * len(entries)
    finally:
        sink.close()


def _config(tmp_path: Path, db: Db) -> Path:
    path = tmp_path / "privacy.toml"
    path.write_text(
        to_toml(
            {
                # A prefix of the test's own: subject requests read `<prefix>.dead` too.
                "broker": {"urls": [AMQP_URL], "prefix": f"subj-{db.journal}"},
                "gateway": {"timezone": TZ},
                "lookup": {"area_code": "89"},
                "writer": {
                    "dsn": db.dsn,
                    "table": db.journal,
                    "ledger_table": f"{db.journal}_ledger",
                },
                "privacy": {"pseudonym_key": KEY},
            }
        ),
        encoding="utf-8",
    )
    return path


def _cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    command, rest = args[0], args[1:]
    return subprocess.run(
        [sys.executable, "-m", "cti_journal.cli", command, "-c", str(config), *rest],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )


# -- the demo -----------------------------------------------------------------------------------


def test_the_demo_shows_its_privacy_rule_and_keeps_its_folder_private(
    amqp_url: str, tmp_path: Path
) -> None:
    work = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cti_journal.cli",
            "demo",
            "--count",
            "300",
            "--lookups",
            "1",
            "--workdir",
            str(work),
            "--amqp",
            amqp_url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = next(s for s in done.stdout.splitlines() if "privacy rule" in s)
    shortened, outgoing = re.search(r"shortened: (\d+) of (\d+)", summary).groups()  # type: ignore[union-attr]
    assert int(outgoing) > 50 and shortened == outgoing
    assert work.stat().st_mode & 0o777 == 0o700
    for path in work.iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"
