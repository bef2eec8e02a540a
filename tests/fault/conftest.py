"""Fault tests' fixtures: the session's own RabbitMQ node and `FaultRun`s on it (the helpers are
in tests/support/faults.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.faults import BrokerNode, FaultRun, _rabbit_bin, own_node
from tests.support.services import PIPELINES


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def broker_node() -> Iterator[BrokerNode]:
    try:
        _rabbit_bin("rabbitmq-server")
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with own_node() as node:
        yield node


@pytest.fixture
def node(broker_node: BrokerNode) -> BrokerNode:
    """The session's own node, running (a test that stopped it and failed is repaired here)."""
    if not broker_node.accepting():
        broker_node.start()
    return broker_node


@pytest.fixture
def fault_run(node: BrokerNode, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Build `FaultRun`s; their processes are stopped and their queues deleted afterwards."""
    made: list[FaultRun] = []
    pipelines = request.node.stash.setdefault(PIPELINES, [])

    def make(gateway: Mapping[str, Any], **kwargs: Any) -> FaultRun:
        run = FaultRun(node, tmp_path, gateway, **kwargs)
        made.append(run)
        pipelines.append(run.pipeline)
        return run

    yield make
    for run in made:
        run.close()
