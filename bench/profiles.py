"""Summaries of py-spy's raw (collapsed-stack) output: where each process spends its CPU.

py-spy samples only threads that are running (idle ones are left out without `--idle`), so the
shares are of the process's busy time, over all its threads.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("/work/main/", "site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def summarize(path: Path | str, top: int = 8) -> dict[str, object]:
    """Total samples, the hottest leaf functions (self time) and project functions (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += count
        for name in set(frames):
            if any(part in name for part in ("(writer/", "(lookup/", "(gateway/", "(shared/")):
                inclusive[name] += count
    if not total:
        return {"samples": 0, "self": [], "project_inclusive": []}
    return {
        "samples": total,
        "self": [(name, round(100 * n / total, 1)) for name, n in own.most_common(top)],
        "project_inclusive": [
            (name, round(100 * n / total, 1)) for name, n in inclusive.most_common(top)
        ],
    }
