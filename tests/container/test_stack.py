"""deploy/compose.yaml end to end with podman-compose: a gateway pair reading the simulator, two
look-ups, two writers, PostgreSQL, RabbitMQ and Prometheus, from the images an operator builds.

One stream of calls runs while each worker is stopped (`podman stop`: the graceful drain) and
started again, and containers are killed (SIGKILL) and restarted; every call must land exactly
once. While it runs, every query of the Grafana dashboard and every recording rule must return
data on the stack's Prometheus. The tests of this module share the one stack, in file order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pika
import pika.exceptions
import pyodbc
import pytest

from tests.container.podman import ROOT
from tests.container.stack import Stack, wait_until

pytestmark = pytest.mark.timeout(900)

COUNT, RATE = 6000, 50  # two minutes of calls: room for the stops, kills and scrapes
APP_PORTS = {"gateway": 9310, "gateway-b": 9310, "lookup": 9311, "writer": 9312}
WORKERS = ("lookup", "writer")
SERVICES = ("rabbitmq", "postgres", "gateway", "gateway-b", "lookup", "writer", "prometheus")
KEYS = ("in_out", "zeitpunkt", "verb_zustand", "rufnummer", "lokale_rufnummer", "rufdauer_ms",
        "verbdauer_sec")  # fmt: skip
COLUMNS = ("Journal_In_Out", "Journal_Zeitpunkt", "Journal_VerbZustand", "Journal_Rufnummer",
           "Journal_LokaleRufnummer", "Journal_Rufdauer_ms", "Journal_VerbDauer_sec")  # fmt: skip
DASHBOARD = ROOT / "deploy" / "grafana" / "cti-journal.json"
RECORDING = ROOT / "deploy" / "prometheus" / "recording.yml"


class Run:
    """The stack and what the stream test saw, for the tests after it."""

    def __init__(self, stack: Stack, expect: Path) -> None:
        self.stack = stack
        self.expect = expect
        self.empty_queries: dict[str, str] | None = None
        self.empty_rules: list[str] | None = None
        self.events: list[str] = []

    def sent(self) -> list[dict[str, Any]]:
        if not self.expect.exists():
            return []
        return [orjson.loads(line) for line in self.expect.read_bytes().splitlines() if line]

    def app_containers(self) -> dict[str, int]:
        """Every replica of the four processes → its metrics port."""
        out: dict[str, int] = {}
        for service, port in APP_PORTS.items():
            for index in (1, 2) if service in WORKERS else (1,):
                out[self.stack.name(service, index)] = port
        return out


@pytest.fixture(scope="module")
def run(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("stack")
    expect = work / "expect"
    expect.mkdir()
    expect.chmod(0o777)  # the simulator runs as the image's unprivileged user
    simulate = ["simulate", "--listen=0.0.0.0:4711", "--clients=2", f"--count={COUNT}",
                f"--rate={RATE}", "--seed=19", "--expect-out=/expect/sent.jsonl"]  # fmt: skip
    stack = Stack(
        f"ctij{os.getpid()}",
        work,
        images,
        services=SERVICES,
        overrides={
            "services": {"simulator": {"command": simulate, "volumes": [f"{expect}:/expect"]}}
        },
        env={"LOOKUP_WORKERS": "2", "WRITERS": "2"},
    )
    stack.force_remove()
    try:
        stack.up()
        yield Run(stack, expect / "sent.jsonl")
    finally:
        stack.force_remove()
        stack.remove_secrets()


def _healthy(run: Run, container: str) -> bool:
    return run.stack.healthcheck(container)


def test_every_container_turns_healthy_and_every_process_ready(run: Run) -> None:
    stack = run.stack
    for container in [stack.name("rabbitmq"), stack.name("postgres"), *run.app_containers()]:
        wait_until(lambda c=container: _healthy(run, c), 180, f"{container} healthy")  # type: ignore[misc]
    for container, port in run.app_containers().items():
        wait_until(
            lambda c=container, p=port: stack.http_status(c, p, "/readyz") == 200,  # type: ignore[misc]
            120,
            f"{container} /readyz",
        )
    states = stack.containers()
    topology = states.pop(stack.name("topology"))  # the one-shot declaration, done in up()
    assert topology == "exited", topology
    assert all(state == "running" for state in states.values()), states


def test_the_broker_lets_only_the_role_users_in_from_the_network(run: Run) -> None:
    """The official RabbitMQ image lets `guest` (password guest) in from the network; the
    compose file takes that back (rabbitmq/90-cti-journal.conf). A role user of setup-user.sh
    gets in from the same address, so the refusal is the login's, not the network's."""
    from tests.container.stack import SECRETS

    host = run.stack.ip(run.stack.name("rabbitmq"))
    url = (SECRETS / "amqp-url-admin").read_text(encoding="utf-8").strip()
    admin = pika.URLParameters(url.replace("@rabbitmq:", f"@{host}:"))
    pika.BlockingConnection(admin).close()
    guest = pika.URLParameters(f"amqp://guest:guest@{host}:5672/%2F")
    with pytest.raises(pika.exceptions.AMQPConnectionError) as refused:
        pika.BlockingConnection(guest).close()
    assert "ACCESS_REFUSED" in repr(refused.value) or isinstance(
        refused.value,
        pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError,
    ), repr(refused.value)


def _progress(run: Run) -> int:
    path = run.expect
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _at(run: Run, share: float, action: Callable[[], None], what: str) -> None:
    wait_until(lambda: _progress(run) >= COUNT * share, 300, f"{share:.0%} of the calls sent")
    action()
    run.events.append(f"{what} at {_progress(run)}")


def _stop_and_start(run: Run, container: str) -> None:
    run.stack.stop(container)
    code = run.stack.exit_code(container)
    assert code == 0, f"{container} exited {code} on podman stop:\n{run.stack.logs(container)}"
    run.stack.start(container)


def _kill_and_start(run: Run, container: str) -> None:
    run.stack.kill(container)
    run.stack.start(container)


def _dashboard_queries() -> dict[str, str]:
    """Each target expression of the dashboard as Grafana sends it (its variables filled in)."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m")
            expr = expr.replace("$prefix", "cti-journal")
            out[f"{panel['title']} [{target.get('refId', '?')}]: {target['expr']}"] = expr
    return out


