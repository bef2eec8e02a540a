"""`cti-journal demo`: the whole pipeline on this machine, as separate processes.

simulate (a fake CTI server) → gateway → lookup ×N → writer ×M → an SQLite journal file through
the SQLite ODBC driver, with a small generated contacts table. Shows progress, ends with a
summary, and exits 0 only if every entry the simulator sent is exactly one row.

It runs with one privacy rule, the most common one of works-council agreements: outgoing numbers
are stored shortened by their last three digits (after the look-up found the contact from the
full number). The work folder holds personal data (journal, logs) and is readable by its owner
only, as is every file the demo's processes create in it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pika
import pyodbc

from cti_journal.shared.errors import ConfigError
from cti_journal.shared.loader import load_settings
from cti_journal.shared.privacy import shorten
from cti_journal.shared.topology import Topology

SQLITE_DRIVER = "SQLite3"
SHORTENED_DIGITS = 3  # the demo's privacy rule: outgoing numbers shortened by 3 digits
_FIRST = ("Anna", "Bernd", "Claudia", "Dieter", "Eva", "Frank", "Gisela", "Hans", "Ines", "Jörg")
_LAST = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker")
_COMPANY = (
    "Bäckerei Huber", "Autohaus Süd GmbH", "Kanzlei Roth & Partner", "Elektro Maier KG",
    "Praxis Dr. Lang", "Spedition Nord AG", "IT-Service Brandt", "Hotel Alpenblick",
)  # fmt: skip
_AREAS = ("89", "30", "40", "221", "69", "711", "911", "8151")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def contact_rows(count: int, seed: int) -> tuple[list[tuple[int, str, str, str, str]], list[str]]:
    """`count` contacts (id, name, company, phone, mobile) with numbers typed the ways people type
    them, and the numbers themselves (no number twice). The benchmark fills its table with these
    too."""
    rng = random.Random(seed)
    numbers: list[str] = []
    rows: list[tuple[int, str, str, str, str]] = []
    used: set[str] = set()
    for i in range(1, count + 1):
        area = rng.choice(_AREAS)
        local = str(rng.randrange(200000, 9999999))
        if area + local in used:
            continue
        used.add(area + local)
        form = rng.randrange(4)
        phone = (f"0{area} {local}", f"+49 (0){area} {local}", f"0{area}/{local}",
                 f"(0{area}) {local}")[form]  # fmt: skip
        mobile = f"017{rng.randrange(10)} {rng.randrange(1000000, 9999999)}"
        if mobile.replace(" ", "") in used:
            mobile = ""
        used.add(mobile.replace(" ", ""))
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        rows.append((i, name, rng.choice(_COMPANY), phone, mobile))
        numbers.append(phone)
        if mobile:
            numbers.append(mobile)
    return rows, numbers


def make_contacts(db: Path, count: int, seed: int) -> list[str]:
    """A contacts table in SQLite from `contact_rows`; returns the numbers."""
    rows, numbers = contact_rows(count, seed)
    conn = pyodbc.connect(f"Driver={SQLITE_DRIVER};Database={db};", autocommit=False)
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name VARCHAR(100), company VARCHAR(100),"
        " phone VARCHAR(60), mobile VARCHAR(60))"
    )
    cur.executemany("INSERT INTO contacts VALUES (?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    return numbers


def write_config(path: Path, work: Path, args: argparse.Namespace, cti_port: int) -> str:
    prefix = f"cti-journal-demo-{os.getpid()}"
    contacts_dsn = f"Driver={SQLITE_DRIVER};Database={work / 'contacts.db'};"
    journal_dsn = f"Driver={SQLITE_DRIVER};Database={work / 'journal.db'};"
    path.write_text(
        f"""# Written by `cti-journal demo`; see deploy/cti-journal.example.toml for every setting.
[broker]
urls = ["{args.amqp}"]
prefix = "{prefix}"

[gateway]
source = "tcp"
host = "127.0.0.1"
port = {cti_port}
timezone = "Europe/Berlin"
metrics_port = 0

[lookup]
area_code = "89"
metrics_port = 0

[[lookup.sources]]
name = "crm"
dsn = "{contacts_dsn}"
table = "contacts"
id_column = "id"
name_column = "name"
company_column = "company"
phone_columns = ["phone", "mobile"]

[writer]
dsn = "{journal_dsn}"
table = "journal"
create_table = true
batch_size = 500
batch_ms = 100
metrics_port = 0

