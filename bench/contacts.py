"""A warm contact index: a contacts table in the journal's own database, filled quickly.

Numbers are typed the ways people type them (as `cti-journal demo` does); the simulator is given
them so that a share of the calls are to or from a contact and the look-up has real work.
"""

from __future__ import annotations

from bench.common import Database, chunks, drop_tables
from cti_journal.cli.demo import contact_rows

ROWS_PER_STATEMENT = 100  # 500 parameters: under SQLite's old limit of 999


def make_contacts(db: Database, table: str, count: int, seed: int = 5) -> list[str]:
    """Create and fill `table` with `count` contacts; returns their phone numbers."""
    rows, numbers = contact_rows(count, seed)
    drop_tables(db, table)
    conn = db.connect()
    try:
        cursor = conn.cursor()
        quoted = db.quote(table)
        cursor.execute(
            f"CREATE TABLE {quoted} (id INTEGER PRIMARY KEY, name VARCHAR(100),"
            " company VARCHAR(100), phone VARCHAR(60), mobile VARCHAR(60))"
        )
        one = "(?,?,?,?,?)"
        for part in chunks(rows, 5000):
            for chunk in chunks(part, ROWS_PER_STATEMENT):
                sql = f"INSERT INTO {quoted} VALUES " + ",".join([one] * len(chunk))
                cursor.execute(sql, [v for row in chunk for v in row])
            conn.commit()
    finally:
        conn.close()
    return numbers
