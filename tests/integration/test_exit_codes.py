"""Exit codes a supervisor can act on: 2 = a configuration problem that a restart cannot fix
(systemd's RestartPreventExitStatus=2, Kubernetes' CrashLoopBackOff with a clear message),
never 2 for a service that is only away for now - that one is waited for with backoff,
not ready meanwhile."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pyodbc

from tests.support.harness import free_port, http_get, wait_for

PASSWORD = "Wr0ng-Pa55word"


def _exit(pipeline: Any, name: str, timeout: float) -> tuple[int, str]:
    proc: subprocess.Popen[bytes] = pipeline.procs[name]
    code = proc.wait(timeout=timeout)
    return code, pipeline.log(name)


def test_wrong_broker_password_is_bounded_then_exit_2_redacted(
    pipeline_factory: Any, amqp_url: str
) -> None:
    wrong = re.sub(r"//([^:]+):[^@]*@", rf"//\1:{PASSWORD}@", amqp_url)
    pipeline = pipeline_factory({"broker": {"urls": [wrong], "reconnect_max_s": 2.0}})
    began = time.monotonic()
    pipeline.start("lookup", "lookup")
    code, log = _exit(pipeline, "lookup", timeout=60)
    took = time.monotonic() - began
    assert code == 2, log
    assert "config: broker.urls: amqp://guest:***@" in log
    assert "refused the login 5 times in a row" in log
    assert PASSWORD not in log
    print(f"exit 2 after {took:.1f} s")


def test_database_login_refused_exits_2(pipeline_factory: Any, maria_dsn: str) -> None:
    dsn = re.sub(r"User=[^;]*;", f"User=nosuchuser;Password={PASSWORD};", maria_dsn)
    pipeline = pipeline_factory({"writer": {"dsn": dsn, "table": "journal"}})
    pipeline.start("writer", "writer")
    code, log = _exit(pipeline, "writer", timeout=60)
    assert code == 2, log
    assert "config: writer.dsn: " in log and "Access denied" in log
    assert PASSWORD not in log


def test_missing_contact_table_exits_2(pipeline_factory: Any, tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    pyodbc.connect(f"Driver=SQLite3;Database={db};", autocommit=True).close()
    source = {"name": "crm", "dsn": f"Driver=SQLite3;Database={db};", "table": "kontakte",
              "name_column": "name", "phone_columns": ["tel"]}  # fmt: skip
    pipeline = pipeline_factory({"lookup": {"sources": [source]}})
    pipeline.start("lookup", "lookup")
    code, log = _exit(pipeline, "lookup", timeout=60)
    assert code == 2, log
    assert "config: lookup.sources: source crm" in log and "no such table: kontakte" in log


def test_unreachable_database_is_waited_for_not_ready(pipeline_factory: Any) -> None:
    """A database that is down when the writer starts (a reboot where the writer comes up
    first) used to be exit 2: never restarted, the journal stopped for good."""
    dead = free_port()
    dsn = f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={dead};Database=test;Uid=root;"
    port = free_port()
    pipeline = pipeline_factory({"writer": {"dsn": dsn, "metrics_port": port,
                                            "db_retry_max_s": 1.0}})  # fmt: skip
    pipeline.start("writer", "writer")
    url = f"http://127.0.0.1:{port}/readyz"
    wait_for(lambda: http_get(url)[0] == 503, 30, "the writer's /readyz")
    assert http_get(url) == (503, "not ready: database not connected\n")
    wait_for(lambda: pipeline.log("writer").count("journal database") >= 1, 10, "a log line")
    time.sleep(3)  # several attempts (db_retry_max_s = 1): still running, still waiting
    pipeline.assert_running()
    log = pipeline.log("writer")
    assert log.count("retrying with backoff") == 1, log  # one line, not one per attempt
    pipeline.procs["writer"].send_signal(signal.SIGTERM)
    assert pipeline.procs["writer"].wait(timeout=20) == 0


def test_missing_journal_table_exits_2(pipeline_factory: Any, tmp_path: Path) -> None:
    dsn = f"Driver=SQLite3;Database={tmp_path / 'j.db'};"
    pipeline = pipeline_factory({"writer": {"dsn": dsn, "table": "journal_nope"}})
    pipeline.start("writer", "writer")
    code, log = _exit(pipeline, "writer", timeout=60)
    assert code == 2, log
    assert "config: writer.table: table 'journal_nope' does not exist" in log
