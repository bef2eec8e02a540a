"""Bytes per entry of the writer's ledger, dated and compact (16-byte ids + call day, keyed by
day and id or by id alone) against the old layout (32 hex characters + commit timestamp), on
PostgreSQL, MariaDB and SQLite.

    .venv/bin/python -m bench.ledger_size --entries 200000

Ids are written as the writer writes them: random 128-bit values (SHA-256 prefixes) in batches,
so the B-trees fill as they do in service (random inserts leave pages partly empty), and the
call days spread over a year. The sizes are what the database reports for table + indexes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from datetime import date, timedelta

import pyodbc

from bench.common import DATABASES, Database, database, discard, sqlite_file
from cti_journal.writer.dialect import Dialect
from cti_journal.writer.ledger import Ledger

_BATCH = 500


def _fill(db: Database, ledger: Ledger, entries: int) -> None:
    conn = db.connect()
    try:
        ledger.ensure(conn)
        cursor = conn.cursor()
        first = date(2026, 1, 1)
        for start in range(0, entries, _BATCH):
            rows = []
            for i in range(start, min(entries, start + _BATCH)):
                event_id = hashlib.sha256(b"%d" % i).hexdigest()[:32]
                rows.append((event_id, first + timedelta(days=i * 365 // entries)))
            ledger.record(cursor, rows)
            conn.commit()
    finally:
        conn.close()


def _size(db: Database, table: str) -> int:
    conn = pyodbc.connect(db.dsn, autocommit=True)
    try:
        cursor = conn.cursor()
        if db.dialect is Dialect.POSTGRESQL:
            cursor.execute(f"VACUUM ANALYZE {table}")
            return int(cursor.execute("SELECT pg_total_relation_size(?)", table).fetchone()[0])
        if db.dialect is Dialect.MARIADB:
            cursor.execute(f"ANALYZE TABLE {table}").fetchall()
            cursor.execute(
                "SELECT data_length + index_length FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = ?",
                table,
            )
            return int(cursor.fetchone()[0])
        path = sqlite_file(db)
        assert path is not None
        return path.stat().st_size
    finally:
        conn.close()


def measure(name: str, entries: int) -> list[tuple[str, int, float]]:
    out = []
    for layout in ("dated", "compact", "legacy"):
        tag = f"ledger_{layout}_{uuid.uuid4().hex[:8]}"
        db = database(name, tag)
        ledger = Ledger(tag, db.dialect)
        ledger.layout = layout
        try:
            _fill(db, ledger, entries)
            size = _size(db, tag)
        finally:
            discard(db, tag)
        out.append((layout, size, size / entries))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--db", choices=(*DATABASES, "all"), default="all")
    args = parser.parse_args(argv)
    names = DATABASES if args.db == "all" else (args.db,)
    for name in names:
        for layout, size, per_entry in measure(name, args.entries):
            print(f"{name:10} {layout:8} {args.entries:>9,} entries {size / 2**20:8.1f} MiB "
                  f"{per_entry:6.1f} bytes/entry")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
