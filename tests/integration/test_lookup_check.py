"""`cti-journal check` on contact sources: a source that cannot be read fails the check (exit 2),
and every source reports how many phone fields gave no number, with masked examples."""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest

from cti_journal.cli.main import main
from tests.support.crm import running_crm


def _config(tmp_path: Path, dsn: str, second_table: str) -> Path:
    conn = pyodbc.connect(dsn, autocommit=True)
    try:
        conn.execute("CREATE TABLE kontakte (id INTEGER, name VARCHAR(50), tel VARCHAR(80))")
        conn.execute(
            "INSERT INTO kontakte VALUES (1, 'Eva Maier', '089 123456-21'), "
            "(2, 'Hans Huber', 'Kd.-Nr. 471123'), (3, 'Max Roth', '0221 / 8765048'), "
            "(4, 'Ida Ott', '80331 München'), (5, 'Leo Graf', '')"
        )
    finally:
        conn.close()
    path = tmp_path / "cti.toml"
    path.write_text(
        f"""
[lookup]
area_code = "89"

[[lookup.sources]]
name = "crm"
dsn = "{dsn}"
table = "kontakte"
name_column = "name"
phone_columns = ["tel"]

[[lookup.sources]]
name = "erp"
dsn = "{dsn}"
table = "{second_table}"
name_column = "name"
phone_columns = ["tel"]
""",
        encoding="utf-8",
    )
    return path


def test_a_failing_source_fails_the_check(
    tmp_path: Path, sqlite_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, sqlite_dsn, "no_such_table")
    assert main(["check", "-c", str(config), "--only", "lookup"]) == 2
    out = capsys.readouterr().out
    print(out)  # docs/contact-matching.md quotes this output
    assert "lookup: source crm: ok, 5 records" in out
    assert "lookup: source crm: 4 phone fields, 2 gave no number" in out
    assert "'Kd.-Nr. ***123'" in out and "'*****' " not in out
    assert "lookup: source erp: FAILED: source erp" in out
    assert "lookup: FAILED: contact source(s) erp cannot be read ([[lookup.sources]])" in out
    assert "all checks passed" not in out
    assert "1 check(s) failed" in out


def test_readable_sources_pass(
    tmp_path: Path, sqlite_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, sqlite_dsn, "kontakte")
    assert main(["check", "-c", str(config), "--only", "lookup"]) == 0
    out = capsys.readouterr().out
    assert "lookup: source erp: ok, 5 records" in out
    assert "all checks passed" in out


def test_check_reads_file_and_http_sources_naming_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = Path(__file__).resolve().parents[1] / "corpus" / "sources" / "outlook_de.csv"
    (tmp_path / "token").write_text("wrong-token", encoding="utf-8")
    (tmp_path / "token").chmod(0o600)  # a secret file open to others is refused
    with running_crm() as crm:
        crm.add("1", "Anna", "Alt", None, ["089 111111"], "2026-11-01T08:00:00Z")
        config = tmp_path / "cti.toml"
        config.write_text(
            f"""
[lookup]
area_code = "89"
own_number = "089 111111"

[[lookup.sources]]
name = "export"
type = "file"
path = "{export}"

[[lookup.sources]]
name = "missing"
type = "file"
path = "{tmp_path / "gone.csv"}"

[[lookup.sources]]
name = "crm"
type = "http"
url = "{crm.url}?api_key=topsecret"
token_file = "{tmp_path / "token"}"
name_path = "attributes.name.last"
phone_paths = ["attributes.phones[*].number"]

[[lookup.sources]]
name = "crm-search"
type = "http"
query_url = "http://127.0.0.1:{crm.port}/api/search?phone={{number}}"
token = "{crm.token}"
name_path = "attributes.name.last"
phone_paths = ["attributes.phones[*].number"]
""",
            encoding="utf-8",
        )
        assert main(["check", "-c", str(config), "--only", "lookup"]) == 2
    out = capsys.readouterr().out
    assert "lookup: source export: ok, 6 records" in out
    assert "lookup: source missing: FAILED: source missing (" in out and "does not exist" in out
    assert "lookup: source crm: FAILED: source crm (http://127.0.0.1" in out
    assert "HTTP 401" in out
    assert "topsecret" not in out and "wrong-token" not in out
    assert "contact source(s) missing, crm cannot be read" in out
    assert "lookup: source crm-search: query_url answers: 1 record(s) for lookup.own_number" in out


def test_fields_with_two_readings_and_too_long_ones_are_counted(
    tmp_path: Path, sqlite_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16: a field with two readings gives no key and `check` says so; issue 20: a field
    past the length limit is refused whole, and counted."""
    conn = pyodbc.connect(sqlite_dsn, autocommit=True)
    try:
        conn.execute("CREATE TABLE messy (id INTEGER PRIMARY KEY, name TEXT, tel TEXT)")
        conn.execute(
            "INSERT INTO messy VALUES (1, 'Eva Ernst', '30123456'), "
            "(2, 'Fritz Fink', '030 123456 und 12'), (3, 'Gabi Gold', ?), "
            "(4, 'Hans Hahn', '089 7654321')",
            "089 7654321 " + "x" * 300,
        )
    finally:
        conn.close()
    config = _config(tmp_path, sqlite_dsn, "messy")
    assert main(["check", "-c", str(config), "--only", "lookup"]) == 0
    out = capsys.readouterr().out
    print(out)
    line = "lookup: source erp: 4 phone fields, 3 gave no number; 2 of them have two readings"
    assert line in out
    assert "'********' " not in out and "'*****456'" in out  # masked, the last 3 digits kept
    assert "1 of them are longer than 256 characters (refused)" in out
