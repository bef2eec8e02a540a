"""What an operator reads: each error once, JSON lines with fields, pika quiet about outages,
phone numbers masked unless --log-numbers, no traceback for a user's mistake."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pika
import pika.exceptions
import pytest

from cti_journal.shared.logs import setup_logging
from tests.support.harness import free_port

CLI = [sys.executable, "-m", "cti_journal.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text("[writer]\nbatch_size = -1\n", encoding="utf-8")
    return path


def test_a_config_error_is_said_once_without_a_traceback(bad_config: Path) -> None:
    out = run("writer", "-c", str(bad_config))
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("cti-journal: config: writer.batch_size")
    assert "Traceback" not in out.stderr


def test_under_log_json_the_error_is_one_json_line(bad_config: Path) -> None:
    out = run("--log-json", "writer", "-c", str(bad_config))
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    record = orjson.loads(lines[0])
    assert record["level"] == "ERROR" and "writer.batch_size" in record["msg"]
    assert record["error"] == "ConfigError"


def test_a_bogus_log_level_is_a_usage_error_not_a_traceback() -> None:
    out = run("--log-level", "bogus", "check")
    assert out.returncode == 2
    assert "'bogus' is not one of DEBUG, INFO, WARNING, ERROR" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_malformed_broker_port_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[broker]\nurls = ["amqp://u:p@127.0.0.1:56x72/%2F"]\n', encoding="utf-8")
    out = run("check", "-c", str(path))
    assert out.returncode == 2
    assert "broker.urls[0]: the port after the host must be a number" in out.stderr
    assert "Traceback" not in out.stderr


def _capture(capsys: pytest.CaptureFixture[str], **kwargs: bool) -> str:
    setup_logging("INFO", **kwargs)
    try:
        logging.getLogger("cti_journal.test").warning(
            "rejected line %s: %s (%d entries)",
            "i;2026-01-01 10:00:00;CONN;08912345678",
            "bad",
            1234567,
        )
        url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F?connection_attempts=1"
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(pika.URLParameters(url))
    finally:
        logging.getLogger().handlers.clear()
    return capsys.readouterr().err


def test_numbers_are_masked_counts_are_not_and_pika_is_quiet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _capture(capsys)
    assert "08912345678" not in err and "********678" in err
    assert "1234567 entries" in err  # a count passed as a number stays
    assert "2026-01-01 10:00:00" in err
    assert "pika" not in err and "Traceback" not in err  # the outage is ours to report, once


def test_log_numbers_shows_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert "08912345678" in _capture(capsys, log_numbers=True)


def test_json_lines_carry_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", json_lines=True)
    try:
        logging.getLogger("cti_journal.test").info(
            "batch written", extra={"queue": "p.write", "event_id": "ab12", "count": 50}
        )
    finally:
        logging.getLogger().handlers.clear()
    record = orjson.loads(capsys.readouterr().err.strip())
    assert (record["queue"], record["event_id"], record["count"]) == ("p.write", "ab12", 50)


def test_messages_without_arguments_bytes_and_tracebacks_are_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO")
    log = logging.getLogger("cti_journal.test")
    try:
        log.warning("no arguments: 08912345678")
        log.warning("raw line %r", b"i;2026-01-01 10:00:00;CONN;08912345678;Meier")
        try:
            raise ValueError("value 08912345678 refused by the database")
        except ValueError:
            log.exception("batch failed")
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert "08912345678" not in err, err
    assert err.count("********678") >= 3  # the traceback quotes the raising line too
