"""A broker that refuses every publish, on the session's own node (tests/fault/conftest.py): the
link backs off, says so once with the broker's reason, sets publish_degraded, reopens the
connection after REOPEN_AFTER_ROUNDS, and recovers by itself once publishes are taken again; a
gateway stopped meanwhile does not wait out its whole drain.

Refusals here are returns (an unroutable routing key, `mandatory`): a cluster's stuck nacks
(tests/fault/test_cluster.py) take the same path through `AmqpLink._publish_refused`. Before
that path existed the same pump re-sent thousands of times a second, logging nothing.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest

from cti_journal.shared.amqp import AmqpLink, run_in_thread
from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.metrics import make_metrics
from tests.support.faults import BrokerNode, DayLog, FaultRun
from tests.support.harness import wait_for

pytestmark = pytest.mark.timeout(120)


class Pump:
    """Publishes to `key` whenever the link lets it, as the gateway's publisher does: a refused
    message is sent again once the link's hold has passed."""

    def __init__(self, link: AmqpLink, key: str) -> None:
        self.link, self.key = link, key
        self.sent = self.confirmed = 0
        self.waiting = 0

    def pump(self) -> None:
        while self.waiting == 0 and self.link.can_publish(10):
            if not self.link.publish(self.key, b"{}", self._confirmed):
                return
            self.sent += 1
            self.waiting += 1
        if self.link.holding:
            self.link.call_later(self.link.retry_in_s(), self.pump)

    def _confirmed(self, ok: bool) -> None:
        self.waiting -= 1
        self.confirmed += ok
        self.link.call_later(0 if ok else self.link.retry_in_s(), self.pump)


def test_refused_publishes_back_off_reopen_and_recover(
    node: BrokerNode, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    broker = BrokerSettings(urls=(node.url,), prefix=prefix, reconnect_max_s=1.0)
    metrics = make_metrics()
    key = "nowhere"  # no queue is bound to it (yet)
    pump: Pump | None = None
    ready = threading.Event()

    def on_ready() -> None:
        ready.set()
        assert pump is not None
        pump.pump()

    link = AmqpLink(broker, name="refusals", metrics=metrics, on_ready=on_ready)
    pump = Pump(link, key)

    def gauge(name: str) -> Any:
        return metrics.registry.get_sample_value(f"cti_journal_{name}")

    caplog.set_level(logging.INFO, logger="cti_journal.shared.amqp")
    thread = run_in_thread(link)
    try:
        wait_for(ready.is_set, 30, "the link to connect")
        time.sleep(4.0)
        refused_for_4s = pump.sent
        assert gauge("publish_degraded") == 1
        assert gauge("broker_connected") == 1  # connected, and saying so; degraded is separate
        assert any("publishes degraded" in r for r in metrics.health.check().reasons)
        messages = [r.getMessage() for r in caplog.records]
        refusals = [m for m in messages if "refused publishes:" in m]
        assert len(refusals) == 1, messages  # once per change of state, not per publish
        assert "returned 312 NO_ROUTE" in refusals[0]
        assert any("reopening the connection" in m for m in messages), messages
        # 4 s of holds of 0.25 s doubling up to 1 s: about a dozen sends, never a tight loop
        assert refused_for_4s <= 30, refused_for_4s

        with pika.BlockingConnection(pika.URLParameters(node.url)) as conn:
            ch = conn.channel()
            ch.queue_declare(f"{prefix}.{key}", exclusive=False, auto_delete=True)
            ch.queue_bind(f"{prefix}.{key}", prefix, key)
            wait_for(lambda: pump is not None and pump.confirmed > 0, 15, "a confirm")
            assert gauge("publish_degraded") == 0
            assert metrics.health.check().ready
            assert any("back after" in r.getMessage() for r in caplog.records)
            ch.queue_delete(f"{prefix}.{key}")
            print(f"{refused_for_4s} sends in 4 s of refusals")
    finally:
        link.stop()
        thread.join(timeout=10)
        link.ioloop.close()  # its wake-up socket pair; a process just exits
        with pika.BlockingConnection(pika.URLParameters(node.url)) as conn:
            ch = conn.channel()
            for spec in link.topology.queues():
                ch.queue_delete(spec.name)
            ch.exchange_delete(prefix)


def test_gateway_stops_promptly_while_every_publish_is_refused(
    fault_run: Any, tmp_path: Path
) -> None:
    """A policy caps the lookup queue at one message with its lookup worker stopped: every
    publish is nacked (`reject-publish`), whatever connection or channel the gateway opens. A
    SIGTERM then stops the gateway within seconds (not the 30 s drain), saying how many entries
    it holds; with the policy gone and the gateway restarted, the file source re-reads from its
    checkpoint and every entry becomes one row."""
    count = 3000
    day = tmp_path / "Journal" / "day.log"
    day.parent.mkdir(parents=True)
    source = DayLog(day, count, rate=300, rotate_every=count + 1, seed=31)
    run: FaultRun = fault_run({"source": "file", "path": str(day)})
    policy = f"refuse-{run.pipeline.prefix}"
    try:
        run.start_all()
        source.start()
        run.wait_rows(300, 60)
        run.pipeline.kill("lookup-1", signal.SIGTERM)
        lookup = re.escape(run.pipeline.topology.queue("lookup"))
        set_policy = run.node.ctl("set_policy", "--apply-to", "queues", policy, f"^{lookup}$",
                                  '{"max-length": 1}')  # fmt: skip
        assert set_policy.returncode == 0, set_policy.stderr
        wait_for(lambda: "refused publishes" in run.log("gateway"), 30, "the refusal logged")
        time.sleep(1)
        began = time.monotonic()
        run.pipeline.kill("gateway", signal.SIGTERM)
        stop_s = time.monotonic() - began
        log = run.log("gateway")
        held = re.search(r"stopping with (\d+) entries not confirmed", log)
        print(f"SIGTERM while refused: stopped after {stop_s:.1f} s; {held and held.group(0)}")
        assert held is not None, log[-2000:]
        assert int(held.group(1)) > 0
        assert stop_s < 15, f"the stop took {stop_s:.1f} s"
        assert log.count("refused publishes:") == 1, log[-3000:]
        run.node.ctl("clear_policy", policy)
        run.start("lookup-1")
        run.start("gateway")
        result, dead = run.finish(source, count)
    finally:
        source.close()
        run.node.ctl("clear_policy", policy)
    print(result)
    assert result.ok, str(result)
    assert dead == []
