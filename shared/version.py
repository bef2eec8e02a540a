"""The installed version, from the package metadata (pyproject.toml), for `--version`, the first
log line of every process and the `cti_journal_build_info` metric."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

DISTRIBUTION = "cti-journal"


def version() -> str:
    try:
        return _version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def python_version() -> str:
    return platform.python_version()