def _recorded_names() -> list[str]:
    yaml = pytest.importorskip("yaml")
    rules = yaml.safe_load(RECORDING.read_text(encoding="utf-8"))
    return [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]


def _empty_queries(run: Run) -> dict[str, str]:
    empty = {}
    for title, expr in _dashboard_queries().items():
        if not run.stack.prometheus("query", query=expr)["result"]:
            empty[title] = expr
    return empty


def _look_at_the_dashboard(run: Run) -> None:
    """Under load, once Prometheus holds a minute of it (the panels' rate windows): every query
    answers. A query may need a scrape or two more after a restart, so it gets 60 s."""
    deadline = time.monotonic() + 60
    empty = _empty_queries(run)
    while empty and time.monotonic() < deadline:
        time.sleep(5)
        empty = _empty_queries(run)
    run.empty_queries = empty
    query = run.stack.prometheus
    run.empty_rules = [
        name for name in _recorded_names() if not query("query", query=name)["result"]
    ]


def test_a_stream_survives_stops_and_kills_of_every_process(run: Run) -> None:
    stack = run.stack
    started = time.monotonic()
    stack.compose("up", "-d", "--no-recreate", "simulator")
    plan: list[tuple[float, str, Callable[[], None]]] = [
        (0.08, "podman stop lookup 1", lambda: _stop_and_start(run, stack.name("lookup", 1))),
        (0.16, "podman stop lookup 2", lambda: _stop_and_start(run, stack.name("lookup", 2))),
        (0.24, "podman stop writer 1", lambda: _stop_and_start(run, stack.name("writer", 1))),
        (0.32, "podman stop writer 2", lambda: _stop_and_start(run, stack.name("writer", 2))),
        (0.40, "podman stop gateway", lambda: _stop_and_start(run, stack.name("gateway"))),
        (0.48, "SIGKILL gateway-b", lambda: _kill_and_start(run, stack.name("gateway-b"))),
        (0.56, "SIGKILL writer 1", lambda: _kill_and_start(run, stack.name("writer", 1))),
        (0.62, "SIGKILL lookup 2", lambda: _kill_and_start(run, stack.name("lookup", 2))),
        (0.80, "dashboard under load", lambda: _look_at_the_dashboard(run)),
    ]
    for share, what, action in plan:
        _at(run, share, action, what)
    simulator = stack.name("simulator")
    wait_until(lambda: stack.containers().get(simulator) == "exited", 300, "the simulator to end")
    assert stack.exit_code(simulator) == 0, stack.logs(simulator)
    sent = run.sent()
    assert len(sent) == COUNT

    dsn = stack.dsn()
    wait_until(lambda: _row_count(dsn) >= COUNT, 300, f"{COUNT} rows")
    time.sleep(5)  # a late duplicate would land now
    expected = Counter(_key(entry) for entry in sent)
    got = Counter(_row_key(row) for row in _rows(dsn))
    missing, doubled = expected - got, got - expected
    assert not missing and not doubled, (
        f"sent {COUNT}, rows {sum(got.values())}, missing {sum(missing.values())}, "
        f"doubled {sum(doubled.values())} ({run.events}); e.g. {list(missing)[:3]} "
        f"{list(doubled)[:3]}"
    )
    assert _queue_messages(run, "cti-journal.dead") == 0
    print(f"stream of {COUNT} calls at {RATE}/s with {run.events}: "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip


def test_every_dashboard_query_and_recording_rule_had_data_under_load(run: Run) -> None:
    assert run.empty_queries is not None, "the stream test did not get to the dashboard"
    assert not run.empty_queries, "panels without data under load:\n" + "\n".join(run.empty_queries)
    assert not run.empty_rules, f"recording rules without data: {run.empty_rules}"


def test_prometheus_scrapes_every_replica(run: Run) -> None:
    """Each of the seven processes and RabbitMQ is an `up` target (restarted containers may
    come back with new addresses: DNS discovery refreshes every 30 s)."""
    ips = {run.stack.ip(c): c for c in run.app_containers()}

    def scraped() -> bool:
        targets = run.stack.prometheus("targets")["activeTargets"]
        up = {t["labels"]["instance"].rsplit(":", 1)[0] for t in targets if t["health"] == "up"}
        jobs = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        return set(ips) <= up and "rabbitmq" in jobs

    wait_until(scraped, 120, f"Prometheus to scrape {sorted(ips.values())}", interval=5)


def test_down_removes_every_container_and_volume(run: Run) -> None:
    stack = run.stack
    stack.compose("down", "-v", "-t", "30", timeout=600)
    assert stack.leftovers() == []


# -- the journal ---------------------------------------------------------------------------------
def _row_count(dsn: str) -> int:
    conn = pyodbc.connect(dsn, autocommit=True, timeout=5)
    try:
        return int(conn.cursor().execute("SELECT COUNT(*) FROM journal").fetchone()[0])
    finally:
        conn.close()


def _rows(dsn: str) -> list[Any]:
    conn = pyodbc.connect(dsn, autocommit=True, timeout=5)
    try:
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        return list(conn.cursor().execute(f"SELECT {columns} FROM journal").fetchall())
    finally:
        conn.close()


def _key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(None if entry.get(k) in ("", None) else str(entry[k]) for k in KEYS)


def _row_key(row: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for value in row:
        if isinstance(value, dt.datetime):
            value = value.strftime("%Y-%m-%d %H:%M:%S")
        out.append(None if value in ("", None) else str(value))
    return tuple(out)


def _queue_messages(run: Run, queue: str) -> int:
    out = run.stack.compose("exec", "-T", "rabbitmq", "rabbitmqctl", "list_queues", "-q", "-p",
                            "cti-journal", "name", "messages").stdout  # fmt: skip
    for line in out.splitlines():
        name, _, count = line.strip().partition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"no queue {queue}: {out}")
