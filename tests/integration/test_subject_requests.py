"""Issue 20, findings 9 and 10: subject requests are complete (journal, ledger, dead letters),
exact (a full number only), audited (without the number), and their export is safe to open
(CSV formula starts escaped, no raw control characters on the terminal, a new 0600 file, never
through a link). Real databases and a RabbitMQ prefix of the test's own."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pika
import pytest

from cti_journal.shared.declare import declare_topology_blocking
from cti_journal.shared.loader import load_settings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.topology import Topology
from tests.integration.test_privacy_pipeline import Db, _cli, _config, _entry, _write, db  # noqa: F401
from tests.support.harness import fetch_rows
from tests.support.services import AMQP_URL

WHEN = datetime(2026, 11, 25, 9, 0, 0)
SUBJECT = "0891234567"


@pytest.fixture
def broker(db: Db, tmp_path: Path) -> Iterator[Topology]:  # noqa: F811
    settings = load_settings(_config(tmp_path, db), env={})
    topology = declare_topology_blocking(settings.broker)
    yield topology
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        for spec in topology.queues():
            ch.queue_delete(spec.name)
        ch.exchange_delete(topology.exchange)
    finally:
        conn.close()


def _publish_dead(topology: Topology, body: bytes, stage: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        headers = {"x-cti-stage": stage, "x-cti-error": "RowError", "x-cti-reason": "test",
                   "x-cti-failed-at": "2026-11-25T08:00:00Z"}  # fmt: skip
        props = pika.BasicProperties(delivery_mode=2, headers=headers)
        ch.basic_publish(topology.exchange, "dead", body, props, mandatory=True)
    finally:
        conn.close()


def _drain_dead(topology: Topology) -> list[bytes]:
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    bodies = []
    try:
        ch = conn.channel()
        while True:
            method, _, body = ch.basic_get(topology.queue("dead"), auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)
    finally:
        conn.close()


def _audit(journal: Db) -> list[tuple[Any, ...]]:
    return fetch_rows(journal.dsn, f"SELECT * FROM {journal.q(journal.journal + '_audit')}")


def _e(i: int, number: str, **fields: Any) -> JournalEntry:
    return _entry(i, WHEN + timedelta(minutes=i), number, **fields)


def test_only_a_full_number_is_a_subject(db: Db, tmp_path: Path) -> None:  # noqa: F811
    """`anonym` and `0891234xxx` are how the journal stores *other* people's suppressed and
    shortened numbers: before, `erase --dry-run anonym` matched them."""
    _write(db, [_e(1, "anonym"), _e(2, "0891234xxx"), _e(3, SUBJECT)])
    config = _config(tmp_path, db)
    for bad in ("anonym", "0891234xxx", "0891234*", "200", "089 12"):
        refused = _cli("subject", "erase", bad, "--dry-run", config=config)
        assert refused.returncode == 2, (bad, refused.stdout, refused.stderr)
        assert "NUMBER" in refused.stderr and "Traceback" not in refused.stderr
        assert "journal:" not in refused.stdout
        refused = _cli("subject", "export", bad, config=config)
        assert refused.returncode == 2, (bad, refused.stdout)
    assert db.count() == 3


def test_dead_letters_are_exported_and_erased_without_losing_others(
    db: Db,  # noqa: F811
    broker: Topology,
    tmp_path: Path,
) -> None:
    mine, other = _e(10, SUBJECT, name="Maria Meier"), _e(11, "0307654321", name="Otto Other")
    _write(db, [_e(1, "089 1234567"), _e(2, "0301111111")])
    _publish_dead(broker, mine.encode(), "write")  # only the subject's
    _publish_dead(broker, b"[" + mine.encode() + b"," + other.encode() + b"]", "write")  # bundle
    _publish_dead(broker, other.encode(), "lookup")  # someone else's
    _publish_dead(broker, b"i;garbage;089 1234567;Maria Meier", "gateway")  # unparsable line
    _publish_dead(broker, b"i;garbage;030 1111111;Otto", "gateway")
    config = _config(tmp_path, db)

    export = _cli("subject", "export", "+49 89 1234567", "--format", "json", config=config)
    assert export.returncode == 0, export.stderr
    data = orjson.loads(export.stdout)
    assert len(data["journal"]) == 1
    letters = data["dead_letters"]
    assert sorted(len(x.get("entries", [])) for x in letters) == [0, 1, 1]
    assert any("Maria Meier" in x.get("line", "") for x in letters)

    dry = _cli("subject", "erase", SUBJECT, "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("  dead letter ") == 3 and dry.stdout.count("  journal: ") == 1
    assert "1234567" not in dry.stdout and "Maria" not in dry.stdout  # masked

    erase = _cli("subject", "erase", SUBJECT, "--operator", "dpo@example", config=config)
    assert erase.returncode == 0, erase.stderr
    assert "deleted 1 rows" in erase.stdout and "2 removed, 1 bundles trimmed" in erase.stdout
    left = _drain_dead(broker)
    assert len(left) == 3  # the other's entry (trimmed bundle), the other's letter and line
    assert not any(b"1234567" in body or b"Maria" in body for body in left)
    assert sum(body.count(b"Otto Other") for body in left) == 2
    assert db.count() == 1

    audit = _audit(db)
    assert [row[4] for row in audit] == ["export", "delete-dry-run", "delete"]
    assert audit[2][1] == "dpo@example" and audit[2][2]  # operator, OS user
    assert audit[2][6:9] == (1, 0, 3)  # journal rows, ledger entries, dead letters
    text = repr(audit)
    assert "1234567" not in text and "Maria" not in text  # never the number or the name


def test_the_export_is_safe_to_open(db: Db, tmp_path: Path) -> None:  # noqa: F811
    names = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTab",
             "\rCR", "Plain \x1b[31mred\x1b[0m\nnext"]  # fmt: skip
    _write(db, [_e(i, SUBJECT, name=n) for i, n in enumerate(names)])
    config = _config(tmp_path, db)

    out = tmp_path / "export.csv"
    old = os.umask(0)
    try:
        done = _cli("subject", "export", SUBJECT, "-o", str(out), config=config)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    with out.open(encoding="utf-8", newline="") as fh:
        got = [row["Journal_Name"] for row in csv.DictReader(fh)]
    assert sorted(got) == sorted(["'" + n for n in names[:6]] + [names[6]])  # formulas escaped

    again = _cli("subject", "export", SUBJECT, "-o", str(out), config=config)
    assert again.returncode == 2 and "exists" in again.stderr
    target = tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    through = _cli("subject", "export", SUBJECT, "-o", str(link), config=config)
    assert through.returncode == 2, through.stdout
    assert target.read_text(encoding="utf-8") == "keep me"
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "would-be-created")
    assert _cli("subject", "export", SUBJECT, "-o", str(dangling), config=config).returncode == 2
    assert not (tmp_path / "would-be-created").exists()

    for fmt in ("csv", "json"):
        shown = _cli("subject", "export", SUBJECT, "--format", fmt, config=config)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\r" not in shown.stdout
        assert "\\x1b[31mred" in shown.stdout or "\\u001b[31mred" in shown.stdout
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
