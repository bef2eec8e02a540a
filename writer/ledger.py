"""The ledger: which event ids are already committed in this database.

It is a table of its own (`writer.ledger_table`), written in the same transaction as the journal
rows, so it works whatever columns the admin chose for the journal table. A batch redelivered
after a writer died between commit and ack, delivered to two writers after a network split, sent
by both gateways of a pair, or imported again a year later, finds its ids here and inserts
nothing twice; when two writers race, the primary key makes one transaction fail, and its retry
then finds the ids.

**It lives as long as the rows it guards.** A ledger row is deleted only together with journal
rows of the same age: `prune_older_than(cursor, cutoff)` is what a retention pass that deletes
journal rows by call time calls in the same transaction (`writer.retention_days`,
`cti-journal purge`). `writer.ledger_retention_days` > 0 prunes it on its own as well (the old
behaviour: an import of the same file after that many days adds every row again).

**Compact**, for ten years of a large call centre: the 128-bit id is stored as 16 bytes (not 32
hex characters) beside the call's day, the one thing pruning needs. SQLite gets a `WITHOUT
ROWID` table and MariaDB (InnoDB) / SQL Server a clustered primary key: the table *is* its
index. PostgreSQL has no index-organised tables, so it keeps the key in the heap and the B-tree.

**Dated** (what a new ledger gets): the primary key is (call day, id), the day first. Ids are
random, so a key of the id alone puts each batch's ids on as many pages as the batch has
entries, all over a table that outgrows the page cache: at a million entries SQLite spent 2.8
times the CPU per entry on it (`bench/ledger_order.py`); InnoDB and PostgreSQL, whose buffers
still held that million, measured about the same either way (0.87 and 1.05), and meet the same
cost once a ledger outgrows them. With the day first, a batch lands on the few pages of its
days. The day is the date of the entry's `Zeitpunkt` as the CTI server wrote it (its UTC day if
that is not a date): the gateway hashes the `Zeitpunkt` into every id it makes, so the same id
always comes with the same day — whatever time zone each gateway of a pair, or an import years
later, was set to. An id a sender gave itself (JSON `id`) is one row per day it is sent for.

Older layouts are found and used as they are: `compact` (the id alone is the key, with the
call's UTC day) and `legacy` (`event_id VARCHAR(40)`, `committed_at`: ids as hex text, ages as
commit times).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import orjson
import pyodbc

from cti_journal.writer.ddl import create_if_missing
from cti_journal.writer.dialect import Dialect, quote_identifier

_CHUNK = 500  # ids per IN (...) query: well under every driver's parameter limit
_INSERT_CHUNK = 100
_CHUNK_DAYS = 50  # days per look-up query of a dated ledger
# Retention cuts by the rows' local Zeitpunkt, a compact ledger's day is UTC, a dated one's local:
# a day of margin keeps the guard at least as long as the row whatever the zone.
_MARGIN = timedelta(days=1)

# `call_date`, not the compact layout's `call_day`: a writer of the previous version, which takes
# any table with `call_day` for compact, would insert (UTC day, id) here and miss the keys a
# local day made; with `call_date` it finds no layout it knows and fails loudly instead.
_DATED_DDL = {
    Dialect.POSTGRESQL: "CREATE TABLE {t} (call_date DATE NOT NULL, event_id BYTEA NOT NULL, "
    "PRIMARY KEY (call_date, event_id))",
    Dialect.MARIADB: "CREATE TABLE {t} (call_date DATE NOT NULL, event_id BINARY(16) NOT NULL, "
    "PRIMARY KEY (call_date, event_id)) ENGINE=InnoDB",
    Dialect.SQLITE: "CREATE TABLE {t} (call_date DATE NOT NULL, event_id BLOB NOT NULL, "
    "PRIMARY KEY (call_date, event_id)) WITHOUT ROWID",
    Dialect.MSSQL: "CREATE TABLE {t} (call_date DATE NOT NULL, event_id BINARY(16) NOT NULL, "
    "PRIMARY KEY CLUSTERED (call_date, event_id))",
}
# What a ledger of the previous version has; found and used, no longer created.
_COMPACT_DDL = {
    Dialect.POSTGRESQL: "CREATE TABLE {t} (event_id BYTEA NOT NULL PRIMARY KEY, "
    "call_day DATE NOT NULL)",
    Dialect.MARIADB: "CREATE TABLE {t} (event_id BINARY(16) NOT NULL PRIMARY KEY, "
    "call_day DATE NOT NULL) ENGINE=InnoDB",
    Dialect.SQLITE: "CREATE TABLE {t} (event_id BLOB NOT NULL PRIMARY KEY, "
    "call_day DATE NOT NULL) WITHOUT ROWID",
    Dialect.MSSQL: "CREATE TABLE {t} (event_id BINARY(16) NOT NULL PRIMARY KEY CLUSTERED, "
    "call_day DATE NOT NULL)",
}
# The binary layouts' rows from one JSON parameter, `[["<32 hex digits>", "YYYY-MM-DD"], …]`
# ({d}: the day's column).
_BATCH_SQL = {
    Dialect.POSTGRESQL: "INSERT INTO {t} (event_id, {d}) SELECT decode(v->>0, 'hex'), "
    "CAST(v->>1 AS date) FROM jsonb_array_elements(CAST(convert_from(?, 'UTF8') AS jsonb)) "
    "AS r(v)",
    Dialect.MARIADB: "INSERT INTO {t} (event_id, {d}) SELECT UNHEX(j.i), j.d FROM "
    "JSON_TABLE(CONVERT(? USING utf8mb4), '$[*]' "
    "COLUMNS (i CHAR(32) PATH '$[0]', d DATE PATH '$[1]')) AS j",
    Dialect.SQLITE: "",  # literals, see record_batch
}
_LEGACY_TIMESTAMP = {
    Dialect.POSTGRESQL: "TIMESTAMP",
    Dialect.MARIADB: "DATETIME",
    Dialect.SQLITE: "TIMESTAMP",
    Dialect.MSSQL: "DATETIME2",
    Dialect.ACCESS: "DATETIME",
}


def id_bytes(event_id: str) -> bytes:
    """The 16 bytes stored for an event id: the id itself when it is 32 hex digits (what the
    gateway makes), else the first 16 bytes of its SHA-256 (ids made by other senders)."""
    if len(event_id) == 32:
        try:
            return bytes.fromhex(event_id)
        except ValueError:
            pass
    return hashlib.sha256(event_id.encode()).digest()[:16]


def call_day(utc: str) -> date:
    """The UTC day of a call from the entry's `utc` (YYYY-MM-DDTHH:MM:SSZ): the `compact`
    layout's day."""
    try:
        return date.fromisoformat(utc[:10])
    except ValueError:
        return datetime.now(UTC).date()


