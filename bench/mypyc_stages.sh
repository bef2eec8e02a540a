#!/usr/bin/env bash
# The gateway's and the look-up's own CPU per entry (bench.stage_cost's measurement) with their
# hot modules compiled by mypyc (typed Python to C, part of mypy) against the same code
# interpreted, alternating, in processes of their own. An experiment for issue 18, not a build
# option: nothing in the product uses the compiled modules. Needs gcc and Python's headers.
#
#   bash bench/mypyc_stages.sh [ENTRIES] [ROUNDS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
entries=${1:-20000}
rounds=${2:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/cti_journal"
touch "$work/cti_journal/__init__.py"
for pkg in gateway lookup writer shared simulator cli; do
    cp -r "$repo/$pkg" "$work/cti_journal/$pkg"
done
# The project's mypy settings, without the package mapping (the copy is laid out as installed).
sed -e '/^\[tool.setuptools/,/^$/d' -e '/warn_unused_configs/d' "$repo/pyproject.toml" \
    > "$work/pyproject.toml"
# shared/message.py reads its dataclass's slot descriptors, which mypyc does not allow: left out.
modules=()
names=()
for m in shared/record shared/normalize shared/fieldtext shared/convert gateway/prepare \
         gateway/identity gateway/spool lookup/index lookup/enrich lookup/worker; do
    modules+=("cti_journal/$m.py")
    names+=("${m/\//.}")
done
(cd "$work" && "$repo/.venv/bin/mypyc" "${modules[@]}" > build.log 2>&1) \
    || { tail -20 "$work/build.log"; exit 1; }

for stage in gateway lookup; do
    for _ in $(seq "$rounds"); do
        for top in "$work" ""; do
            (cd "$repo" && .venv/bin/python -c "
import sys
if '$top':
    sys.path.insert(0, '$top')
sys.path.insert(1, '$repo')
import importlib
from bench.stage_cost import measure
files = [importlib.import_module('cti_journal.' + m).__file__ or '' for m in '${names[*]}'.split()]
compiled = sum(f.endswith('.so') for f in files)
assert compiled in (0, len(files)), f'{compiled} of {len(files)} modules compiled: {files}'
kind = 'mypyc' if compiled else 'interpreted'
print(f'$stage {kind:>11}: {measure(\"$stage\", $entries):.2f} µs CPU per entry')
")
        done
    done
done
