"""deploy/compose.yaml run by podman-compose: up, the containers' addresses, stop/kill/start,
health checks by hand, and a teardown that leaves nothing of it behind."""

from __future__ import annotations

import contextlib
import json
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
PODMAN_COMPOSE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "podman-compose"
POSTGRES_PASSWORD = "container-test"


def _podman_compose() -> str:
    import shutil

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
            "AMQP_PASSWORD": "container-test",
            "POSTGRES_PASSWORD": POSTGRES_PASSWORD,
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "RABBITMQ_UI_PORT": str(free_port()),
            "GRAFANA_PORT": str(free_port()),
            **(env or {}),
        }
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
        self.compose("up", "-d", *self.services)

    def down(self) -> None:
        """`down -v` as an operator runs it; then whatever it left (it must leave nothing: the
        test asserts that separately) is removed by label so the machine stays clean."""
        try:
            self.compose("down", "-v", "-t", "30", timeout=600)
        finally:
            self.force_remove()

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
        return (
            f"Driver={{PostgreSQL Unicode}};Server={self.ip(self.name('postgres'))};Port=5432;"
            f"Database=cti;Uid=cti;Pwd={POSTGRES_PASSWORD};"
        )


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