# The demo's privacy rule (docs/privacy.md): outgoing numbers are stored shortened.
[[privacy.rules]]
name = "outgoing shortened"
direction = "out"
action = "shorten"
digits = {SHORTENED_DIGITS}
""",
        encoding="utf-8",
    )
    return prefix


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def _spawn(name: str, argv: list[str], work: Path) -> _Proc:
    log = work / f"{name}.log"
    cmd = [sys.executable, "-m", "cti_journal.cli", *argv]
    with open(log, "wb") as fh:
        # In the work folder: the gateway's default spool (./var) belongs to this demo run.
        popen = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=work)
    return _Proc(name, popen, log)


def _count(journal: Path) -> tuple[int, int]:
    try:
        conn = pyodbc.connect(f"Driver={SQLITE_DRIVER};Database={journal};", autocommit=True)
    except pyodbc.Error:
        return 0, 0
    try:
        row = (
            conn.cursor()
            .execute('SELECT COUNT(*), COUNT("Journal_DatensatzID") FROM journal')
            .fetchone()
        )
        return int(row[0]), int(row[1])
    except pyodbc.Error:
        return 0, 0
    finally:
        conn.close()


def _key(values: dict[str, Any]) -> tuple[Any, ...]:
    """What the journal must hold for a sent entry: its values, the number shortened when the
    call was outgoing (the demo's privacy rule)."""
    if values.get("in_out") == "o":
        values = {**values, "rufnummer": shorten(values.get("rufnummer") or "", SHORTENED_DIGITS)}
    return tuple(
        None if values.get(k) == "" else values.get(k)
        for k in ("in_out", "zeitpunkt", "verb_zustand", "rufnummer", "lokale_rufnummer",
                  "rufdauer_ms", "verbdauer_sec", "gebuehren")
    )  # fmt: skip


_COMPARED = (
    "Journal_In_Out", "Journal_Zeitpunkt", "Journal_VerbZustand", "Journal_Rufnummer",
    "Journal_LokaleRufnummer", "Journal_Rufdauer_ms", "Journal_VerbDauer_sec", "Journal_Gebühren",
)  # fmt: skip


def compare(expected_path: Path, journal: Path) -> tuple[int, int, int]:
    """(expected, missing, extra) comparing what was sent with the rows, as multisets."""
    expected = Counter(
        _key(orjson.loads(line)) for line in expected_path.read_bytes().splitlines() if line
    )
    conn = pyodbc.connect(f"Driver={SQLITE_DRIVER};Database={journal};", autocommit=True)
    columns = ", ".join(f'"{c}"' for c in _COMPARED)
    rows = conn.cursor().execute(f"SELECT {columns} FROM journal").fetchall()
    conn.close()
    got = Counter(tuple(v if v != "" else None for v in row) for row in rows)
    missing = sum((expected - got).values())
    extra = sum((got - expected).values())
    return sum(expected.values()), missing, extra


def _shortened(journal: Path) -> tuple[int, int, str]:
    """(outgoing rows, of them with a shortened number, one such number) for the summary."""
    conn = pyodbc.connect(f"Driver={SQLITE_DRIVER};Database={journal};", autocommit=True)
    try:
        cursor = conn.cursor()
        outgoing, cut = cursor.execute(
            """SELECT COUNT(*), SUM(CASE WHEN "Journal_Rufnummer" LIKE '%x' THEN 1 ELSE 0 END)
               FROM journal WHERE "Journal_In_Out" = 'o'"""
        ).fetchone()
        row = cursor.execute(
            """SELECT "Journal_Rufnummer" FROM journal WHERE "Journal_Rufnummer" LIKE '%xxx'
               AND "Journal_Name" IS NOT NULL LIMIT 1"""
        ).fetchone()
    finally:
        conn.close()
    return int(outgoing or 0), int(cut or 0), str(row[0]) if row else ""


def _dead_count(url: str, topology: Topology) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        frame = conn.channel().queue_declare(topology.queue("dead"), passive=True)
        return int(frame.method.message_count)
    finally:
        conn.close()


def _delete_queues(url: str, topology: Topology) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        for spec in topology.queues():
            channel.queue_delete(spec.name)
        channel.exchange_delete(topology.exchange)
    finally:
        conn.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=2000, help="entries to send (2000)")
    parser.add_argument("--rate", type=float, default=0, help="entries/s (0 = as fast as possible)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    parser.add_argument("--lookups", type=int, default=2, help="lookup workers (2)")
    parser.add_argument("--writers", type=int, default=1, help="writer workers (1)")
    parser.add_argument("--contacts", type=int, default=300, help="generated contacts (300)")
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"), help="(var/demo)")
    parser.add_argument(
        "--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2F", help="RabbitMQ URL"
    )
    parser.add_argument("--timeout", type=float, default=120, help="give up after (120 s)")
    parser.add_argument("--keep", action="store_true", help="keep the demo's queues")
    parser.add_argument(
        "--force",
        action="store_true",
        help="empty --workdir even if it is a non-empty folder the demo did not create",
    )


MARKER = ".cti-journal-demo"  # a folder holding this file was made by the demo: safe to empty


def prepare_workdir(work: Path, *, force: bool) -> None:
    """Empties the work folder for a new run — but only a folder the demo made (it holds the
    marker) or an empty one, unless --force: `--workdir ~` must never wipe a home folder."""
    if work.exists():
        if not work.is_dir():
            raise ConfigError("demo --workdir", f"{work} exists and is not a folder")
        if any(work.iterdir()) and not (work / MARKER).is_file() and not force:
            raise ConfigError(
                "demo --workdir",
                f"{work} is not empty and was not made by the demo; choose another folder"
                " or add --force to empty it",
            )
        shutil.rmtree(work)
    work.mkdir(parents=True, mode=0o700)
    (work / MARKER).write_text("made by cti-journal demo; emptied by the next run\n")


def run(args: argparse.Namespace) -> int:
    work: Path = args.workdir.resolve()
    # The journal, the logs and the config are personal data or secrets: every file the demo
    # and its processes (which inherit the umask) make in the 0700 folder is owner-only, too.
    os.umask(0o077)
    prepare_workdir(work, force=args.force)
    numbers = make_contacts(work / "contacts.db", args.contacts, args.seed)
    (work / "contacts.txt").write_text("\n".join(numbers) + "\n", encoding="utf-8")
    cti_port = _free_port()
    config = work / "demo.toml"
    write_config(config, work, args, cti_port)
    topology = Topology.from_settings(load_settings(config).broker)  # as the processes see it
    journal = work / "journal.db"
    print(f"demo: {args.count} entries, {args.lookups} lookup + {args.writers} writer workers")
    print(f"demo: work folder {work} (logs, config, journal.db)")
    procs = [_spawn("writer-1", ["writer", "-c", str(config)], work)]
    time.sleep(1.0)  # the first writer creates the journal table; let it finish
    procs += [_spawn(f"writer-{i + 1}", ["writer", "-c", str(config)], work)
              for i in range(1, args.writers)]  # fmt: skip
    procs += [_spawn(f"lookup-{i + 1}", ["lookup", "-c", str(config)], work)
              for i in range(args.lookups)]  # fmt: skip
    procs.append(_spawn("gateway", ["gateway", "-c", str(config)], work))
    sim = _spawn("simulate", [
        "simulate", "--listen", f"127.0.0.1:{cti_port}", "--count", str(args.count),
        "--rate", str(args.rate), "--seed", str(args.seed),
        "--contacts", str(work / "contacts.txt"),
        "--start", "2026-11-25 08:00:00", "--expect-out", str(work / "expected.jsonl"),
    ], work)  # fmt: skip
    try:
        return _watch(args, work, journal, topology, procs, sim)
    finally:
        for proc in [sim, *procs]:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in [sim, *procs]:
            try:
                proc.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
        if not args.keep:
            _delete_queues(args.amqp, topology)


def _watch(
    args: argparse.Namespace, work: Path, journal: Path, topology: Topology,
    procs: list[_Proc], sim: _Proc,
) -> int:  # fmt: skip
    started = time.monotonic()
    first_row = 0.0
    written = enriched = 0
    while time.monotonic() - started < args.timeout:
        written, enriched = _count(journal)
        if written and not first_row:
            first_row = time.monotonic()
        print(f"\rdemo: {written}/{args.count} rows written, {enriched} enriched ", end="")
        dead = [p for p in procs if p.popen.poll() is not None]
        if dead:
            print(f"\ndemo: {dead[0].name} exited with {dead[0].popen.returncode}:")
            print(dead[0].log.read_text(errors="replace")[-3000:])
            return 1
        if sim.popen.poll() not in (None, 0):
            print(f"\ndemo: the simulator failed:\n{sim.log.read_text(errors='replace')[-2000:]}")
            return 1
        if written >= args.count and sim.popen.poll() is not None:
            break
        time.sleep(0.5)
    print()
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # let a late duplicate, if any, show itself
    expected, missing, extra = compare(work / "expected.jsonl", journal)
    dead_letters = _dead_count(args.amqp, topology)
    written, enriched = _count(journal)
    rate = written / elapsed if elapsed else 0.0
    print("demo: summary")
    print(f"  sent by the simulator   {expected}")
    print(f"  rows written            {written}")
    print(f"  enriched (contact hit)  {enriched}")
    print(f"  dead-lettered           {dead_letters}")
    print(f"  missing / duplicated    {missing} / {extra}")
    outgoing, cut, example = _shortened(journal)
    print(f"  privacy rule            outgoing numbers stored shortened: {cut} of {outgoing}"
          + (f" (e.g. {example}, its contact still found)" if example else ""))  # fmt: skip
    print(f"  wall time               {elapsed:.1f} s ({rate:.0f} entries/s incl. start-up)")
    ok = expected == args.count and missing == 0 and extra == 0 and dead_letters == 0
    print("demo: OK, every entry arrived exactly once" if ok else "demo: FAILED")
    if not ok:
        for proc in procs:
            print(f"--- {proc.name} log tail:")
            print(proc.log.read_text(errors="replace")[-1500:])
    return 0 if ok else 1
