"""A bundle (several entries in one message) through the real writer: a rejected entry is
dead-lettered alone, the others commit, and a redelivered bundle adds nothing."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pika
import pyodbc

from cti_journal.shared.message import JournalEntry, encode_bundle
from tests.support.harness import count_rows, free_port, http_get, wait_for


def entry(i: int, ring_ms: int) -> JournalEntry:
    return JournalEntry(
        event_id=f"{i:032x}", source="cti", received_at=0.0, in_out="i",
        zeitpunkt="2026-11-25 10:00:00", utc="2026-11-25T09:00:00Z",
        verb_zustand="CONN", rufnummer=f"089{i:07d}", rufdauer_ms=ring_ms,
    )  # fmt: skip


def test_poison_entry_inside_a_bundle(pipeline_factory, sqlite_dsn):
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute(
        'CREATE TABLE journal ("Journal_Rufnummer" VARCHAR(30), '
        '"Journal_Rufdauer_ms" INTEGER CHECK ("Journal_Rufdauer_ms" < 100000))'
    )
    conn.close()
    pipeline = pipeline_factory({"writer": {"dsn": sqlite_dsn, "table": "journal"}})
    pipeline.start("writer", "writer")
    wait_for(lambda: "connected to broker" in pipeline.log("writer"), 30, "the writer")
    bundle = [entry(i, 999_999 if i == 42 else i) for i in range(100)]
    body = encode_bundle([e.encode() for e in bundle])
    for copies in (1, 2):  # the second copy, after the first is done, stands for a redelivery
        with pipeline.channel() as ch:
            ch.basic_publish(pipeline.topology.exchange, "write", body,
                             pika.BasicProperties(delivery_mode=2))  # fmt: skip
        wait_for(lambda n=copies: pipeline.queue_depth("dead") >= n, 30, f"dead letter {copies}")
        wait_for(lambda: pipeline.queue_depth("write") == 0, 30, "the write queue to drain")
        assert count_rows(sqlite_dsn, "journal") == 99
    pipeline.stop()
    assert count_rows(sqlite_dsn, "journal") == 99  # the redelivery added no row
    dead = pipeline.dead_letters()
    # Each delivery of the bundle dead-letters its poison entry alone (rows are never doubled;
    # a dead letter can be, when a bundle is redelivered).
    assert len(dead) == 2
    for headers, dead_body in dead:
        assert orjson.loads(dead_body)["event_id"] == bundle[42].event_id
        assert "CHECK constraint" in str(headers["x-cti-reason"])


def test_a_4301_digit_record_id_for_an_integer_column_is_dead_lettered_alone(
    pipeline_factory, sqlite_dsn
):
    """Issue 20 finding 7: int() raised ValueError (not a PermanentError) on 4,301 digits, and
    the 8 valid calls of the same batch were dead-lettered with it."""
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute(
        'CREATE TABLE journal ("Journal_Rufnummer" VARCHAR(30), "Journal_DatensatzID" INTEGER)'
    )
    conn.close()
    pipeline = pipeline_factory({"writer": {"dsn": sqlite_dsn, "table": "journal"}})
    pipeline.start("writer", "writer")
    wait_for(lambda: "connected to broker" in pipeline.log("writer"), 30, "the writer")
    calls = [entry(i, i) for i in range(9)]
    calls = [
        JournalEntry.decode(
            orjson.dumps(
                {**orjson.loads(c.encode()), "datensatz_id": "7" * 4301 if i == 4 else str(i)}
            )
        )
        for i, c in enumerate(calls)
    ]
    with pipeline.channel() as ch:
        for call in calls:  # nine messages: one batch of the writer
            ch.basic_publish(pipeline.topology.exchange, "write", call.encode(),
                             pika.BasicProperties(delivery_mode=2))  # fmt: skip
    wait_for(lambda: pipeline.queue_depth("dead") >= 1, 30, "the poison entry's dead letter")
    wait_for(lambda: count_rows(sqlite_dsn, "journal") >= 8, 30, "the 8 valid calls")
    assert count_rows(sqlite_dsn, "journal") == 8
    dead = pipeline.dead_letters()
    assert len(dead) == 1
    assert orjson.loads(dead[0][1])["event_id"] == calls[4].event_id
    assert "Journal_DatensatzID" in str(dead[0][0]["x-cti-reason"])
    pipeline.assert_running()


def test_made_up_gateway_names_cost_a_bounded_number_of_series(pipeline_factory, sqlite_dsn):
    """Issue 20 finding 8: 10,000 distinct `gateway` values were 10,000 metric series."""
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute('CREATE TABLE journal ("Journal_Rufnummer" VARCHAR(30))')
    conn.close()
    port = free_port()
    pipeline = pipeline_factory(
        {
            "writer": {
                "dsn": sqlite_dsn,
                "table": "journal",
                "metrics_port": port,
                "max_gateway_series": 4,
            }
        }
    )
    pipeline.start("writer", "writer")
    wait_for(lambda: "connected to broker" in pipeline.log("writer"), 30, "the writer")
    calls = [replace(entry(i, i), gateway=f"made-up-{i}") for i in range(150)]
    with pipeline.channel() as ch:
        ch.basic_publish(pipeline.topology.exchange, "write",
                         encode_bundle([c.encode() for c in calls]),
                         pika.BasicProperties(delivery_mode=2))  # fmt: skip
    wait_for(lambda: count_rows(sqlite_dsn, "journal") >= 150, 30, "150 rows")
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    series = [line for line in text.splitlines()
              if line.startswith("cti_journal_rows_written_by_gateway_total{")]  # fmt: skip
    assert len(series) == 5, series  # 4 names met first, and "other"
    assert any('gateway="other"' in line and line.endswith(" 146.0") for line in series)


def test_a_number_the_reader_chokes_on_costs_its_entry_not_the_bundle(pipeline_factory):
    """Issue 20 finding 1: a Rufnummer `0²²²²²²²` made the look-up dead-letter the whole bundle
    (10 valid calls, 0 rows). Now the entry goes its own way (or, once the reader reads it,
    on as a miss) and the other nine go on to the writer."""
    pipeline = pipeline_factory({"lookup": {"area_code": "89"}})
    pipeline.start("lookup", "lookup")
    wait_for(lambda: "connected to broker" in pipeline.log("lookup"), 30, "the look-up")
    calls = [entry(i, i) for i in range(10)]
    calls[3] = replace(calls[3], rufnummer="0²²²²²²²")
    with pipeline.channel() as ch:
        ch.basic_publish(pipeline.topology.exchange, "lookup",
                         encode_bundle([c.encode() for c in calls]),
                         pika.BasicProperties(delivery_mode=2))  # fmt: skip
    wait_for(lambda: pipeline.entry_count("write") >= 9, 30, "the nine valid calls")
    wait_for(lambda: pipeline.entry_count("write") + pipeline.queue_depth("dead") >= 10, 30,
             "the tenth, forwarded or dead-lettered alone")  # fmt: skip
    written = {e["event_id"] for e in pipeline.entries("write")}
    assert {c.event_id for i, c in enumerate(calls) if i != 3} <= written
    dead = pipeline.dead_letters()
    assert len(written) + len(dead) == 10
    for _headers, body in dead:
        assert orjson.loads(body)["event_id"] == calls[3].event_id  # one entry, not the bundle
    pipeline.assert_running()
