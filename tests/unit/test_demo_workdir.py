"""`demo --workdir` empties only a folder the demo made: `--workdir ~` must never wipe a home."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cti_journal.cli.demo import MARKER, prepare_workdir
from cti_journal.cli.main import main
from cti_journal.shared.errors import ConfigError


def test_a_foreign_non_empty_folder_is_refused_and_kept(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match=r"not empty and was not made by the demo.*--force"):
        prepare_workdir(tmp_path, force=False)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_the_cli_says_so_once_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert main(["demo", "--workdir", str(tmp_path)]) == 2
    assert (tmp_path / "keep.txt").exists()
    assert "--force" in capsys.readouterr().err


def test_its_own_folder_is_emptied_and_private(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    prepare_workdir(work, force=False)
    (work / "journal.db").write_text("old run")
    prepare_workdir(work, force=False)
    assert sorted(p.name for p in work.iterdir()) == [MARKER]
    assert stat.S_IMODE(work.stat().st_mode) == 0o700


def test_an_empty_folder_or_force(tmp_path: Path) -> None:
    prepare_workdir(tmp_path / "empty", force=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    prepare_workdir(tmp_path / "other", force=True)
    assert not (tmp_path / "other" / "x").exists()


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        prepare_workdir(tmp_path / "f", force=True)