def local_day(zeitpunkt: str, utc: str) -> date:
    """The `dated` layout's day: the date of the `Zeitpunkt` (YYYY-MM-DD HH:MM:SS), else of
    `utc`, else the last day there is (kept until pruned by hand). Never the clock: the same id
    must get the same key in every transaction that claims it."""
    for text in (zeitpunkt, utc):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            continue
    return date.max


class Ledger:
    def __init__(self, table: str, dialect: Dialect) -> None:
        self.dialect = dialect
        self.table = quote_identifier(table, dialect)
        # Access has no tested binary key here: it keeps the text layout.
        self.layout = "dated" if dialect in _DATED_DDL else "legacy"

    @property
    def compact(self) -> bool:
        """Ids as 16 bytes beside a day (`dated` or `compact`), not hex text."""
        return self.layout != "legacy"

    @property
    def day_column(self) -> str:
        return "call_date" if self.layout == "dated" else "call_day"

    def _day_value(self, day: date) -> object:
        """A day as a parameter. SQLite has no date type: a dated ledger there holds ISO text
        whichever way a row came (`record_batch` writes literals), so it is bound as text —
        the driver would store a bound date as a Julian day number with the DSN's `JDConv=1`,
        and a key of that number never meets the text one."""
        if self.dialect is Dialect.SQLITE and self.layout == "dated":
            return day.isoformat()
        return day

    def day(self, utc: str, zeitpunkt: str) -> date:
        """The day this layout keeps beside an id (the legacy layout keeps none)."""
        return local_day(zeitpunkt, utc) if self.layout == "dated" else call_day(utc)

    def create_sql(self) -> str:
        if self.layout == "dated":
            return _DATED_DDL[self.dialect].format(t=self.table)
        if self.layout == "compact":
            return _COMPACT_DDL[self.dialect].format(t=self.table)
        ts = _LEGACY_TIMESTAMP.get(self.dialect, "TIMESTAMP")
        return (
            f"CREATE TABLE {self.table} (event_id VARCHAR(40) NOT NULL PRIMARY KEY, "
            f"committed_at {ts} NOT NULL)"
        )

    def ensure(self, conn: pyodbc.Connection) -> None:
        """Create the table if missing, else find which layout it has."""

        def exists() -> bool:
            try:
                conn.cursor().execute(f"SELECT event_id FROM {self.table} WHERE 1 = 0")
            except pyodbc.Error:
                conn.rollback()
                return False
            conn.commit()
            return True

        create_if_missing(conn, exists, self.create_sql())
        self.detect(conn)

    def detect(self, conn: pyodbc.Connection) -> None:
        """Which layout the existing table has: a `call_date` column means dated, `call_day`
        compact, neither legacy."""
        cursor = conn.cursor()
        try:
            cursor.execute(f"SELECT * FROM {self.table} WHERE 1 = 0")
            columns = [d[0].lower() for d in cursor.description]
        finally:
            conn.rollback()
        if "call_date" in columns:
            self.layout = "dated"
        elif "call_day" in columns:
            self.layout = "compact"
        else:
            self.layout = "legacy"

    def _key(self, event_id: str) -> bytes | str:
        return id_bytes(event_id) if self.compact else event_id

    def existing(
        self, cursor: pyodbc.Cursor, ids: Sequence[str], day_of: Mapping[str, date] | None = None
    ) -> set[str]:
        """The ids the ledger holds. A dated ledger is keyed by (day, id): with `day_of` (each
        id's `day(…)`) it reads exactly those keys, through its primary key; without it, any
        day's (a scan of the whole table: `subject` requests, which know no days)."""
        if self.layout != "dated" or day_of is None:
            return self._existing_by_id(cursor, ids)
        by_day: dict[date, list[str]] = {}
        for event_id in ids:
            by_day.setdefault(day_of[event_id], []).append(event_id)
        days = sorted(by_day)
        found: set[str] = set()
        for first in range(0, len(days), _CHUNK_DAYS):
            group = days[first : first + _CHUNK_DAYS]
            wanted = {(d.isoformat(), id_bytes(i)): i for d in group for i in by_day[d]}
            keys = list(dict.fromkeys(key for _day, key in wanted))
            on_days = [self._day_value(d) for d in group]
            day_marks = ",".join("?" * len(group))
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                cursor.execute(
                    f"SELECT call_date, event_id FROM {self.table} WHERE call_date IN "
                    f"({day_marks}) AND event_id IN ({','.join('?' * len(chunk))})",
                    *on_days, *chunk,
                )  # fmt: skip
                for day, key in cursor.fetchall():
                    held = wanted.get((str(day)[:10], bytes(key)))
                    if held is not None:
                        found.add(held)
        return found

    def _existing_by_id(self, cursor: pyodbc.Cursor, ids: Sequence[str]) -> set[str]:
        by_key = {self._key(i): i for i in ids}
        keys = list(by_key)
        found: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor.execute(f"SELECT event_id FROM {self.table} WHERE event_id IN ({marks})", chunk)
            for row in cursor.fetchall():
                key = bytes(row[0]) if self.compact else row[0]
                if key in by_key:
                    found.add(by_key[key])
        return found

    def record(self, cursor: pyodbc.Cursor, rows: Sequence[tuple[str, date]]) -> None:
        """Insert (event id, `day(…)`) pairs; a known key raises the key violation."""
        params: list[tuple[object, object]]
        if self.compact:
            params = [(id_bytes(i), self._day_value(day)) for i, day in rows]
            columns = f"event_id, {self.day_column}"
        else:
            now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            params = [(i, now) for i, _day in rows]
            columns = "event_id, committed_at"
        for start in range(0, len(params), _INSERT_CHUNK):
            chunk = params[start : start + _INSERT_CHUNK]
            values = ",".join("(?,?)" for _ in chunk)
            flat = [value for pair in chunk for value in pair]
            cursor.execute(f"INSERT INTO {self.table} ({columns}) VALUES {values}", flat)

    def record_batch(self, cursor: pyodbc.Cursor, rows: Sequence[tuple[str, date]]) -> None:
        """`record` in one statement with one parameter, for the `json` strategy: the ids as
        hex and the days as ISO text, which the database turns into the same 16 bytes and DATE
        (SQLite, whose library here has no `unhex`, gets them as literals, made only of hex
        digits and `date.isoformat()`). The legacy layout keeps `record`."""
        if not self.compact or self.dialect not in _BATCH_SQL:
            self.record(cursor, rows)
            return
        if self.dialect is Dialect.SQLITE:
            values = ",".join(f"(X'{id_bytes(i).hex()}','{day.isoformat()}')" for i, day in rows)
            cursor.execute(
                f"INSERT INTO {self.table} (event_id, {self.day_column}) VALUES {values}"
            )
            return
        pairs = [(id_bytes(i).hex(), day.isoformat()) for i, day in rows]
        sql = _BATCH_SQL[self.dialect].format(t=self.table, d=self.day_column)
        cursor.execute(sql, orjson.dumps(pairs))

    def prune_older_than(self, cursor: pyodbc.Cursor, cutoff: datetime) -> int:
        """Delete the ledger rows of calls older than `cutoff` (naive = UTC; less a day of
        margin); the caller commits, in the transaction that deletes the journal rows older than
        `cutoff`. For a retention pass elsewhere: `Ledger(name, dialect)`, `detect(conn)`, this.

        Dated and compact layouts: by the call's day. Legacy layout: by commit time, which is
        never before the call, so no row is unguarded while its journal row is kept. Returns
        rows deleted."""
        if cutoff.tzinfo is not None:
            cutoff = cutoff.astimezone(UTC).replace(tzinfo=None)
        limit = cutoff - _MARGIN
        if self.compact:
            cursor.execute(
                f"DELETE FROM {self.table} WHERE {self.day_column} < ?",
                self._day_value(limit.date()),
            )
        else:
            cursor.execute(f"DELETE FROM {self.table} WHERE committed_at < ?", limit)
        count: int = cursor.rowcount
        return max(count, 0)

    def prune(self, conn: pyodbc.Connection, retention_days: int) -> int:
        """`writer.ledger_retention_days` > 0: prune on its own, committed."""
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=retention_days)
        count = self.prune_older_than(conn.cursor(), cutoff)
        conn.commit()
        return count
