"""The container tier: podman (runc) with the tier's own settings (containers.conf), local base
images from Debian's packages, the project's image from deploy/Dockerfile.

Needs root, podman, runc and debootstrap (deploy/setup.sh installs them with the test packages)
and podman-compose (the dev extras). In CI (CI=true) anything missing fails the tier; locally it
skips. Run only this tier: `.venv/bin/pytest -m container`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.container import podman as pm


def _unavailable(detail: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the container tier cannot run: {detail} (CI=true)")
    pytest.skip(f"the container tier cannot run: {detail}")


@pytest.fixture(scope="session")
def container_runtime() -> None:
    missing = pm.missing_tools()
    if missing:
        _unavailable(f"missing {', '.join(missing)} (bash deploy/setup.sh install)")
    if os.geteuid() != 0:
        _unavailable("podman runs as root here (rootless needs --network=host)")
    from tests.container.stack import _podman_compose

    if not shutil.which(_podman_compose()):
        _unavailable("podman-compose is not installed (pip install -e '.[dev]')")
    info = pm.podman("info", check=False, timeout=60)
    if info.returncode != 0:
        _unavailable(f"podman info failed: {info.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def images(container_runtime: None) -> Iterator[dict[str, str]]:
    """Base images (cached in podman's storage by a hash of what built them) and the project's
    image, built from the working tree on every run (its layers cached)."""
    built = pm.base_images()
    built["app"] = pm.app_image(built["python"], f"{pm.REPO}/app:latest")
    yield built
