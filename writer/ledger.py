"""The ledger: which event ids are already committed in this database.

It is a table of its own (`writer.ledger_table`), written in the same transaction as the journal
rows, so it works whatever columns the admin chose for the journal table. A batch redelivered
after a writer died between commit and ack, or delivered to two writers after a network split,
finds its ids here and inserts nothing twice; when two writers race, the primary key makes one
transaction fail, and its retry then finds the ids. Rows older than
`writer.ledger_retention_days` are pruned: a redelivery never arrives that late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pyodbc

from cti_journal.writer.ddl import create_if_missing
from cti_journal.writer.dialect import Dialect, quote_identifier

_TIMESTAMP = {
    Dialect.POSTGRESQL: "TIMESTAMP",
    Dialect.MARIADB: "DATETIME",
    Dialect.SQLITE: "TIMESTAMP",
    Dialect.MSSQL: "DATETIME2",
    Dialect.ACCESS: "DATETIME",
}
_CHUNK = 500  # ids per IN (...) query: well under every driver's parameter limit


class Ledger:
    def __init__(self, table: str, dialect: Dialect) -> None:
        self.dialect = dialect
        self.table = quote_identifier(table, dialect)

    def create_sql(self) -> str:
        ts = _TIMESTAMP.get(self.dialect, "TIMESTAMP")
        return (
            f"CREATE TABLE {self.table} (event_id VARCHAR(40) NOT NULL PRIMARY KEY, "
            f"committed_at {ts} NOT NULL)"
        )

    def ensure(self, conn: pyodbc.Connection) -> None:
        def exists() -> bool:
            try:
                conn.cursor().execute(f"SELECT event_id FROM {self.table} WHERE 1 = 0")
            except pyodbc.Error:
                conn.rollback()
                return False
            conn.commit()
            return True

        create_if_missing(conn, exists, self.create_sql())

    def existing(self, cursor: pyodbc.Cursor, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor.execute(f"SELECT event_id FROM {self.table} WHERE event_id IN ({marks})", chunk)
            found.update(row[0] for row in cursor.fetchall())
        return found

    def record(self, cursor: pyodbc.Cursor, ids: Sequence[str]) -> None:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            values = ",".join("(?,?)" for _ in chunk)
            params: list[object] = []
            for event_id in chunk:
                params += [event_id, now]
            cursor.execute(
                f"INSERT INTO {self.table} (event_id, committed_at) VALUES {values}", params
            )

    def prune(self, conn: pyodbc.Connection, retention_days: int) -> int:
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=retention_days)
        cursor = conn.cursor()
        cursor.execute(f"DELETE FROM {self.table} WHERE committed_at < ?", cutoff)
        count: int = cursor.rowcount
        conn.commit()
        return count
