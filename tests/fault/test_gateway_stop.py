"""A gateway stopped (SIGTERM) while the broker is away, with the default config: what it read is
in its spool (on by default), it exits 0, and after the restart every entry arrives once. With
the spool turned off, the same stop exits 1 and says how many entries it loses."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from tests.support.faults import BrokerNode, own_node
from tests.support.harness import Pipeline, free_port, wait_for

pytestmark = pytest.mark.timeout(180)
COUNT = 300


@pytest.fixture(scope="module")
def node() -> Iterator[BrokerNode]:
    """A node of this module's own, not the session's: these tests stop it while a gateway holds
    unconfirmed publishes, and afterwards RabbitMQ 3.10.8 here refused operations on quorum
    queues declared later ("master replica … may be stopping or being demoted"), which failed
    the tests that ran after them on the shared node."""
    with own_node(f"cti-stop-{os.getpid()}@localhost") as fresh:
        yield fresh


def _lines() -> bytes:
    fmt = LineFormat(timezone="Europe/Berlin")
    return b"".join(fmt.format(v) for v in generate_calls(11, COUNT))


def _gateway(node: Any, tmp_path: Path, **gateway: Any) -> tuple[Pipeline, int]:
    port = free_port()
    settings = {
        "broker": {"urls": [node.url], "reconnect_max_s": 1.0},
        "gateway": {"source": "listen", "listen_port": port, "timezone": "Europe/Berlin",
                    "preenriched": "lookup", **gateway},
    }  # fmt: skip
    pipeline = Pipeline(tmp_path, node.url, settings)
    pipeline.start("gateway", "gateway")
    wait_for(lambda: "connected to broker" in pipeline.log("gateway"), 60, "the gateway")
    return pipeline, port


def _stop_with_the_broker_away(node: Any, pipeline: Pipeline, port: int) -> int:
    node.stop()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(_lines())
    wait_for(lambda: "disconnected" in pipeline.log("gateway"), 30, "the client's lines")
    proc = pipeline.procs["gateway"]
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_default_spool_keeps_what_a_stop_with_the_broker_away_holds(node: Any, tmp_path: Path):
    pipeline, port = _gateway(node, tmp_path)
    try:
        code = _stop_with_the_broker_away(node, pipeline, port)
        node.start()
        pipeline.start("gateway", "gateway")
        wait_for(lambda: pipeline.entry_count("lookup") >= COUNT, 60, f"{COUNT} entries")
        entries = pipeline.entries("lookup", remove=True)
    finally:
        if not node.accepting():
            node.start()
        pipeline.stop()
        pipeline.delete_queues()
    assert code == 0
    assert f"stopping with {COUNT} entries not confirmed" in pipeline.log("gateway")
    assert "they stay in the spool" in pipeline.log("gateway")
    assert len(entries) == COUNT
    assert len({e["event_id"] for e in entries}) == COUNT


def test_without_a_spool_such_a_stop_exits_non_zero_and_says_how_many(
    node: Any, tmp_path: Path
) -> None:
    pipeline, port = _gateway(node, tmp_path, spool=False)
    try:
        code = _stop_with_the_broker_away(node, pipeline, port)
    finally:
        node.start()
        pipeline.stop()
        pipeline.delete_queues()
    assert code == 1
    log = pipeline.log("gateway")
    assert f"stopping with {COUNT} entries not confirmed by the broker and no spool" in log
