"""/readyz means something: a gateway whose publishes stall turns not ready within the bound
(`health.stall_s` + the once-a-second check), stays healthy (alive), and turns ready again when
the broker lets it publish. The stall is real: the test's own RabbitMQ node under a memory alarm
(`set_vm_memory_high_watermark 0`) blocks every publishing connection, while the connection
itself stays up - the case where `broker_connected 1` looked healthy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.faults import TIMEZONE, BrokerNode, CtiServer
from tests.support.harness import Pipeline, free_port, http_get, wait_for
from tests.support.services import PIPELINES

pytestmark = pytest.mark.timeout(180)

STALL_S = 5.0
TICK_S = 1.0  # shared/health.py checks once a second


def _probe(*args: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", "cti_journal.cli", "probe", *args],
        capture_output=True, timeout=60, check=False,
    ).returncode  # fmt: skip


def test_readyz_turns_not_ready_when_publishing_stalls_and_back(
    node: BrokerNode, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = CtiServer(100_000, rate=100).start()
    port = free_port()
    settings: dict[str, Any] = {
        "broker": {"urls": [node.url], "reconnect_max_s": 2.0, "heartbeat_s": 10},
        "gateway": {"source": "tcp", "host": "127.0.0.1", "port": server.port,
                    "timezone": TIMEZONE, "metrics_port": port},
        "health": {"stall_s": STALL_S},
    }  # fmt: skip
    pipeline = Pipeline(tmp_path, node.url, settings)
    request.node.stash.setdefault(PIPELINES, []).append(pipeline)
    base = f"http://127.0.0.1:{port}"
    try:
        pipeline.start("gateway", "gateway")
        wait_for(lambda: http_get(f"{base}/readyz")[0] == 200, 60, "the gateway to be ready")
        assert _probe("--ready", "--port", str(port)) == 0

        alarm = node.ctl("set_vm_memory_high_watermark", "0")
        assert alarm.returncode == 0, alarm.stderr
        alarmed = time.monotonic()
        bound = STALL_S + 2 * TICK_S + 5  # + the time for the blocked connection to fill up
        wait_for(lambda: http_get(f"{base}/readyz")[0] == 503, bound, f"not ready within {bound} s")
        took = time.monotonic() - alarmed
        code, text = http_get(f"{base}/readyz")
        assert code == 503 and "publish: " in text and "no progress for" in text, text
        assert http_get(f"{base}/healthz") == (200, "ok\n")  # alive: do not restart it for this
        metrics = http_get(f"{base}/metrics")[1]
        assert "cti_journal_ready 0.0" in metrics
        assert "cti_journal_broker_connected 1.0" in metrics  # what used to look healthy
        assert "cti_journal_db_connected" not in metrics  # a gateway has no database
        assert _probe("--ready", "--port", str(port)) == 1
        assert _probe("--port", str(port)) == 0

        node.ctl("set_vm_memory_high_watermark", "0.4")
        wait_for(lambda: http_get(f"{base}/readyz")[0] == 200, 60, "ready again after the alarm")
        print(f"not ready {took:.1f} s after the memory alarm (stall_s = {STALL_S})")
        pipeline.assert_running()
    finally:
        node.ctl("set_vm_memory_high_watermark", "0.4")
        server.close()
        pipeline.stop()
        pipeline.delete_queues()
