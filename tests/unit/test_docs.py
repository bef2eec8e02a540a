"""The README fits on one screen and the docs/ pages it leads to hold together.

The README is what a newcomer reads first: the two set-up commands, what the project is, the
picture, the processes and where to read on. Everything else lives in docs/, one page per topic,
so each check here guards a way that split has broken before or easily could: the README growing
back, a moved section leaving a dead link behind, or a path that exists only on the machine the
text was written on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 150

# The README's first lines, as the issue that split it fixed them: the two commands a newcomer
# types, each with its comment.
FIRST_COMMANDS = [
    "bash deploy/setup.sh demo    # set-up + the demo:",
    "bash deploy/setup.sh test    # set-up + lint, types and the whole test suite",
]

# Paths that exist only on one machine: the project's own checkout and work folders, a home
# folder, or the folder beside the repository that only the sessions writing it can see.
MACHINE_PATH = re.compile(r"(?<![\w.])(?:/work/|/root/|/home/\w|\.\./shared/)")

# [text](target) and [text](<target>) outside code; images count too.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _links(text: str) -> list[str]:
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    return LINK.findall(prose)


def test_docs_folder_has_the_pages_the_readme_promises() -> None:
    expected = {
        "operations.md",
        "configuration.md",
        "contact-matching.md",
        "privacy.md",
        "benchmarks.md",
        "development.md",
    }
    assert expected <= {p.name for p in DOCS.glob("*.md")}


def test_readme_fits_on_one_screen() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move the new text into"
        " the docs/ page of its topic and link it"
    )


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    first_code = lines.index("```sh")
    assert lines[0].startswith("# "), "the README starts with its title"
    assert all(not line.strip() for line in lines[1:first_code]), "nothing before the commands"
    commands = lines[first_code + 1 : first_code + 1 + len(FIRST_COMMANDS)]
    assert [c[: len(f)] for c, f in zip(commands, FIRST_COMMANDS, strict=True)] == FIRST_COMMANDS
    assert lines[first_code + 1 + len(FIRST_COMMANDS)] == "```"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_a_file(page: Path) -> None:
    broken = []
    for target in _links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, mailto:, or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_path_of_a_particular_machine(page: Path) -> None:
    hits = [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]
    assert not hits, f"{page.relative_to(ROOT)} names a path of one machine: {hits}"


def test_the_checks_catch_what_they_guard_against() -> None:
    # The patterns themselves, on text that must and must not match, so that a loosened
    # expression cannot silently pass every page.
    assert MACHINE_PATH.search("then main's (`/work/main/.venv`, ...)")
    assert MACHINE_PATH.search("(`../shared/seed/server-journal.en.md`)")
    assert MACHINE_PATH.search("see /root/.cache")
    assert not MACHINE_PATH.search("`/var/lib/cti-journal`, `/etc/cti-journal/secrets/<key>`")
    assert not MACHINE_PATH.search("`shared/topology.py`, `tests/support/`")
    text = "[a](docs/a.md) `[b](not/a/link.md)`\n```\n[c](nor/this.md)\n```\n[d](x.md#part)"
    assert _links(text) == ["docs/a.md", "x.md#part"]
