"""`cti-journal dlq` against the real broker."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pika
import pytest

from cti_journal.shared.amqp import declare_topology_blocking
from cti_journal.shared.config import Settings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.record import LineFormat
from tests.harness import Pipeline

pytestmark = pytest.mark.integration


def dlq(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti_journal.shared.cli", "dlq", "-c", str(pipeline.config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def dead_letter(pipeline: Pipeline, body: bytes, headers: dict[str, object]) -> None:
    with pipeline.channel() as ch:
        ch.basic_publish(
            pipeline.topology.exchange, "dead", body,
            pika.BasicProperties(delivery_mode=2, headers=headers),
        )  # fmt: skip


def test_list_show_replay_purge(pipeline_factory):
    # The gateway reads JSON now; the dead line came while it was misconfigured as delimited.
    pipeline = pipeline_factory({"gateway": {"format": "json", "timezone": "Europe/Berlin"}})
    declare_topology_blocking(Settings.load(pipeline.config).broker)
    values = {"in_out": "i", "zeitpunkt": "2026-11-25 10:00:00", "verb_zustand": "CONN",
              "rufnummer": "0891234567"}  # fmt: skip
    raw = LineFormat(kind="json").format(values)
    dead_letter(pipeline, raw, {"x-cti-stage": "gateway", "x-cti-error": "BadInputError",
                                "x-cti-reason": "1 fields separated by ';', expected 15",
                                "x-cti-raw-bytes": len(raw)})  # fmt: skip
    entry = JournalEntry(event_id="e" * 32, source="cti", received_at=1.0, in_out="o",
                         zeitpunkt="2026-11-25 11:00:00", utc="2026-11-25T10:00:00Z",
                         verb_zustand="BUSY")  # fmt: skip
    rejected = {"x-cti-stage": "write", "x-cti-error": "RowError",
                "x-cti-reason": "value too large", "x-cti-column": "X"}  # fmt: skip
    dead_letter(pipeline, entry.encode(), rejected)
    dead_letter(pipeline, b"\xff\xfe not a line", {"x-cti-stage": "gateway",
                                                   "x-cti-reason": "not valid utf-8"})  # fmt: skip

    listed = dlq(pipeline, "list")
    assert listed.returncode == 0, listed.stderr
    assert "value too large" in listed.stdout and "e" * 32 in listed.stdout
    assert len([ln for ln in listed.stdout.splitlines() if ln.strip()[:1].isdigit()]) == 3

    shown = dlq(pipeline, "show", "2")
    assert "x-cti-column: X" in shown.stdout and '"verb_zustand": "BUSY"' in shown.stdout

    replayed = dlq(pipeline, "replay", "1", "2", "3")
    assert replayed.returncode == 1  # #3 still does not parse, and says so
    assert "#1: replayed to lookup" in replayed.stdout
    assert "#2: replayed to write" in replayed.stdout
    assert "#3: not replayed" in replayed.stderr
    assert pipeline.queue_depth("lookup") == 1 and pipeline.queue_depth("write") == 1
    assert pipeline.queue_depth("dead") == 1  # only the line that still fails stays
    with pipeline.channel() as ch:
        _m, _p, body = ch.basic_get(pipeline.topology.queue("lookup"), auto_ack=True)
    assert orjson.loads(body)["rufnummer"] == "0891234567"

    assert dlq(pipeline, "purge").returncode == 2  # refuses without --yes
    purged = dlq(pipeline, "purge", "--yes")
    assert "purged 1" in purged.stdout and pipeline.queue_depth("dead") == 0


def test_copies_of_a_dead_letter_are_marked_and_replayed_once(pipeline_factory):
    """A writer that died after dead-lettering an entry but before acknowledging it dead-letters
    it again on redelivery. `list` marks the copy; replaying either sends the entry once and
    drops both. Two identical bad lines from the gateway may be two calls: never merged."""
    pipeline = pipeline_factory({"gateway": {"timezone": "Europe/Berlin"}})
    declare_topology_blocking(Settings.load(pipeline.config).broker)
    entry = JournalEntry(event_id="c" * 32, source="cti", received_at=1.0, in_out="o",
                         zeitpunkt="2026-11-25 11:00:00", utc="2026-11-25T10:00:00Z",
                         verb_zustand="BUSY")  # fmt: skip
    other = JournalEntry(event_id="d" * 32, source="cti", received_at=1.0, in_out="i",
                         zeitpunkt="2026-11-25 11:00:01", utc="2026-11-25T10:00:01Z",
                         verb_zustand="RING")  # fmt: skip
    rejected = {"x-cti-stage": "write", "x-cti-error": "RowError", "x-cti-reason": "too large"}
    bad_line = {"x-cti-stage": "gateway", "x-cti-reason": "not valid utf-8"}
    dead_letter(pipeline, entry.encode(), rejected)  # 1
    dead_letter(pipeline, b"\xff bad", bad_line)  # 2
    dead_letter(pipeline, other.encode(), rejected)  # 3
    dead_letter(pipeline, entry.encode(), rejected)  # 4: the copy of 1
    dead_letter(pipeline, b"\xff bad", bad_line)  # 5: the same bytes, but maybe another call

    listed = dlq(pipeline, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {ln.split()[0]: ln for ln in listed.stdout.splitlines() if ln.strip()[:1].isdigit()}
    assert "copy of #1" in rows["4"]
    assert not any("copy of" in rows[i] for i in ("1", "2", "3", "5"))
    assert "copies: 1 of these 5 letters repeat an earlier one" in listed.stdout

    replayed = dlq(pipeline, "replay", "4")  # the copy stands for its original
    assert replayed.returncode == 0, replayed.stderr
    assert "#1: replayed to write (copies #4 dropped)" in replayed.stdout
    assert pipeline.queue_depth("write") == 1  # the entry once
    assert pipeline.queue_depth("dead") == 3  # 2, 3 and 5 stay
    left = dlq(pipeline, "list")
    assert "copy of" not in left.stdout and "c" * 32 not in left.stdout
