"""The file source and `import` against the real broker: rotation, restart, SIGKILL, re-import.

The gateway runs as a real process; the test reads what it published straight from the lookup
queue, so what is checked is exactly the set of messages (and event ids) the pipeline gets.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson

from cti_journal.shared.loader import load_settings
from cti_journal.simulator.calls import generate_calls
from cti_journal.simulator.server import Simulator
from tests.support.harness import Pipeline, wait_for


def drain_lookup_queue(pipeline: Pipeline) -> list[dict[str, object]]:
    """Every entry in <prefix>.lookup, removed."""
    return pipeline.entries("lookup", remove=True)


def published(pipeline: Pipeline) -> int:
    return pipeline.entry_count("lookup") + pipeline.entry_count("write")


def file_pipeline(pipeline_factory, tmp_path: Path) -> tuple[Pipeline, Path]:
    day = tmp_path / "Journal" / "day.log"
    day.parent.mkdir()
    day.touch()
    pipeline = pipeline_factory(
        {
            "gateway": {
                "source": "file",
                "path": str(day),
                "timezone": "Europe/Berlin",
                "preenriched": "lookup",
            }
        }
    )
    return pipeline, day


def write_day_log(day: Path, count: int, seed: int, rotate_every: int = 0, rate: float = 0) -> int:
    sim = Simulator(generate_calls(seed, count), rate=rate)
    return sim.write_file(day, rotate_every=rotate_every)


def test_tail_follows_rotation_and_resumes_after_restart(pipeline_factory, tmp_path):
    pipeline, day = file_pipeline(pipeline_factory, tmp_path)
    pipeline.start("gateway", "gateway")
    wait_for(lambda: "tailing" in pipeline.log("gateway"), 30, "the gateway to tail day.log")
    # Written while the gateway tails it, with day changes in between.
    writer = threading.Thread(target=write_day_log, args=(day, 3000, 11, 1000, 1000))
    writer.start()
    writer.join(timeout=60)
    wait_for(lambda: published(pipeline) >= 3000, 60, "3000 entries published")
    pipeline.kill("gateway", signal.SIGTERM)
    # Restart: nothing new was written, so nothing may be published again.
    pipeline.start("gateway2", "gateway")
    wait_for(lambda: "tailing" in pipeline.log("gateway2"), 30, "the restarted gateway")
    write_day_log(day, 200, 12)  # then 200 more after the restart
    wait_for(lambda: published(pipeline) >= 3200, 60, "3200 entries published")
    pipeline.kill("gateway2", signal.SIGTERM)
    messages = drain_lookup_queue(pipeline)
    ids = [m["event_id"] for m in messages]
    assert len(ids) == 3200, "a graceful restart re-sends nothing"
    assert len(set(ids)) == 3200, "every entry once, identical calls kept apart"
    assert (tmp_path / "Journal" / "journal.log").stat().st_size > 0


def test_sigkill_loses_nothing_and_republishes_with_the_same_ids(pipeline_factory, tmp_path):
    pipeline, day = file_pipeline(pipeline_factory, tmp_path)
    expected = write_day_log(day, 4000, 21)
    pipeline.start("gateway", "gateway")
    wait_for(lambda: published(pipeline) >= 1000, 60, "some entries published")
    pipeline.kill("gateway", signal.SIGKILL)  # mid-stream, checkpoint behind the confirms
    pipeline.start("gateway2", "gateway")
    wait_for(lambda: len(set(_ids_peek(pipeline))) >= expected, 90, "all entries published")
    pipeline.kill("gateway2", signal.SIGTERM)
    ids = [m["event_id"] for m in drain_lookup_queue(pipeline)]
    # Re-published entries carry the ids they had: the writer's ledger makes them one row.
    assert len(set(ids)) == expected
    reference = _reference_ids(pipeline, day)
    assert set(ids) == reference


def _ids_peek(pipeline: Pipeline) -> list[str]:
    return [str(e["event_id"]) for e in pipeline.entries("lookup")]


def _reference_ids(pipeline: Pipeline, day: Path) -> set[str]:
    """The ids a fresh, uninterrupted reading of the file gives."""
    from cti_journal.gateway.lines import LineSplitter
    from cti_journal.gateway.prepare import Preparer
    from cti_journal.shared.metrics import make_metrics

    settings = load_settings(pipeline.config)
    preparer = Preparer(settings.gateway, make_metrics())
    lines = LineSplitter(settings.gateway.max_line_bytes).feed(day.read_bytes())
    return {orjson.loads(preparer.prepare(line, "t", 0.0).body)["event_id"] for line in lines}


def test_import_twice_publishes_the_same_ids(pipeline_factory, tmp_path):
    pipeline, day = file_pipeline(pipeline_factory, tmp_path)
    journal = day.with_name("journal.log")
    expected = write_day_log(day, 1500, 31, rotate_every=500)
    assert day.stat().st_size == 0 and journal.stat().st_size > 0
    runs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "cti_journal.cli", "import", "-c",
             str(pipeline.config), str(journal)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        assert f"{expected} entries confirmed".encode() in result.stderr
        runs.append(sorted(m["event_id"] for m in drain_lookup_queue(pipeline)))
    assert len(runs[0]) == expected
    assert runs[0] == runs[1], "a second import must produce the very same event ids"
