"""The `--config` argument every command that reads settings takes, and reading it."""

from __future__ import annotations

import argparse
import os

from cti_journal.shared.config import Settings
from cti_journal.shared.loader import load_settings as load_file


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        default=os.environ.get("CTI_JOURNAL_CONFIG"),
        help="TOML settings file (default: $CTI_JOURNAL_CONFIG); CTI_JOURNAL_<SECTION>__<KEY> "
        "environment variables override it",
    )


def load_settings(args: argparse.Namespace, *, cross_checks: bool = True) -> Settings:
    return load_file(getattr(args, "config", None), cross_checks=cross_checks)
