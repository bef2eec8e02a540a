"""A module path named in a comment or docstring (`shared/fields.py`) is a pointer a newcomer
follows: after modules move (issue 17) each such path must still name a file of the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("shared", "gateway", "lookup", "writer", "simulator", "cli", "bench", "tests", "deploy")
PATH = re.compile(r"(?<![\w./-])((?:shared|gateway|lookup|writer|simulator|cli)/\w+\.py)\b")


def test_every_module_path_named_in_the_code_exists() -> None:
    stale = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if ".venv" in path.parts or "corpus" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for named in PATH.findall(line):
                    if not (ROOT / named).is_file():
                        stale.append(f"{path.relative_to(ROOT)}:{number}: {named}")
    assert not stale, "paths that name no file:\n" + "\n".join(stale)
