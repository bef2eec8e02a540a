"""Benchmark of the contact-field reader on adversarial fields (not a test): is reading linear?

    .venv/bin/python bench/reader_adversarial.py [--bound 400] [--json PATH]

Issue 20 found `'089 7654321' + 28,000 spaces + 'x'` took 48 s to read (a regex that backtracked
over the spaces from every start). Wall-clock seconds on a shared machine say little, so each
field's reading time is reported as a ratio against a plain pass over the same text, measured in
the same run right before it: a Python loop that looks at every character once. A reader that is
linear in the field's length keeps that ratio flat as the field grows; a quadratic one multiplies
it by the growth factor (×4 per doubling, ×16 from 64 to 256 characters).

Two parts:
1. `NumberNormalizer.read` on adversarial fields of 64, 128 and 256 characters (the field limit:
   longer ones are refused whole) and on the issue's 28,011-character field;
2. every pattern of the reader and of log masking (shared/fields.py, shared/fieldtext.py,
   shared/masking.py) run directly on 10,000- and 80,000-character inputs, past any field limit:
   the patterns themselves must be linear, not only bounded by the limit.

Exit 1 when a ratio exceeds --bound, or grows more than 4× from the shortest to the longest size
(a quadratic reader grows 16× from 64 to 256 characters, a quadratic pattern 8× from 10,000 to
80,000). On a loaded machine single figures jump: run it twice before believing a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cti_journal.shared import fields, fieldtext, masking
from cti_journal.shared.normalize import NumberNormalizer

# Texts that make a backtracking pattern try every start and every split: runs of what one
# repetition takes followed by what ends the match too late or never.
SHAPES: dict[str, Callable[[int], str]] = {
    "number, spaces, x": lambda n: "089 7654321" + " " * n + "x",
    "digit-space runs": lambda n: "1 " * (n // 2),
    "digits then a letter": lambda n: "1" * n + "a",
    "open parentheses": lambda n: "(" * n,
    "parenthesis, letters": lambda n: "(" + "a" * n,
    "hyphen runs": lambda n: "1-" * (n // 2) + "-",
    "white space with breaks": lambda n: " \n" * (n // 2) + "oder",
    "long word": lambda n: "a" * n + " 1",
    "word-digit pairs": lambda n: "ab 1 " * (n // 5),
    "ext marks": lambda n: ";ext=" * (n // 5),
    "hashes": lambda n: "# " * (n // 2),
    "dates": lambda n: "12.12." * (n // 6),
    "postcode marks": lambda n: "D-" * (n // 2),
    "tel scheme": lambda n: "tel:+" + "1-" * (n // 2),
    "spreadsheet": lambda n: '="' + "1" * n,
    "plus runs": lambda n: "+ " * (n // 2),
    "mixed junk": lambda n: ("0(8/9 -1.2~3x" * n)[:n],
}


def plain_pass(text: str) -> int:
    count = 0
    for ch in text:
        if ch == " ":
            count += 1
    return count


def timed(fn: Callable[[], object], at_least: float = 0.02) -> float:
    """Seconds per call, repeating until `at_least` seconds have passed (best of 5)."""
    best = float("inf")
    for _ in range(5):
        runs, started = 0, time.perf_counter()
        while True:
            fn()
            runs += 1
            elapsed = time.perf_counter() - started
            if elapsed >= at_least:
                break
        best = min(best, elapsed / runs)
    return best


def ratio(text: str, fn: Callable[[str], object]) -> float:
    plain = timed(lambda: plain_pass(text))
    return timed(lambda: fn(text)) / plain


def patterns() -> dict[str, re.Pattern[str]]:
    found: dict[str, re.Pattern[str]] = {}
    for module in (fields, fieldtext, masking):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] = value
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound", type=float, default=400.0, help="largest ratio allowed")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    reader = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
    report: dict[str, dict[str, float]] = {}
    failures: list[str] = []
    print(f"load average {os.getloadavg()[0]:.1f}; ratio = reading time / plain pass time")
    print(f"{'reader on':28} {'64':>8} {'128':>8} {'256':>8} {'28011':>8}")
    for shape, make in SHAPES.items():
        row = {str(n): ratio(make(n)[:n], reader.read) for n in (64, 128, 256)}
        row["28011"] = ratio(SHAPES["number, spaces, x"](28_000), reader.read)
        report[f"read: {shape}"] = row
        print(f"{shape:28} " + " ".join(f"{v:8.1f}" for v in row.values()))
        check(f"read: {shape}", row, ("64", "256"), args.bound, failures)
    print(f"\n{'pattern (finditer) on':28} {'10000':>8} {'80000':>8}")
    for name, pattern in patterns().items():
        worst = {"10000": 0.0, "80000": 0.0}
        for make in SHAPES.values():
            for n in (10_000, 80_000):
                text = make(n)[:n]
                worst[str(n)] = max(
                    worst[str(n)], ratio(text, lambda t, p=pattern: sum(1 for _ in p.finditer(t)))
                )
        report[f"pattern: {name}"] = worst
        print(f"{name:28} " + " ".join(f"{v:8.1f}" for v in worst.values()))
        check(f"pattern: {name}", worst, ("10000", "80000"), args.bound, failures)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


def check(
    what: str, row: dict[str, float], sizes: tuple[str, str], bound: float, failures: list[str]
) -> None:
    if max(row.values()) > bound:
        failures.append(f"{what}: ratio {max(row.values()):.0f} > {bound:.0f}")
    # quadratic: ×16 from 64 to 256 characters, ×8 from 10,000 to 80,000
    if row[sizes[1]] > 4 * max(row[sizes[0]], 1.0):
        failures.append(f"{what}: ratio grew {row[sizes[1]] / row[sizes[0]]:.1f}× with the length")


if __name__ == "__main__":
    raise SystemExit(main())
