"""A three-node RabbitMQ cluster on hosts of the test's own: Linux network namespaces.

Each node runs in a namespace of its own with its own address on a bridge (`10.x.y.11-13`),
the pipeline processes in two more (`gw` for the gateway, `wk` for lookups and writers), and the
test itself reaches them all from the bridge's address (`.1`). The nodes use Erlang long names
(`ctij1@10.x.y.11`), so they find each other by IP through their own epmd, exactly as on three
machines; none of this touches the machine's shared RabbitMQ, its epmd or its ports (each
namespace has its own network stack). A partition is `ip link set <veth> down`: the node can
reach nobody, and nobody it.

Needs root (`ip netns`); `netns_available()` says whether this machine allows it.

Nodes 2 and 3 join node 1 at their first boot (classic peer discovery), which saves the
stop_app / join_cluster / start_app round trips: the cluster is up in ~20 s on two cores.
Everything is removed at the end: the processes started in the namespaces (by the pids the
namespaces hold), the namespaces, the bridge, the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.support.harness import Pipeline, wait_for

_BIN = Path("/usr/lib/rabbitmq/bin")
AMQP_PORT = 5672  # inside each node's own namespace: no clash with the shared node's


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def netns_available() -> str | None:
    """None if this machine lets us create namespaces, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    if not (_BIN / "rabbitmq-server").exists():
        return "RabbitMQ is not installed"
    name = f"cjprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


class Hosts:
    """A bridge in the root namespace and named hosts (namespaces) on it."""

    def __init__(self) -> None:
        self.tag = f"cj{os.getpid() % 100000}"
        self.bridge = f"{self.tag}br"
        self.subnet = self._free_subnet()
        self.hosts: dict[str, str] = {}  # name -> address
        self.veths: dict[str, str] = {}  # name -> root-side veth
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    @staticmethod
    def _free_subnet() -> str:
        used = _ip("-4", "addr").stdout
        while True:
            subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
            if f" {subnet}." not in used:
                return subnet

    @property
    def local_address(self) -> str:
        """The test's own address on the bridge."""
        return f"{self.subnet}.1"

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def add(self, name: str, host_byte: int) -> str:
        ns, veth = self.ns(name), f"{self.tag}{name}"[:15]
        address = f"{self.subnet}.{host_byte}"
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", self.bridge)
        _ip("link", "set", veth, "up")
        for cmd in (
            ["addr", "add", f"{address}/24", "dev", "eth0"],
            ["link", "set", "eth0", "up"],
            ["link", "set", "lo", "up"],
        ):
            _ip("-n", ns, *cmd)
        self.hosts[name], self.veths[name] = address, veth
        return address

    def cut(self, name: str) -> None:
        """Partition: the host's cable is pulled."""
        _ip("link", "set", self.veths[name], "down")

    def mend(self, name: str) -> None:
        _ip("link", "set", self.veths[name], "up")

    def prefix(self, name: str) -> list[str]:
        """The argv prefix that runs a command on host `name`."""
        return ["ip", "netns", "exec", self.ns(name)]

    def remove(self) -> None:
        for name in self.hosts:
            ns = self.ns(name)
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:  # what we started there: the nodes, their epmd, pipeline processes
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.bridge, check=False)


