"""Issue 20, finding 15: deploy/rabbitmq/setup-user.sh makes one user per role with what that
role needs, checked against the real RabbitMQ on a vhost of the test's own: each role can do its
job (declare the topology, publish, consume its own queue) and cannot read another role's queue,
publish anywhere but the project's exchange, touch names outside the prefix, or reach another
vhost. KEDA's user can only read queue lengths."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.declare import TopologyError, declare_topology_blocking

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "setup-user.sh"
QUEUES = ("lookup", "write", "dead")
CAN_READ = {"gateway": set(), "lookup": {"lookup"}, "writer": {"write"}}


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def roles(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    tmp_path = tmp_path_factory.mktemp("roles")
    if shutil.which("rabbitmqctl") is None or _ctl("status").returncode != 0:
        pytest.skip("rabbitmqctl cannot reach the local node")
    tag = uuid.uuid4().hex[:8]
    vhost, user, prefix = f"t-roles-{tag}", f"t-{tag}", f"p{tag}.cti"
    done = subprocess.run(
        ["bash", str(SCRIPT), "--vhost", vhost, "--user", user, "--prefix", prefix,
         "--url-host", "127.0.0.1", "--plain", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=400,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        urls = {p.name.removeprefix("amqp-url-"): p.read_text().strip()
                for p in tmp_path.glob("amqp-url-*")}  # fmt: skip
        assert set(urls) == {"gateway", "lookup", "writer", "admin", "keda"}
        assert all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.glob("amqp-url-*"))
        yield prefix, urls
    finally:
        _ctl("delete_vhost", vhost)
        for role in ("gateway", "lookup", "writer", "admin", "keda"):
            _ctl("delete_user", f"{user}-{role}")


def _refused(action) -> bool:  # type: ignore[no-untyped-def]
    try:
        action()
    except pika.exceptions.ChannelClosedByBroker as exc:
        return bool(exc.reply_code == 403)
    return False


def _channel(url: str):  # type: ignore[no-untyped-def]
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.confirm_delivery()
    return conn, channel


def test_each_role_does_its_job_and_nothing_else(roles: tuple[str, dict[str, str]]) -> None:
    prefix, urls = roles
    # The admin declares the topology (check --only broker); the process roles cannot.
    declare_topology_blocking(BrokerSettings(urls=(urls["admin"],), prefix=prefix))
    for role in ("gateway", "lookup", "writer"):
        with pytest.raises(TopologyError, match="ACCESS_REFUSED"):
            declare_topology_blocking(BrokerSettings(urls=(urls[role],), prefix=prefix))
        for queue in QUEUES:
            conn, ch = _channel(urls[role])
            try:  # every role publishes (entries, retries, dead letters) through the exchange
                ch.basic_publish(prefix, queue, b"{}", pika.BasicProperties(delivery_mode=2))
                name = f"{prefix}.{queue}"
                refused = _refused(lambda n=name, c=ch: c.basic_get(n, auto_ack=False))
                assert refused == (queue not in CAN_READ[role]), (role, queue)
            finally:
                if conn.is_open:
                    conn.close()
        for forbidden in (
            lambda ch: ch.basic_publish("amq.direct", "x", b"{}"),  # another exchange
            lambda ch: ch.basic_publish("", f"{prefix}.write", b"{}"),  # straight into a queue
            lambda ch: ch.queue_declare("other-queue"),  # a name outside the prefix
            lambda ch: ch.queue_delete(f"{prefix}.write"),  # configure: nobody's but the admin's
            lambda ch: ch.queue_purge(f"{prefix}.dead"),
        ):
            conn, ch = _channel(urls[role])
            try:
                assert _refused(lambda f=forbidden, c=ch: f(c)), role
            finally:
                if conn.is_open:
                    conn.close()
        other_vhost = urls[role].rsplit("/", 1)[0] + "/%2F"
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(pika.URLParameters(other_vhost))
    conn, ch = _channel(urls["admin"])  # dlq and subject requests read the dead letters
    try:
        assert ch.basic_get(f"{prefix}.dead", auto_ack=False)[0] is not None
    finally:
        conn.close()


def test_keda_reads_queue_lengths_only(roles: tuple[str, dict[str, str]]) -> None:
    prefix, urls = roles
    declare_topology_blocking(BrokerSettings(urls=(urls["admin"],), prefix=prefix))
    conn, ch = _channel(urls["keda"])
    try:
        assert ch.queue_declare(f"{prefix}.lookup", passive=True).method.message_count >= 0
    finally:
        conn.close()
    for action in (
        lambda ch: ch.basic_publish(prefix, "lookup", b"{}"),
        lambda ch: ch.basic_get(f"{prefix}.lookup", auto_ack=False),
        lambda ch: ch.queue_declare(f"{prefix}.lookup", durable=True),
    ):
        conn, ch = _channel(urls["keda"])
        try:
            assert _refused(lambda a=action, c=ch: a(c))
        finally:
            if conn.is_open:
                conn.close()
    with pytest.raises(TopologyError):
        declare_topology_blocking(BrokerSettings(urls=(urls["keda"],), prefix=prefix))


def test_check_finds_the_topology_without_configure_rights(
    roles: tuple[str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cti_journal.cli.main import main
    from tests.support.harness import to_toml

    prefix, urls = roles
    declare_topology_blocking(BrokerSettings(urls=(urls["admin"],), prefix=prefix))
    config = tmp_path / "gateway.toml"
    broker = {"urls": [urls["gateway"]], "prefix": prefix, "declare_topology": False}
    config.write_text(to_toml({"broker": broker}))
    assert main(["check", "-c", str(config), "--only", "broker"]) == 0
    out = capsys.readouterr().out
    assert "topology found" in out and "gateway:***@" in out
    broker["declare_topology"] = True
    config.write_text(to_toml({"broker": broker}))
    assert main(["check", "-c", str(config), "--only", "broker"]) == 2  # it may not declare
