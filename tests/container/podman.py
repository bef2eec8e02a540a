"""Podman for the container tier: the tier's own settings, and images built from Debian packages.

No registry is reachable on the project's machines, so every base image is made here: a
`debootstrap` of bookworm imported as an image, and on it a Python base and stand-ins for the
RabbitMQ, PostgreSQL and Prometheus images that deploy/compose.yaml names (images/). They stay in
podman's local storage between runs, tagged with a hash of everything that built them, so only
the first run (or a change to images/) pays for building them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
ROOT = HERE.parent.parent
CONF = HERE / "containers.conf"
REPO = "localhost/cti-journal-test"
MIRROR = os.environ.get("CTI_JOURNAL_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APP_LABEL = "cti-journal-test=app"
SERVICES = ("rabbitmq", "postgres", "prometheus")
# Debian packages the tier needs (deploy/setup.sh installs them with the test packages).
TOOLS = ("podman", "runc", "debootstrap")


class PodmanError(RuntimeError):
    pass


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment with the tier's own podman settings (never /etc's)."""
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONF)
    env.update(extra or {})
    return env


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def podman(
    *args: str,
    check: bool = True,
    timeout: float = 600,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        env=environment(),
        cwd=cwd,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise PodmanError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return result


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _pip_conf() -> str:
    """The machine's pip trust and index for builds: its CA bundle, and its index URL when it
    names one (file:// indexes and find-links of the host do not exist inside a build)."""
    lines = ["[global]", f"cert = {CA_BUNDLE}"]
    index = os.environ.get("PIP_INDEX_URL")
    if not index:
        got = subprocess.run(
            ["python3", "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            check=False,
        )
        index = got.stdout.strip() if got.returncode == 0 else ""
    if index and not index.startswith("file:"):
        lines.append(f"index-url = {index}")
    lines.append("timeout = 180")
    return "\n".join(lines) + "\n"


def debian_image() -> str:
    """bookworm, minbase, from the Debian mirror: the root of every other image."""
    ref = f"{REPO}/debian:bookworm-{_digest(b'minbase bookworm', MIRROR.encode())}"
    if image_exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="cti-journal-debootstrap-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if done.returncode != 0:
            raise PodmanError(f"debootstrap failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                ["podman", "import", "-", ref],
                stdin=tar.stdout,
                env=environment(),
                capture_output=True,
                text=True,
                check=False,
            )
        if imported.returncode != 0 or tar.returncode != 0:
            raise PodmanError(f"podman import failed: {imported.stderr[-3000:]}")
    _drop_older(f"{REPO}/debian", ref)
    return ref


def _drop_older(repository: str, keep: str) -> None:
    """Other tags of one of our base images are builds from older files: nothing uses them."""
    tags = podman("images", "--format", "{{.Repository}}:{{.Tag}}", repository).stdout.split()
    for tag in tags:
        if tag != keep:
            podman("rmi", tag, check=False)


def _build(name: str, base: str, files: Sequence[str], context_extra: Mapping[str, str]) -> str:
    parts = [base.encode()] + [(IMAGES / f).read_bytes() for f in files]
    parts += [content.encode() for content in context_extra.values()]
    ref = f"{REPO}/{name}:{_digest(*parts)}"
    if image_exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix=f"cti-journal-{name}-") as tmp:
        for f in files:
            shutil.copy(IMAGES / f, Path(tmp) / f)
        for fname, content in context_extra.items():
            (Path(tmp) / fname).write_text(content, encoding="utf-8")
        podman(
            "build",
            "--format", "docker",
            "--build-arg", f"DEBIAN_IMAGE={base}",
            "-f", str(Path(tmp) / files[0]),
            "-t", ref,
            tmp,
            timeout=900,
        )  # fmt: skip
    _drop_older(f"{REPO}/{name}", ref)
    return ref


def base_images() -> dict[str, str]:
    """The local base images by role (python, rabbitmq, postgres, prometheus), built if absent."""
    debian = debian_image()
    trust = {"ca-certificates.crt": CA_BUNDLE.read_text(encoding="utf-8"), "pip.conf": _pip_conf()}
    jobs = {"python": (["python.Containerfile"], trust)}
    for service in SERVICES:
        files = [f"{service}.Containerfile"]
        if (IMAGES / f"{service}-entrypoint.sh").exists():
            files.append(f"{service}-entrypoint.sh")
        jobs[service] = (files, {})
    # Side by side: each build mostly waits for the Debian mirror (an uncached run's largest part).
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {role: pool.submit(_build, role, debian, *job) for role, job in jobs.items()}
        return {role: future.result() for role, future in futures.items()}


def app_image(python_image: str, tag: str) -> str:
    """The project's image from deploy/Dockerfile on the local Python base (layers cached)."""
    podman(
        "build",
        "--format", "docker",  # OCI images drop HEALTHCHECK
        "--build-arg", f"PYTHON_IMAGE={python_image}",
        "--label", APP_LABEL,  # so the builds it replaces can be pruned, and only those
        "-f", "deploy/Dockerfile",
        "-t", tag,
        ".",
        cwd=ROOT,
        timeout=900,
    )  # fmt: skip
    podman("image", "prune", "-f", "--filter", f"label={APP_LABEL}", check=False)
    return tag