class ClusterNode:
    """One RabbitMQ node on its own host: start, SIGKILL, start again."""

    def __init__(self, hosts: Hosts, base: Path, index: int, cookie: str, seed: str | None):
        self.hosts = hosts
        self.host = f"n{index}"
        self.address = hosts.add(self.host, 10 + index)
        self.name = f"ctij{index}@{self.address}"
        self.base = base
        self.os_pid: int | None = None
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        conf = [
            f"listeners.tcp.1 = 0.0.0.0:{AMQP_PORT}",
            # hosts of the test's own, reachable only from the bridge: guest may log in remotely
            "loopback_users = none",
            # the minority side of a partition stops serving, so that clients go elsewhere
            "cluster_partition_handling = pause_minority",
        ]
        if seed is not None:  # join the seed node at first boot
            conf += [
                "cluster_formation.peer_discovery_backend = classic_config",
                f"cluster_formation.classic_config.nodes.1 = {seed}",
            ]
        (base / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
        (base / "rabbitmq-env.conf").write_text("")
        (base / "advanced.config").write_text("[].\n")
        cookie_file = base / ".erlang.cookie"
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o400)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_USE_LONGNAME": "true",
            "RABBITMQ_NODE_PORT": str(AMQP_PORT),
            "RABBITMQ_DIST_PORT": "25672",
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            # a cut cable is noticed within ~10 s instead of the default ~60 s
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel net_ticktime 10",
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.address}:{AMQP_PORT}/%2F"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.hosts.prefix(self.host), str(_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def accepting(self) -> bool:
        try:
            with socket.create_connection((self.address, AMQP_PORT), timeout=1):
                return True
        except OSError:
            return False

    def launch(self) -> None:
        """Start the VM (returns at once; `wait_started` waits for it)."""
        (self.base / "pid").unlink(missing_ok=True)
        with open(self.base / "log" / "start.out", "ab") as out:
            subprocess.run(
                [*self.hosts.prefix(self.host), str(_BIN / "rabbitmq-server"), "-detached"],
                env=self.env, cwd=self.base, stdout=out, stderr=subprocess.STDOUT,
                check=True, timeout=30,
            )  # fmt: skip

    def wait_started(self, timeout: float = 120) -> None:
        wait_for(self.accepting, timeout, f"{self.name} to accept AMQP", 0.25)
        pid = (self.base / "pid").read_text().strip()
        self.os_pid = int(pid) if pid.isdigit() else None

    def start(self, timeout: float = 120) -> None:
        self.launch()
        self.wait_started(timeout)

    def kill(self) -> None:
        """SIGKILL the VM: a power cut of this broker host."""
        if self.os_pid is not None and _alive(self.os_pid):
            os.kill(self.os_pid, signal.SIGKILL)
            wait_for(lambda: not _alive(self.os_pid or 0), 30, f"{self.name} to die")
        self.os_pid = None

    def queue_leaders(self) -> dict[str, str]:
        """queue name -> the node holding its leader, as this node sees it."""
        out = self.ctl("list_queues", "name", "leader", "--formatter", "json", "-q").stdout
        with contextlib.suppress(ValueError):
            return {q["name"]: q["leader"] for q in json.loads(out or "[]")}
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if (Path("/proc") / str(pid) / "stat").read_text().split()[2] == "Z":
            return False
    return True


class Cluster:
    def __init__(self, hosts: Hosts, base: Path) -> None:
        self.hosts = hosts
        cookie = secrets.token_hex(16)
        self.nodes: list[ClusterNode] = []
        for i in (1, 2, 3):
            seed = self.nodes[0].name if self.nodes else None
            self.nodes.append(ClusterNode(hosts, base / f"node{i}", i, cookie, seed))
        hosts.add("gw", 20)
        hosts.add("wk", 21)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> None:
        self.nodes[0].start()
        for node in self.nodes[1:]:  # both join node 1 at their first boot
            node.launch()
        for node in self.nodes[1:]:
            node.wait_started()
        self.await_nodes(3)

    def await_nodes(self, count: int, timeout: float = 120) -> None:
        """Until `count` nodes run, asked of any node that answers (a paused minority node, or one
        still booting, refuses the question: ask the next)."""
        deadline = time.monotonic() + timeout
        errors: list[str] = []
        while time.monotonic() < deadline:
            for node in (n for n in self.nodes if n.os_pid is not None):
                left = max(1, int(deadline - time.monotonic()))
                result = node.ctl("await_online_nodes", str(count), "--timeout", str(left),
                                  timeout=left + 10)  # fmt: skip
                if result.returncode == 0:
                    return
                errors.append(f"{node.name}: {result.stderr.strip()[:200]}")
            time.sleep(1)
        raise AssertionError(f"the cluster did not reach {count} nodes: {errors[-3:]}")

    def node_of(self, erlang_name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == erlang_name)

    def leader_node(self, queue: str) -> ClusterNode:
        live = next(n for n in self.nodes if n.os_pid is not None)
        return self.node_of(live.queue_leaders()[queue])


@contextlib.contextmanager
def own_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="cti-cluster-"))
    hosts = Hosts()
    try:
        cluster = Cluster(hosts, base)
        cluster.start()
        yield cluster
    finally:
        hosts.remove()
        shutil.rmtree(base, ignore_errors=True)


class HostPipeline(Pipeline):
    """A Pipeline whose processes run on the cluster's hosts: the gateway on `gw`, lookups and
    writers on `wk`."""

    hosts: Hosts | None = None

    def start(
        self, name: str, command: str, *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        assert self.hosts is not None
        host = "gw" if command == "gateway" else "wk"
        with open(self.workdir / f"{name}.log", "ab") as log:
            # `ip netns exec` execs the command: the Popen's pid is the process itself
            self.procs[name] = subprocess.Popen(
                [*self.hosts.prefix(host), sys.executable, "-m", "cti_journal.cli",
                 command, "-c", str(self.config), *args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            )  # fmt: skip


def host_pipeline(cluster: Cluster, workdir: Path, settings: dict[str, Any]) -> HostPipeline:
    pipeline = HostPipeline(workdir, cluster.urls[0], settings)
    pipeline.hosts = cluster.hosts
    return pipeline
