"""`podman kube play` on deploy/kubernetes/base: the Deployments with their ConfigMap, Secret and
PersistentVolumeClaim in a real container runtime — probes, the non-root user, the read-only root
with a writable /tmp, the secret files — against a broker, a database and a simulated CTI server
of the test's own on a network of its own.

What kube play cannot run is not tried here and stays validated by tests/unit/test_kubernetes.py:
Services (the metrics Services), PodDisruptionBudgets, KEDA's ScaledObjects and the HPAs; kube
play starts one pod per Deployment whatever `replicas` says.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyodbc
import pytest

from tests.container.podman import ROOT, podman
from tests.container.stack import wait_until

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

BASE = ROOT / "deploy" / "kubernetes" / "base"
PROCESSES = ("gateway", "lookup", "writer")
SECRET = "cti-journal-secrets"
PASSWORD = "kube-play-test"
CONFIG = "/etc/cti-journal/config/cti-journal.toml"


def _secret_yaml() -> str:
    """The Secret the README has operators create, for this test's broker and database."""
    values = {
        "amqp-urls": f"amqp://cti-journal:{PASSWORD}@rabbitmq:5672/cti-journal",
        "crm-dsn": "Driver={PostgreSQL Unicode};Server=postgres;Port=5432;Database=cti;"
        "Uid=cti_reader;Pwd=cti_reader;",
        "writer-dsn": "Driver={PostgreSQL Unicode};Server=postgres;Port=5432;Database=cti;"
        f"Uid=cti;Pwd={PASSWORD};",
    }
    lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {SECRET}", "data:"]
    lines += [f"  {k}: {base64.b64encode(v.encode()).decode()}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


class KubePlay:
    def __init__(self, work: Path, images: dict[str, str]) -> None:
        self.work = work
        self.images = images
        self.net = f"ctikube{os.getpid()}"
        self.helpers = [f"{self.net}-{name}" for name in ("rabbitmq", "postgres", "cti-server")]
        self.play = work / "play.yaml"
        self.configmap = work / "configmap.yaml"

    def render(self) -> None:
        """The base's files as they are, but for the CTI server's host (the test's simulator)
        and the image (the one just built)."""
        config = (BASE / "config.yaml").read_text(encoding="utf-8")
        config = config.replace('host = "cti-server.example.local"', 'host = "cti-server"')
        # The test's database is empty: the writer creates the journal table (an operator's
        # exists, or is made with `cti-journal schema`).
        config = config.replace("    [writer]\n", "    [writer]\n    create_table = true\n")
        self.configmap.write_text(config, encoding="utf-8")
        docs = [
            (BASE / f"{name}.yaml")
            .read_text(encoding="utf-8")
            .replace("image: cti-journal:latest", f"image: {self.images['app']}")
            for name in PROCESSES
        ]
        self.play.write_text("\n---\n".join(docs), encoding="utf-8")
        (self.work / "secret.yaml").write_text(_secret_yaml(), encoding="utf-8")

    def start_helpers(self) -> None:
        podman("network", "create", self.net)
        rabbitmq, postgres, sim = self.helpers
        run = ["run", "-d", "--network", self.net]
        podman(*run, "--name", rabbitmq, "--hostname", "rabbitmq", "--network-alias", "rabbitmq",
               "-e", "RABBITMQ_DEFAULT_USER=cti-journal", "-e", f"RABBITMQ_DEFAULT_PASS={PASSWORD}",
               "-e", "RABBITMQ_DEFAULT_VHOST=cti-journal", "-v",
               f"{ROOT / 'deploy/rabbitmq/enabled_plugins'}:/etc/rabbitmq/enabled_plugins:ro",
               self.images["rabbitmq"])  # fmt: skip
        podman(*run, "--name", postgres, "--network-alias", "postgres",
               "-e", "POSTGRES_DB=cti", "-e", "POSTGRES_USER=cti", "-e",
               f"POSTGRES_PASSWORD={PASSWORD}", "-v",
               f"{ROOT / 'deploy/compose/initdb.sql'}:/docker-entrypoint-initdb.d/10.sql:ro",
               self.images["postgres"])  # fmt: skip
        podman(*run, "--name", sim, "--network-alias", "cti-server", self.images["app"],
               "simulate", "--listen=0.0.0.0:4711", "--count=400", "--rate=20")  # fmt: skip

    def up(self) -> None:
        podman("secret", "create", SECRET, str(self.work / "secret.yaml"))
        podman("kube", "play", "--network", self.net, "--configmap", str(self.configmap),
               str(self.play), timeout=300)  # fmt: skip

    def remove(self) -> None:
        if self.play.exists():
            podman("kube", "down", str(self.play), check=False, timeout=300)
        for process in PROCESSES:
            podman("pod", "rm", "-f", f"cti-journal-{process}-pod-0", check=False)
        podman("rm", "-f", "-t", "0", *self.helpers, check=False)
        podman("volume", "rm", "-f", "cti-journal-gateway-state", check=False)
        podman("secret", "rm", SECRET, check=False)
        podman("network", "rm", "-f", self.net, check=False)

    @staticmethod
    def container(process: str) -> str:
        return f"cti-journal-{process}-pod-0-{process}"

    def exec(self, process: str, *argv: str) -> tuple[int, str]:
        got = podman("exec", self.container(process), *argv, check=False, timeout=60)
        return got.returncode, got.stdout + got.stderr

    def postgres_ip(self) -> str:
        return podman(
            "inspect", self.helpers[1], "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def kube(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubePlay]:
    k = KubePlay(tmp_path_factory.mktemp("kube"), images)
    k.render()
    k.remove()  # what a killed earlier run left
    try:
        k.start_helpers()
        k.up()
        yield k
    finally:
        k.remove()


def test_every_deployment_turns_ready_with_its_probes(kube: KubePlay) -> None:
    """kube play turns the liveness probe into the container's health check and the process
    answers its readiness probe (asked inside the pod: the same port the kubelet asks)."""
    for process in PROCESSES:
        name = kube.container(process)
        wait_until(
            lambda n=name: podman("healthcheck", "run", n, check=False).returncode == 0,  # type: ignore[misc]
            180,
            f"{name} healthy",
        )
        wait_until(
            lambda p=process: kube.exec(p, "cti-journal", "probe", "-c", CONFIG, "--ready")[0] == 0,  # type: ignore[misc]
            180,
            f"{name} ready",
        )


def test_pods_run_unprivileged_on_a_read_only_root_with_their_secret_files(
    kube: KubePlay,
) -> None:
    for process in PROCESSES:
        name = kube.container(process)
        user = podman("inspect", name, "--format", "{{.Config.User}}").stdout.strip()
        assert user == "10001:10001", (name, user)
        code, out = kube.exec(process, "sh", "-c", "touch /probe-root")
        assert code != 0 and "Read-only file system" in out, (name, out)
        assert kube.exec(process, "sh", "-c", "touch /tmp/probe && rm /tmp/probe")[0] == 0, name
        code, out = kube.exec(process, "ls", "/etc/cti-journal/secrets")
        assert set(out.split()) == {"amqp-urls", "crm-dsn", "writer-dsn"}, (name, out)
    code, out = kube.exec("gateway", "sh", "-c", "touch /var/lib/cti-journal/probe")
    assert code == 0, f"the gateway's state volume is not writable for its user: {out}"


def test_the_pods_pipeline_writes_the_simulated_calls(kube: KubePlay) -> None:
    dsn = (
        f"Driver={{PostgreSQL Unicode}};Server={kube.postgres_ip()};Port=5432;Database=cti;"
        f"Uid=cti;Pwd={PASSWORD};"
    )

    def rows() -> int:
        with contextlib.closing(pyodbc.connect(dsn, autocommit=True, timeout=5)) as conn:
            return int(conn.cursor().execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    wait_until(lambda: rows() >= 400, 180, "400 rows from the kube-played pipeline")
