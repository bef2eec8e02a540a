"""A warm contact index: a contacts table in the journal's own database, filled quickly.

Numbers are typed the ways people type them (as `cti-journal demo` does); the simulator is given
them so that a share of the calls are to or from a contact and the look-up has real work.
"""

from __future__ import annotations

import random

from bench.common import Database, chunks, drop_tables

_FIRST = ("Anna", "Bernd", "Claudia", "Dieter", "Eva", "Frank", "Gisela", "Hans", "Ines", "Jörg")
_LAST = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker")
_COMPANY = (
    "Bäckerei Huber", "Autohaus Süd GmbH", "Kanzlei Roth & Partner", "Elektro Maier KG",
    "Praxis Dr. Lang", "Spedition Nord AG", "IT-Service Brandt", "Hotel Alpenblick",
)  # fmt: skip
_AREAS = ("89", "30", "40", "221", "69", "711", "911", "8151")
ROWS_PER_STATEMENT = 100  # 500 parameters: under SQLite's old limit of 999


def _rows(count: int, seed: int) -> tuple[list[tuple[int, str, str, str, str]], list[str]]:
    rng = random.Random(seed)
    used: set[str] = set()
    rows: list[tuple[int, str, str, str, str]] = []
    numbers: list[str] = []
    while len(rows) < count:
        area, local = rng.choice(_AREAS), str(rng.randrange(200000, 9999999))
        mobile = f"017{rng.randrange(10)} {rng.randrange(1000000, 9999999)}"
        if area + local in used or mobile.replace(" ", "") in used:
            continue
        used.update((area + local, mobile.replace(" ", "")))
        phone = (f"0{area} {local}", f"+49 (0){area} {local}", f"0{area}/{local}",
                 f"(0{area}) {local}")[rng.randrange(4)]  # fmt: skip
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        rows.append((len(rows) + 1, name, rng.choice(_COMPANY), phone, mobile))
        numbers += [phone, mobile]
    return rows, numbers


def make_contacts(db: Database, table: str, count: int, seed: int = 5) -> list[str]:
    """Create and fill `table` with `count` contacts; returns their phone numbers."""
    rows, numbers = _rows(count, seed)
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
