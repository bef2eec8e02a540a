"""Rolling upgrades: while hosts are upgraded one at a time, a lookup or writer of this version
meets entries written by the previous version (fewer optional fields) and by the next one (fields
it does not know). Both go through every stage into rows; a message of a major version this
worker cannot read is dead-lettered with a reason that says to upgrade the worker."""

from __future__ import annotations

from typing import Any

import orjson
import pika
import pyodbc

from tests.support.harness import count_rows, fetch_rows, wait_for

REQUIRED_ONLY = {  # the oldest shape a sender may use: the required fields and `v`
    "v": 1,
    "source": "cti",
    "received_at": 0.0,
    "in_out": "i",
    "zeitpunkt": "2026-11-25 10:00:00",
    "utc": "2026-11-25T09:00:00Z",
    "verb_zustand": "CONN",
}
NEXT_VERSION_FIELDS = {  # what a newer gateway might add: unknown here, of any JSON type
    "caller_region": "DE",
    "privacy": {"rule": 2, "action": "shorten"},
    "hops": ["gw-a", "gw-b"],
    "score": 0.5,
}


def body(event_id: str, number: str, **extra: Any) -> bytes:
    return orjson.dumps({**REQUIRED_ONLY, "event_id": event_id, "rufnummer": number, **extra})


def test_old_and_new_messages_pass_every_stage(pipeline_factory, sqlite_dsn):
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute(
        'CREATE TABLE journal ("ID" VARCHAR(40), "Journal_Rufnummer" VARCHAR(30), '
        '"Journal_Name" VARCHAR(100))'
    )
    conn.cursor().execute("CREATE TABLE contacts (id INTEGER, name VARCHAR(50), phone VARCHAR(30))")
    conn.cursor().execute("INSERT INTO contacts VALUES (7, 'Erika Muster', '089 1234567')")
    conn.close()
    pipeline = pipeline_factory(
        {
            "lookup": {
                "area_code": "89",
                "sources": [
                    {
                        "name": "crm",
                        "dsn": sqlite_dsn,
                        "table": "contacts",
                        "id_column": "id",
                        "name_column": "name",
                        "phone_columns": ["phone"],
                    }
                ],
            },
            "writer": {
                "dsn": sqlite_dsn,
                "table": "journal",
                "columns": {
                    "ID": "ID",
                    "Journal_Rufnummer": "Journal_Rufnummer",
                    "Journal_Name": "Journal_Name",
                },
            },
        }
    )
    pipeline.start("writer", "writer")
    pipeline.start("lookup", "lookup")
    for name in ("writer", "lookup"):
        wait_for(lambda n=name: "connected to broker" in pipeline.log(n), 30, name)
    messages = [
        ("lookup", body("a" * 32, "0891234567")),  # old shape, through the lookup
        ("lookup", body("b" * 32, "0891234567", **NEXT_VERSION_FIELDS)),  # new shape
        ("write", body("c" * 32, "0301234567")),  # old shape, straight to the writer
        ("write", body("d" * 32, "0301234567", **NEXT_VERSION_FIELDS)),
        ("lookup", body("e" * 32, "0891234567", v=2)),  # a major version not readable here
    ]
    with pipeline.channel() as ch:
        ch.confirm_delivery()  # each message taken by the broker before the test waits for it
        for stage, message in messages:
            ch.basic_publish(
                pipeline.topology.exchange, stage, message, pika.BasicProperties(delivery_mode=2)
            )
    wait_for(lambda: count_rows(sqlite_dsn, "journal") == 4, 30, "four rows")
    wait_for(lambda: pipeline.queue_depth("dead") == 1, 30, "the v2 message's dead letter")
    pipeline.stop()
    rows = fetch_rows(sqlite_dsn, 'SELECT "ID", "Journal_Name" FROM journal ORDER BY "ID"')
    assert [(row[0][:1], row[1]) for row in rows] == [
        ("a", "Erika Muster"),
        ("b", "Erika Muster"),
        ("c", None),
        ("d", None),
    ]
    [(headers, dead)] = pipeline.dead_letters()
    assert orjson.loads(dead)["event_id"] == "e" * 32
    assert "newer than this worker reads" in str(headers["x-cti-reason"])
