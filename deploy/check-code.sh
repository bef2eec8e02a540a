#!/usr/bin/env bash
# ruff (lint + format) and mypy --strict on the packages.
# mypy cannot follow the editable install's folder mapping (gateway/ → cti_journal.gateway), so it
# checks a throw-away tree of symlinks laid out as the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/cti_journal"
for d in gateway lookup writer shared simulator cli; do ln -s "$PWD/$d" "$tree/cti_journal/$d"; done
(cd "$tree" && "$OLDPWD/.venv/bin/mypy" --config-file "$OLDPWD/pyproject.toml" -p cti_journal)
