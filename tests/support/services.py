"""Where the tests find the machine's shared services, and small helpers on them."""

from __future__ import annotations

import os
from typing import Any

import pyodbc
import pytest

PG_DSN = os.environ.get(
    "CTI_TEST_PG_DSN",
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;Uid=root;",
)
MARIA_DSN = os.environ.get(
    "CTI_TEST_MARIA_DSN",
    "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;User=root;",
)
AMQP_URL = os.environ.get("CTI_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# Each test's pipelines, so that a failed test shows their process logs (tests/conftest.py).
PIPELINES = pytest.StashKey[list[Any]]()


def drop_table(dsn: str, table: str) -> None:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        conn.close()
