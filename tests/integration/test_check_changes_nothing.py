"""Issue 20, findings 14 and 16: `cti-journal check` only reads — with `create_table = true` it
reports that the writer would create the journal table and its ledger, and creates neither — and
shows the DSN without any of its secrets."""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest

from cti_journal.cli.main import main
from tests.support.harness import to_toml
from tests.support.services import drop_table

SECRET = "hunter2-s3cr3t"


def _tables(dsn: str, *names: str) -> list[str]:
    conn = pyodbc.connect(dsn)
    try:
        return [n for n in names if any(True for _ in conn.cursor().tables(table=n))]
    finally:
        conn.close()


def test_check_creates_no_table_and_shows_no_secret(
    any_dsn: str, table_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A key the drivers ignore here but that carries a secret where it is used (libpq's
    # sslpassword), spaced as admins write it; the old redaction knew only `Pwd=`/`Password=`.
    dsn = f"{any_dsn.rstrip(';')};sslpassword = {SECRET};"
    config = tmp_path / "c.toml"
    config.write_text(to_toml({"writer": {"dsn": dsn, "table": table_name, "create_table": True}}))
    try:
        assert main(["check", "-c", str(config), "--only", "writer"]) == 0
        out = capsys.readouterr().out
        assert _tables(any_dsn, table_name, f"{table_name}_ledger") == []
        assert "will create it" in out and "changed nothing" in out
        assert SECRET not in out
    finally:
        drop_table(any_dsn, table_name)
        drop_table(any_dsn, f"{table_name}_ledger")
