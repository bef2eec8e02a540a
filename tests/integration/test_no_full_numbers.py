"""No full phone number outside the journal: a pipeline run that goes through every path that
writes about an entry — a look-up hit, privacy rules (one named after a number), a line the
gateway rejects, an entry the database rejects — and then greps everything it produced besides
the journal: every process log, the dead-letter listing, the CLI's output and every process's
metrics. The number must be in the journal (it went through) and nowhere else in full."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyodbc

from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.record import LineFormat
from tests.support.harness import Pipeline, fetch_rows, free_port, wait_for

NUMBER = "089 7654321"  # the test number, as the contact record has it
# Its significant digits 8976543, in any notation and with separators (089 765-4321,
# +49 89 7654321, 0049897654321, 00897654321 with the outside prefix). A masked number keeps only
# its last 3 digits.
FULL = re.compile(r"8\D{0,3}9\D{0,3}7\D{0,3}6\D{0,3}5\D{0,3}4\D{0,3}3")
TABLE_SQL = (
    'CREATE TABLE journal ("Journal_In_Out" VARCHAR(1), "Journal_Zeitpunkt" VARCHAR(20), '
    '"Journal_VerbZustand" VARCHAR(4), "Journal_Rufnummer" VARCHAR(30), "Journal_Name" '
    'VARCHAR(100), "Journal_LokaleRufnummer" VARCHAR(30), "Journal_DatensatzID" INTEGER, '
    '"Journal_DatensatzTabelle" VARCHAR(30))'
)


def _line(clock: str, **values: Any) -> bytes:
    base = {
        "in_out": "i",
        "zeitpunkt": f"2026-11-25 {clock}",
        "verb_zustand": "CONN",
        "lokale_rufnummer": "200",
    }
    return LineFormat().format({**base, **values})


def test_no_full_number_in_logs_dead_letter_listings_or_metrics(
    sqlite_dsn: str, pipeline_factory: Any, tmp_path: Path
) -> None:
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    conn.cursor().execute(TABLE_SQL)
    conn.cursor().execute("CREATE TABLE crm (id INTEGER PRIMARY KEY, name TEXT, phone TEXT)")
    conn.cursor().execute("INSERT INTO crm VALUES (1, 'Anna Kunde', ?)", NUMBER)
    conn.close()
    ports = {name: free_port() for name in ("gateway", "lookup", "writer")}
    listen = free_port()
    settings: dict[str, Any] = {
        "gateway": {
            "source": "listen",
            "listen_port": listen,
            "timezone": "Europe/Berlin",
            "metrics_port": ports["gateway"],
        },
        "lookup": {
            "area_code": "89",
            "metrics_port": ports["lookup"],
            "sources": [
                {
                    "name": "crm",
                    "dsn": sqlite_dsn,
                    "table": "crm",
                    "name_column": "name",
                    "phone_columns": ["phone"],
                }
            ],
        },
        "writer": {
            "dsn": sqlite_dsn,
            "table": "journal",
            "batch_ms": 50,
            "metrics_port": ports["writer"],
        },
        "privacy": {
            "rules": [
                {"name": "line 089 7654321 busy", "states": ["BUSY"], "action": "drop"},
                {"name": "outgoing", "direction": "out", "action": "shorten"},
            ]
        },
    }
    lines = [
        _line("08:00:01", rufnummer="0897654321"),  # a hit: journalled in full
        _line("08:00:02", rufnummer="+49 89 7654321", verb_zustand="BUSY"),  # dropped by name
        _line("08:00:03", rufnummer="00897654321", in_out="o", amtsholung="0"),  # shortened
        b"i;2026-11-25 08:00:04;CONN;0897654321;too few fields\n",  # the gateway rejects it
        b"i;2026-11-25 08:00:05;TALK;089 765-4321;;;200;;;;;;;;\n",  # a bad state
        # pre-enriched, with a record id the integer column refuses: a write-stage dead letter
        _line("08:00:06", rufnummer="0897654321", name="X", datensatz_id="+49 89 7654321"),
    ]
    pipeline: Pipeline = pipeline_factory(settings)
    pipeline.start("writer", "writer")
    pipeline.start("lookup", "lookup")
    pipeline.start("gateway", "gateway")
    wait_for(lambda: _connect_and_send(listen, b"".join(lines)), 30, "the gateway listening")
    wait_for(
        lambda: pipeline.queue_depth("dead") == 3 and len(_rows(sqlite_dsn)) == 2,
        60,
        "2 rows and 3 dead letters",
    )
    time.sleep(0.5)
    # Dead letters hold the whole entry: each carries the retention limit as its TTL.
    with pipeline.channel() as channel:
        method, props, _body = channel.basic_get(pipeline.topology.queue("dead"), auto_ack=False)
        assert props.expiration == str(30 * 86_400_000)  # broker.dead_letter_days = 30
        channel.basic_nack(method.delivery_tag, requeue=True)
    # The number went through: in full where no rule applies, shortened where one did.
    assert sorted(r[0] for r in _rows(sqlite_dsn)) == ["00897654xxx", "0897654321"]

    produced: dict[str, str] = {}
    for name, port in ports.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            produced[f"{name} /metrics"] = response.read().decode()
    assert 'rule="line *** ****321 busy"' in produced["lookup /metrics"]
    dlq = _cli(pipeline.config, "dlq", "list")
    assert "gateway" in dlq and "write" in dlq
    produced["dlq list"] = dlq
    ids = [line.split()[0] for line in dlq.splitlines()[1:4]]
    shown = _cli(pipeline.config, "dlq", "show", *ids)
    assert shown.count("dead letter ") == 3 and shown.count("body:") == 3, shown
    produced["dlq show"] = shown
    pipeline.stop()  # everything the processes log up to their end
    for log in sorted(pipeline.workdir.glob("*.log")):
        produced[log.name] = log.read_text(errors="replace")
    assert "rejected a line" in "".join(produced.values())  # the paths were taken
    assert "dead-lettering" in "".join(produced.values())

    leaks = [
        f"{where}: {mask_numbers_in(text)[:200]}"
        for where, output in produced.items()
        for text in output.splitlines()
        if FULL.search(text)
    ]
    assert not leaks, "full numbers outside the journal (shown masked):\n" + "\n".join(leaks)


def _connect_and_send(port: int, data: bytes) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(data)
    except OSError:
        return False
    return True


def _rows(dsn: str) -> list[tuple[Any, ...]]:
    return fetch_rows(dsn, 'SELECT "Journal_Rufnummer" FROM journal')


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cti_journal.cli", args[0], "-c", str(config), *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr
