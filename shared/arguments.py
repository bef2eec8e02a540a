"""The `--config` argument every command that reads settings takes, and reading it."""

from __future__ import annotations

import argparse
import os

from cti_journal.shared.config import Settings
from cti_journal.shared.loader import SECTIONS
from cti_journal.shared.loader import load_settings as load_file

# Which sections' `_file` secrets each kind of command reads (least privilege: a gateway pod is
# not given the writer's DSN). Privacy is in every set: every process validates the privacy
# rules, and a `pseudonymise` rule needs its key.
GATEWAY: frozenset[str] = frozenset({"broker", "gateway", "privacy"})
LOOKUP: frozenset[str] = frozenset({"broker", "lookup", "privacy"})
WRITER: frozenset[str] = frozenset({"broker", "writer", "privacy"})
DATABASE: frozenset[str] = frozenset({"writer", "privacy"})  # subject, purge: no broker
BROKER: frozenset[str] = frozenset({"broker", "privacy"})  # probe, dlq list/show/purge
ALL: frozenset[str] = SECTIONS


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        default=os.environ.get("CTI_JOURNAL_CONFIG"),
        help="TOML settings file (default: $CTI_JOURNAL_CONFIG); CTI_JOURNAL_<SECTION>__<KEY> "
        "environment variables override it",
    )


def load_settings(
    args: argparse.Namespace, secrets: frozenset[str] = ALL, *, cross_checks: bool = True
) -> Settings:
    """The settings, with the `_file` secrets of the sections in `secrets` read and no other
    (`cross_checks`: see shared/loader.py)."""
    return load_file(getattr(args, "config", None), secrets=secrets, cross_checks=cross_checks)
