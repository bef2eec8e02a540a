"""Fixtures for the real services. In CI (CI=true) a missing service fails the test; locally it
skips, as dramatiq's `check_rabbitmq` does."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyodbc
import pytest

from tests.support.harness import Pipeline
from tests.support.services import AMQP_URL, MARIA_DSN, PG_DSN, PIPELINES

LOG_TAIL = 40  # lines of each process log shown with a failed test
TIERS = ("unit", "integration", "fault", "container")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier marker comes from its folder (tests/<tier>/...), so that `-m unit` or
    `-m "not fault"` select by tier without a `pytestmark` line in every file."""
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts
        if len(parts) > 1 and parts[0] in TIERS:
            item.add_marker(parts[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that ran pipeline processes shows the tail of each process's log, so that a
    CI failure says what the gateway, lookup or writer was doing."""
    report = yield
    if report.failed:
        workdirs = {pipeline.workdir for pipeline in item.stash.get(PIPELINES, [])}
        for log in sorted(log for workdir in workdirs for log in workdir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
            report.sections.append((f"process log {log.name}", "\n".join(lines)))
    return report


def _unavailable(what: str, detail: str) -> None:
    message = f"{what} is not available: {detail}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI=true: a missing service fails the run)")
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _odbc_dsn(dsn: str, what: str) -> str:
    try:
        pyodbc.connect(dsn, timeout=5).close()
    except pyodbc.Error as exc:
        _unavailable(what, str(exc))
    return dsn


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return _odbc_dsn(PG_DSN, "PostgreSQL (psqlODBC)")


@pytest.fixture(scope="session")
def maria_dsn() -> str:
    return _odbc_dsn(MARIA_DSN, "MariaDB (Connector/ODBC)")


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    return _odbc_dsn(f"Driver=SQLite3;Database={tmp_path / 'journal.db'};", "SQLite3 ODBC driver")


@pytest.fixture(params=["postgresql", "mariadb", "sqlite"])
def any_dsn(request: pytest.FixtureRequest) -> str:
    """The same test on each database through its ODBC driver."""
    name = {"postgresql": "pg_dsn", "mariadb": "maria_dsn", "sqlite": "sqlite_dsn"}[request.param]
    dsn: str = request.getfixturevalue(name)
    return dsn


@pytest.fixture
def table_name() -> Iterator[str]:
    """A table name no other test uses."""
    yield f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not _port_open("127.0.0.1", 5672):
        _unavailable("RabbitMQ", "nothing listens on 127.0.0.1:5672")
    return AMQP_URL


@pytest.fixture
def pipeline_factory(
    amqp_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """Build harness `Pipeline`s; every process is stopped and every queue deleted after."""
    made: list[Pipeline] = []
    logged = request.node.stash.setdefault(PIPELINES, [])  # logs shown when the test fails

    def make(settings: dict[str, Any]) -> Pipeline:
        pipeline = Pipeline(tmp_path, amqp_url, settings)
        made.append(pipeline)
        logged.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.stop()
        pipeline.delete_queues()
