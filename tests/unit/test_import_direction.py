"""The house's import rules, checked over the import graph built from the code (every import
statement, at module level or inside a function, and any load by name through importlib or
entry points), not from what the README says.

- `shared/` imports only `shared/` (it is the library every process uses);
- `gateway/`, `lookup/`, `writer/`, `simulator/` import `shared/` and themselves, never each other;
- `cli/` may import everything (it is the top: the command table and the commands of no process);
- no import cycle between modules, and no function-level import of a first-party module kept only
  to dodge one (a function-level import is allowed only where the module is heavy and optional
  for the caller, listed in LAZY with the reason).
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "gateway", "lookup", "writer", "simulator", "cli")
ALLOWED: dict[str, set[str]] = {
    "shared": {"shared"},
    "gateway": {"gateway", "shared"},
    "lookup": {"lookup", "shared"},
    "writer": {"writer", "shared"},
    "simulator": {"simulator", "shared"},
    "cli": set(PACKAGES),
}
# (importing module, imported module): why the import waits until it is needed.
LAZY: dict[tuple[str, str], str] = {
    ("cli.main", "*"): "the command table imports only the chosen command's module",
    (
        "shared.privacy_patterns",
        "shared.normalize",
    ): "phonenumbers' metadata only when a rule reads numbers",
    ("lookup.sources.factory", "*"): "a source type's module (and its client library, an LDAP "
    "one say) only when a source of that type is configured",
}


# A name inside any string; "cti_journal." alone is the head of a name built at run time.
_NAME_IN_TEXT = re.compile(r"\bcti_journal\.([A-Za-z_][A-Za-z0-9_.]*)?")
BUILT = "<a module name built at run time>"


@functools.cache
def _modules_cache() -> dict[str, Path]:
    return _modules()


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _target(name: str) -> str | None:
    if name.startswith("cti_journal."):
        return name.removeprefix("cti_journal.")
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute name an ImportFrom reads: `from ..gateway import x` in shared.backoff is
    cti_journal.gateway (a relative import must not slip past the rules)."""
    if node.level == 0:
        return node.module
    is_package = _modules_cache().get(module, Path()).name == "__init__.py"
    base = ["cti_journal", *module.split(".")]
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _first_party(module: str, node: ast.AST) -> list[str]:
    """The first-party modules one import statement names (`from cti_journal.shared import
    config` names shared.config, so that the cycle check sees the module, not the package)."""
    if isinstance(node, ast.Import):
        return [t for alias in node.names if (t := _target(alias.name)) is not None]
    if isinstance(node, ast.ImportFrom):
        source = _absolute(module, node)
        target = _target(source) if source else None
        if target is None:
            return []
        return [target, *(f"{target}.{alias.name}" for alias in node.names)]
    return []


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every first-party module the file imports, anywhere in it, including names inside strings
    (handed to importlib.import_module, `python -m ...` or a shell line), and any load through
    entry points."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for name in _NAME_IN_TEXT.findall(node.value):
                yield name.rstrip(".").split(":")[0] if name else BUILT
            continue
        if isinstance(node, (ast.Attribute, ast.Name)) and "entry_points" in (
            getattr(node, "attr", ""),
            getattr(node, "id", ""),
        ):
            yield "<entry points>"
            continue
        yield from _first_party(module, node)


def _package(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def test_every_import_follows_the_direction_of_the_flow() -> None:
    wrong = []
    for module, path in _modules().items():
        for target in _imports(module, path):
            if target == "<entry points>":
                wrong.append(f"{module} loads entry points (an import nobody can see)")
            elif target == BUILT:
                wrong.append(f"{module} imports {BUILT} (an import nobody can see)")
            elif _package(target) not in ALLOWED[_package(module)]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the flow:\n" + "\n".join(sorted(set(wrong)))


def test_no_first_party_import_inside_a_function_or_type_checking_block() -> None:
    modules = _modules()
    hidden = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(stmt) for stmt in tree.body if isinstance(stmt, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            targets = _first_party(module, node)
            # `from a import b`: the statement is one import of a, whatever b is.
            for target in targets[:1] if isinstance(node, ast.ImportFrom) else targets:
                if (module, target) in LAZY or (module, "*") in LAZY:
                    continue
                hidden.append(f"{module} imports {target} inside a block")
    assert not hidden, "\n".join(sorted(set(hidden)))


def test_no_import_cycle() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target in _imports(module, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_probe_and_version_load_no_driver_broker_client_or_number_library() -> None:
    """`probe` is the container's health check, run every few seconds: it must not pay for
    pika, pyodbc or phonenumbers (nor `--version`)."""
    script = (
        "import sys\n"
        "from cti_journal.cli.main import main\n"
        "for argv in (['probe', '--help'], ['--version'], ['probe', '-c', sys.argv[1]]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('pika', 'pyodbc', 'phonenumbers') if m in sys.modules]\n"
        "print('LOADED', ','.join(heavy))\n"
    )
    out = subprocess.run(
        # a real probe, with a config that has number rules (nothing answers: exit 1, no matter)
        [sys.executable, "-c", script, str(ROOT / "deploy" / "cti-journal.example.toml")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip().splitlines()[-1] == "LOADED", out
