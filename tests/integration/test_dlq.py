"""`cti-journal dlq` against the real broker."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pika

from cti_journal.shared.declare import declare_topology_blocking
from cti_journal.shared.loader import load_settings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.record import LineFormat
from tests.support.harness import Pipeline


def dlq(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti_journal.cli", "dlq", "-c", str(pipeline.config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def dead_letter(pipeline: Pipeline, body: bytes, headers: dict[str, object]) -> None:
    with pipeline.channel() as ch:
        ch.basic_publish(
            pipeline.topology.exchange, "dead", body,
            pika.BasicProperties(delivery_mode=2, headers=headers),
        )  # fmt: skip


def rows(listed: subprocess.CompletedProcess[str]) -> list[str]:
    """The letter lines of `dlq list`, in queue order."""
    lines = listed.stdout.splitlines()
    return [ln for ln in lines[1:] if ln[:1].isalnum() and not ln.startswith("copies:")]


def row_id(listed: subprocess.CompletedProcess[str], text: str) -> str:
    (found,) = [ln.split()[0] for ln in rows(listed) if text in ln]
    return found


def test_list_show_replay_purge(pipeline_factory):
    # The gateway reads JSON now; the dead line came while it was misconfigured as delimited.
    pipeline = pipeline_factory({"gateway": {"format": "json", "timezone": "Europe/Berlin"}})
    declare_topology_blocking(load_settings(pipeline.config).broker)
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
    assert len(rows(listed)) == 3
    line, row, bad = (row_id(listed, t) for t in ("expected 15", "value too large", "utf-8"))

    shown = dlq(pipeline, "show", row)
    assert "x-cti-column: X" in shown.stdout and '"verb_zustand": "BUSY"' in shown.stdout
    shown = dlq(pipeline, "show", line)
    assert "*******567" in shown.stdout and "0891234567" not in shown.stdout  # masked
    assert "0891234567" in dlq(pipeline, "show", line, "--reveal").stdout

    replayed = dlq(pipeline, "replay", line, row, bad)
    assert replayed.returncode == 1  # the third still does not parse, and says so
    assert f"{line}: replayed to lookup" in replayed.stdout
    assert f"{row}: replayed to write" in replayed.stdout
    assert '"verb_zustand":"BUSY"' in replayed.stdout  # what it sent
    assert "*******567" in replayed.stdout and "0891234567" not in replayed.stdout
    assert f"{bad}: not replayed" in replayed.stderr
    assert pipeline.queue_depth("lookup") == 1 and pipeline.queue_depth("write") == 1
    assert pipeline.queue_depth("dead") == 1  # only the line that still fails stays
    with pipeline.channel() as ch:
        _m, _p, body = ch.basic_get(pipeline.topology.queue("lookup"), auto_ack=True)
    assert orjson.loads(body)["rufnummer"] == "0891234567"  # the raw line was kept

    assert dlq(pipeline, "purge").returncode == 2  # refuses without --yes
    purged = dlq(pipeline, "purge", "--yes")
    assert "purged 1" in purged.stdout and pipeline.queue_depth("dead") == 0


def test_ids_stay_when_positions_change(pipeline_factory):
    """A letter keeps its id when the broker requeues letters out of order and new ones arrive
    before it: `replay <id>` and `purge <id>` hit the letter that `list` showed."""
    pipeline = pipeline_factory({"gateway": {"timezone": "Europe/Berlin"}})
    declare_topology_blocking(load_settings(pipeline.config).broker)

    def entry(n: int) -> JournalEntry:
        return JournalEntry(event_id=f"{n:032x}", source="cti", received_at=1.0, in_out="o",
                            zeitpunkt="2026-11-25 11:00:00", utc="2026-11-25T10:00:00Z",
                            verb_zustand="BUSY", rufnummer=f"08912345{n:02d}")  # fmt: skip

    rejected = {"x-cti-stage": "write", "x-cti-error": "RowError", "x-cti-reason": "too large"}
    for n in (1, 2, 3):
        dead_letter(pipeline, entry(n).encode(), rejected)
    before = dlq(pipeline, "list")
    third = row_id(before, f"{3:032x}")
    first = row_id(before, f"{1:032x}")
    # Move the first letter to the end (as a consumer that takes it and puts it back does) and
    # put a new one in: positions change.
    with pipeline.channel() as ch:
        method, props, body = ch.basic_get(pipeline.topology.queue("dead"), auto_ack=False)
        ch.basic_publish(pipeline.topology.exchange, "dead", body, props)
        ch.basic_ack(method.delivery_tag)
    dead_letter(pipeline, entry(4).encode(), rejected)
    after = dlq(pipeline, "list")
    position = [ln.split()[0] for ln in rows(before)].index(third)
    assert [ln.split()[0] for ln in rows(after)].index(third) != position
    assert row_id(after, f"{3:032x}") == third and row_id(after, f"{1:032x}") == first

    replayed = dlq(pipeline, "replay", third)
    assert replayed.returncode == 0, replayed.stderr
    with pipeline.channel() as ch:
        _m, _p, body = ch.basic_get(pipeline.topology.queue("write"), auto_ack=True)
    assert orjson.loads(body)["event_id"] == f"{3:032x}"
    assert "no dead letter with the id" in dlq(pipeline, "show", third).stderr
    assert dlq(pipeline, "purge", first, "--yes").returncode == 0
    left = dlq(pipeline, "list")
    assert sorted(ln.split()[3] for ln in rows(left)) == [f"{2:032x}", f"{4:032x}"]


def test_copies_of_a_dead_letter_are_marked_and_replayed_once(pipeline_factory):
    """A writer that died after dead-lettering an entry but before acknowledging it dead-letters
    it again on redelivery. `list` marks the copy; replaying either sends the entry once and
    drops both. Two identical bad lines from the gateway may be two calls: never merged."""
    pipeline = pipeline_factory({"gateway": {"timezone": "Europe/Berlin"}})
    declare_topology_blocking(load_settings(pipeline.config).broker)
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
    lines = rows(listed)
    assert len(lines) == 5
    copies = [ln for ln in lines if "copy of" in ln]
    assert len(copies) == 1
    copy_id, original = copies[0].split()[0], copies[0].split("copy of ")[1].strip()
    assert original in {ln.split()[0] for ln in lines} and original != copy_id
    bad_ids = [ln.split()[0] for ln in lines if "utf-8" in ln]
    assert len(set(bad_ids)) == 2  # identical bad lines: two letters, two ids
    assert "copies: 1 of these 5 letters repeat an earlier one" in listed.stdout

    replayed = dlq(pipeline, "replay", copy_id)  # the copy stands for its original
    assert replayed.returncode == 0, replayed.stderr
    assert f"{original}: replayed to write (copies {copy_id} dropped)" in replayed.stdout
    assert pipeline.queue_depth("write") == 1  # the entry once
    assert pipeline.queue_depth("dead") == 3  # the other entry and both bad lines stay
    left = dlq(pipeline, "list")
    assert "copy of" not in left.stdout and "c" * 32 not in left.stdout
