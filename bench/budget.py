"""CPU per entry by stage, from one pipeline run's CPU seconds (bench/pipeline.py `cpu_s`).

The stages: our three processes (gateway, the look-ups together, the writers together), RabbitMQ
(beam.smp), the database server (PostgreSQL, MariaDB; SQLite has none: it runs inside the
writer), and everything else on the machine (the simulator and this benchmark, the kernel's
share that no process is charged for, and the other users of a shared machine).

Figures of a shared machine move with its load; the ratio of our stages to the database
server's CPU for the same entries, measured in the same run, moves much less. That ratio is what
`bench.compare` compares across runs. Where there is no server (SQLite), the yardstick is the
raw batched insert's time per row in the same run (`1e6 / VALUES rows/s`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

OURS: Final = ("gateway", "lookup", "writer")
STAGES: Final = (*OURS, "ours", "rabbitmq", "db", "other")
SERVER_COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    "postgresql": ("postgres",),
    "mariadb": ("mariadbd", "mysqld"),
    "sqlite": (),
}


def stage_budget(cpu_s: Mapping[str, float], entries: int, database: str) -> dict[str, float]:
    """µs of CPU per entry for every stage of `STAGES`, plus each of our processes by role."""
    n = max(1, entries)
    out: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    for role, seconds in cpu_s.items():
        stage = role.split("-")[0]
        if stage in OURS:
            out[stage] += 1e6 * seconds / n
            out[f"process {role}"] = 1e6 * seconds / n
    out["ours"] = sum(out[s] for s in OURS)
    out["rabbitmq"] = 1e6 * cpu_s.get("beam.smp", 0.0) / n
    out["db"] = 1e6 * sum(cpu_s.get(c, 0.0) for c in SERVER_COMMANDS[database]) / n
    counted = cpu_s.get("python (ours)", 0.0) + (out["rabbitmq"] + out["db"]) * n / 1e6
    out["other"] = 1e6 * max(0.0, cpu_s.get("all", 0.0) - counted) / n
    return out


def yardstick(
    db: Mapping[str, Any], budget: Mapping[str, float], *, server: bool = True
) -> tuple[float, str]:
    """(µs per entry, what it is) that a run's stages are divided by (see the module doc);
    `server=False` takes the raw insert's time even where a server was measured (two runs are
    compared by the same yardstick, and an older run may lack the server's figure)."""
    if server and budget.get("db", 0.0) > 0:
        return budget["db"], "database server CPU"
    values = db["inserts_rows_per_s"].get("values", 0.0)
    return (1e6 / values if values else float("nan")), "raw VALUES time per row"


def raw_values_of(db: Mapping[str, Any]) -> float:
    """The raw multi-row VALUES insert's rows/s that issue 18's "× raw" is measured against
    (a result older than the `raw_values` field: the best batched strategy's)."""
    return float(db.get("raw_values") or db["best_batched"]["rows_per_s"])


def budget_of_run(run: Mapping[str, Any], database: str) -> dict[str, float]:
    """The budget of a run as stored in the JSON (older files lack the stored field)."""
    stored = run.get("cpu_us_per_entry")
    if stored:
        return dict(stored)
    t = run["throughput"]
    return stage_budget(t["cpu_s"], t["entries"], database)


def budget_line(budget: Mapping[str, float], shape: str) -> str:
    """One line of the benchmark's output: the stages, then each of our processes."""
    stages = ", ".join(f"{s} {budget[s]:.0f}" for s in STAGES)
    procs = ", ".join(f"{k.split(' ', 1)[1]} {v:.0f}" for k, v in budget.items() if " " in k)
    ratio = budget["ours"] / budget["db"] if budget["db"] else float("nan")
    tail = f"; ours / db {ratio:.2f}" if budget["db"] else ""
    return f"  {shape} CPU µs/entry: {stages}{tail} ({procs})"
