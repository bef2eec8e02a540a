"""The benchmark's bookkeeping (bench/budget.py, compare.py, report.py): CPU per entry by stage,
the comparison normalised by the database's CPU, and the docs' table made from the reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import compare, report
from bench.budget import stage_budget
from bench.common import cpu_delta

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "results" / "reference.json"


def _run(cpu: dict[str, float], entries: int = 10_000, rate: float = 5000.0) -> dict[str, Any]:
    return {
        "lookups": 2,
        "writers": 1,
        "loadavg": [3.0, 2.0, 1.0],
        "throughput": {"entries": entries, "rate": rate, "cpu_s": cpu, "wall_seconds": 2.0},
        "latency": {"p99_ms": 40.0},
    }


def _result(cpu: dict[str, float], rate: float = 5000.0) -> dict[str, Any]:
    return {
        "started": "2026-12-03T14:00:00+0000",
        "cpus": 2,
        "argv": ["--db", "postgresql"],
        "loadavg_at_start": [3.0, 2.0, 1.0],
        "loadavg_at_end": [4.0, 2.0, 1.0],
        "databases": [
            {
                "database": "postgresql",
                "inserts_rows_per_s": {"values": 20_000.0},
                "best_batched": {"strategy": "values", "rows_per_s": 20_000.0},
                "naive": {"baseline": 500.0},
                "end_to_end": {"rate": rate, "shape": "2L×1W"},
                "runs": [_run(cpu, rate=rate)],
            }
        ],
    }


CPU = {
    "gateway": 0.5,
    "lookup-1": 0.2,
    "lookup-2": 0.2,
    "writer-1": 0.4,
    "python (ours)": 1.3,
    "beam.smp": 0.3,
    "postgres": 0.5,
    "all": 2.5,
}


def test_the_budget_splits_the_runs_cpu_by_stage_per_entry() -> None:
    budget = stage_budget(CPU, 10_000, "postgresql")
    assert budget["gateway"] == pytest.approx(50.0)
    assert budget["lookup"] == pytest.approx(40.0)  # both look-ups together
    assert budget["writer"] == pytest.approx(40.0)
    assert budget["ours"] == pytest.approx(130.0)
    assert budget["rabbitmq"] == pytest.approx(30.0)
    assert budget["db"] == pytest.approx(50.0)
    assert budget["other"] == pytest.approx(40.0)  # all − ours − broker − server
    assert budget["process lookup-2"] == pytest.approx(20.0)


def test_compare_normalises_by_the_database_cpu_of_the_same_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_result(CPU)))
    # A busier machine: everything took twice the CPU, the gateway three times.
    slower = {k: 2 * v for k, v in CPU.items()} | {"gateway": 1.5}
    new.write_text(json.dumps(_result(slower)))
    assert compare.main([str(old), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    gateway = next(line for line in lines if line.split()[:1] == ["gateway"])
    writer = next(line for line in lines if line.split()[:1] == ["writer"])
    assert gateway.split()[-1] == "+50%"  # 1.0 → 1.5 × the database's CPU per entry
    assert writer.split()[-1] == "+0%"
    assert compare.main([str(old), str(new), "--fail-above", "20"]) == 1
    assert compare.main([str(old), str(new), "--fail-above", "60"]) == 0


def test_the_docs_table_is_made_between_its_markers_and_checked(tmp_path: Path) -> None:
    result = tmp_path / "run.json"
    result.write_text(json.dumps(_result(CPU)))
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    args = ["--json", str(result), "--doc", str(doc)]
    assert report.main([*args, "--check"]) == 1
    assert report.main(args) == 0
    text = doc.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith("after\n")
    assert "old table" not in text
    assert "| PostgreSQL | 20,000 | 500 | 5,000 (2L×1W) | 0.25 | 10.0 | 40 ms |" in text
    assert "50 / 40 / 40 = **130** | 30 | 50 | 2.60 |" in text
    assert report.main([*args, "--check"]) == 0


@pytest.mark.skipif(not REFERENCE.exists(), reason="no committed reference run")
def test_docs_benchmarks_is_generated_from_the_committed_reference() -> None:
    assert report.main(["--check"]) == 0, "run: .venv/bin/python -m bench.report"


def test_cpu_of_a_command_is_summed_over_its_processes_differences() -> None:
    """A process that ends between the two readings (another session's database connection)
    must not make its command's sum go down, and so drop out, for the whole run."""
    before = {"11/postgres": 5.0, "12/postgres": 3.0, "13/beam.smp": 7.0, "gateway": 1.0}
    after = {"11/postgres": 6.0, "14/postgres": 0.5, "13/beam.smp": 8.0, "gateway": 1.5}
    assert cpu_delta(before, after) == {"postgres": 1.5, "beam.smp": 1.0, "gateway": 0.5}


def test_times_raw_is_against_the_raw_values_insert_not_the_fastest_strategy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18 measures the pipeline against raw multi-row VALUES; on PostgreSQL another
    strategy (fast_executemany) may be faster, and must not become the yardstick."""
    result = _result(CPU)
    db = result["databases"][0]
    db["best_batched"] = {"strategy": "fast_executemany", "rows_per_s": 40_000.0}
    db["raw_values"] = 20_000.0
    path = tmp_path / "run.json"
    path.write_text(json.dumps(result))
    assert "| PostgreSQL | 20,000 | 500 | 5,000 (2L×1W) | 0.25 |" in report.table(result)
    assert compare.main([str(path), str(path)]) == 0
    assert "0.25 × raw VALUES (20,000)" in capsys.readouterr().out


def _index(build_s: float, cpu_s: float) -> dict[str, Any]:
    return {
        "contacts": 1_000_000,
        "build_s": build_s,
        "build_cpu_s": cpu_s,
        "rss_mb": 80.0,
        "peak_rss_mb": 95.0,
        "lookups_per_cpu_s": 150_000,
        "load_average": 1.0,
    }


def _backfill(rate: float) -> dict[str, Any]:
    return {
        "database": "sqlite",
        "backfill": {
            "lookups": 2,
            "writers": 1,
            "throughput": {"entries": 1_000_000, "rate": rate},
            "peak_rss_mb": {"gateway": 60.0, "writer-1": 90.0},
        },
        "loadavg_at_start": [1.0, 1.0, 1.0],
    }


def test_backfill_and_index_results_are_compared_and_join_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps({**_backfill(6432.0), "index": _index(42.5, 40.0)}))
    new.write_text(json.dumps({**_backfill(13_000.0), "index": _index(18.0, 10.0)}))
    assert compare.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "old: 6,432 entries/s" in out and "new: 13,000 entries/s" in out
    assert "built in 42.5 s" in out and "built in 18.0 s" in out
    assert "build CPU seconds -75%" in out
    full = tmp_path / "full.json"
    full.write_text(json.dumps(_result(CPU)))
    assert report.main(["--json", str(full), "--also", str(new), "--stdout"]) == 0
    table = capsys.readouterr().out
    assert "Backfill of 1,000,000 entries into sqlite (2L×1W): 13,000 entries/s" in table
    assert "the largest process 90 MB" in table
    assert "Contact index of 1,000,000 contacts built in 18.0 s" in table
    assert table.rstrip().endswith(report.END)
