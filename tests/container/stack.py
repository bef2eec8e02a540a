"""deploy/compose.yaml run by podman-compose: up, the containers' addresses, stop/kill/start,
health checks by hand, and a teardown that leaves nothing of it behind."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.container.podman import ROOT, PodmanError, environment, podman
from tests.support.harness import free_port

COMPOSE = ROOT / "deploy" / "compose.yaml"
SECRETS = ROOT / "deploy" / "secrets"
MADE_HERE = SECRETS / ".made-by-the-container-tier"  # an operator's own secrets stay untouched
PODMAN_COMPOSE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "podman-compose"
APP_GID = 10001  # the image's group (deploy/Dockerfile): the apps read their secrets through it
POSTGRES_UID = 999  # the postgres image's user, which reads postgres-password and crm-password
DSN = "Driver={{PostgreSQL Unicode}};Server={host};Port=5432;Database=cti;Uid={user};Pwd={pw};"


def _podman_compose() -> str:
    found = shutil.which("podman-compose")
    if found:
        return found
    return str(PODMAN_COMPOSE)


class Stack:
    """One compose project; `env` is what both `up` and `down` see (replica counts included:
    podman-compose's `down` only knows the containers the same variables describe)."""

    def __init__(
        self,
        project: str,
        work: Path,
        images: Mapping[str, str],
        *,
        services: Sequence[str],
        profiles: Sequence[str] = ("demo", "pair"),
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.project = project
        self.work = work
        self.services = list(services)
        self.profiles = list(profiles)
        self.prometheus_port = free_port()
        self.env = {
            "CTI_JOURNAL_IMAGE": images["app"],
            "RABBITMQ_IMAGE": images["rabbitmq"],
            "POSTGRES_IMAGE": images["postgres"],
            "PROMETHEUS_IMAGE": images["prometheus"],
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "RABBITMQ_UI_PORT": str(free_port()),
            "GRAFANA_PORT": str(free_port()),
            **(env or {}),
        }
        self.postgres_password = ""
        self.files = [str(COMPOSE)]
        if overrides:
            override = work / "compose.override.json"  # JSON is YAML
            override.write_text(json.dumps(overrides), encoding="utf-8")
            self.files.append(str(override))

    # -- podman-compose -----------------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [_podman_compose(), "-p", self.project]
        for f in self.files:
            argv += ["-f", f]
        for profile in self.profiles:
            argv += ["--profile", profile]
        result = subprocess.run(
            [*argv, *args],
            env=environment(self.env),
            cwd=COMPOSE.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise PodmanError(
                f"podman-compose {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def up(self) -> None:
        """What docs/containers.md has an operator do: the secret files, the broker and the
        database, one broker user per role (setup-user.sh in the broker's container), the
        topology declared by the admin user, then the stack."""
        self.make_secrets()
        self.compose("up", "-d", "rabbitmq", "postgres")
        rabbitmq = self.name("rabbitmq")
        wait_until(lambda: self.healthcheck(rabbitmq), 180, f"{rabbitmq} healthy")
        self.compose("exec", "-T", "rabbitmq", "bash", "/opt/cti-journal/setup-user.sh",
                     "--vhost", "cti-journal", "--url-host", "rabbitmq", "--plain",
                     "--out-dir", "/secrets")  # fmt: skip
        for role in ("admin", "gateway", "lookup", "writer"):
            self._app_secret(SECRETS / f"amqp-url-{role}")
        # --no-recreate: podman-compose would otherwise make the broker anew (a config hash
        # it computes differently) just when the one-shot topology service needs it up.
        # --no-deps: podman 4.3 cannot start a container whose `--requires` (depends_on) has
        # requirements of its own ("generating dependency graph ... not found in input list"):
        # the apps -> topology -> rabbitmq. Every process waits for what it needs by itself.
        self.compose("up", "-d", "--no-recreate", "--no-deps", "topology", *self.services)
        topology = self.name("topology")
        wait_until(lambda: self.containers().get(topology) == "exited", 180, "the topology")
        if self.exit_code(topology) != 0:
            raise PodmanError(f"the topology service failed:\n{self.logs(topology)}")

    # -- the operator's secret files ---------------------------------------------------------------
    def make_secrets(self) -> None:
        """deploy/secrets/ as an operator fills it, with passwords made for this run: the apps'
        files mode 0640 for their group, the database's 0600 for its user."""
        if SECRETS.exists() and not MADE_HERE.exists():
            raise PodmanError(f"{SECRETS} exists and was not made by the tests: not touching it")
        self.remove_secrets()
        SECRETS.mkdir(mode=0o700)
        MADE_HERE.touch()
        self.postgres_password = secrets.token_urlsafe(24)
        crm_password = secrets.token_urlsafe(24)
        for name, value in (("postgres-password", self.postgres_password),
                            ("crm-password", crm_password)):  # fmt: skip
            self._write(name, value, uid=POSTGRES_UID, gid=POSTGRES_UID, mode=0o600)
        self._write("grafana-password", secrets.token_urlsafe(24), uid=0, gid=0, mode=0o600)
        self._write("writer-dsn", DSN.format(host="postgres", user="cti",
                                             pw=self.postgres_password))  # fmt: skip
        self._write("crm-dsn", DSN.format(host="postgres", user="cti_reader", pw=crm_password))

    @staticmethod
    def _write(
        name: str, value: str, *, uid: int = 0, gid: int = APP_GID, mode: int = 0o640
    ) -> None:
        path = SECRETS / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value)
        os.chown(path, uid, gid)
        path.chmod(mode)

    @staticmethod
    def _app_secret(path: Path) -> None:
        os.chown(path, 0, APP_GID)
        path.chmod(0o640)

    @staticmethod
    def remove_secrets() -> None:
        if MADE_HERE.exists():
            shutil.rmtree(SECRETS)

    def down(self) -> None:
        """`down -v` as an operator runs it; then whatever it left (it must leave nothing: the
        test asserts that separately) is removed by label so the machine stays clean."""
        try:
            self.compose("down", "-v", "-t", "30", timeout=600)
        finally:
            self.force_remove()
            self.remove_secrets()

    def force_remove(self) -> None:
        label = f"label=io.podman.compose.project={self.project}"
        left = podman("ps", "-aq", "--filter", label, check=False).stdout.split()
        if left:
            podman("rm", "-f", "-t", "0", *left, check=False)
        podman("pod", "rm", "-f", f"pod_{self.project}", check=False)
        for volume in self.leftover_volumes():
            podman("volume", "rm", "-f", volume, check=False)
        podman("network", "rm", "-f", f"{self.project}_default", check=False)

    def leftovers(self) -> list[str]:
        label = f"label=io.podman.compose.project={self.project}"
        names = podman("ps", "-a", "--format", "{{.Names}}", "--filter", label).stdout.split()
        return names + self.leftover_volumes()

    def leftover_volumes(self) -> list[str]:
        volumes = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
        return [v for v in volumes if v.startswith(f"{self.project}_")]

    # -- containers ----------------------------------------------------------------------------
    def name(self, service: str, index: int = 1) -> str:
        return f"{self.project}_{service}_{index}"

    def containers(self) -> dict[str, str]:
        """Name → state of the project's containers."""
        label = f"label=io.podman.compose.project={self.project}"
        out = podman("ps", "-a", "--format", "json", "--filter", label).stdout
        return {c["Names"][0]: c["State"] for c in json.loads(out or "[]")}

    def ip(self, container: str) -> str:
        out = podman("inspect", container, "--format", "{{json .NetworkSettings.Networks}}").stdout
        networks: dict[str, Any] = json.loads(out)
        (net,) = networks.values()
        return str(net["IPAddress"])

    def stop(self, container: str, timeout: int = 60) -> None:
        podman("stop", "-t", str(timeout), container, timeout=timeout + 30)

    def kill(self, container: str) -> None:
        podman("kill", "-s", "KILL", container)
        podman("wait", container, check=False, timeout=60)

    def start(self, container: str) -> None:
        podman("start", container)

    def exit_code(self, container: str) -> int:
        return int(podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout)

    def healthcheck(self, container: str) -> bool:
        """One run of the container's health check (podman runs them only through systemd)."""
        return podman("healthcheck", "run", container, check=False, timeout=60).returncode == 0

    def logs(self, container: str, tail: int = 40) -> str:
        got = podman("logs", "--tail", str(tail), container, check=False)
        return got.stdout + got.stderr

    # -- what runs inside ----------------------------------------------------------------------
    def http_status(self, container: str, port: int, path: str) -> int:
        url = f"http://{self.ip(container)}:{port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def prometheus(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/{path}" + (f"?{query}" * bool(query))
        with urllib.request.urlopen(url, timeout=15) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def dsn(self) -> str:
        host = self.ip(self.name("postgres"))
        return DSN.format(host=host, user="cti", pw=self.postgres_password)


def wait_until(check: Any, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = check()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
