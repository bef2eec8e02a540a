"""The `cti-journal` console script.

One static table of commands (as pip keeps its own): the table holds each command's name, the
module that implements it and its one-line help, and only the chosen command's module is
imported, so that `cti-journal probe` (the container's health check, run every few seconds) and
`--version` load no driver, broker client or number library. A command module provides
`configure(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from cti_journal.shared.errors import ConfigError, CtiJournalError
from cti_journal.shared.logs import log_level, setup_logging
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.version import python_version, version

EXIT_CONFIG = 2


@dataclass(frozen=True)
class Command:
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "check": Command(
        "cti_journal.cli.check",
        "validate a config: connect to the broker and databases, show the column mapping",
    ),
    "demo": Command(
        "cti_journal.cli.demo",
        "run simulate + gateway + lookup + writer on this machine into an SQLite journal",
    ),
    "dlq": Command(
        "cti_journal.cli.dlq",
        "list, show, replay or purge dead-lettered entries (with their reasons)",
    ),
    "gateway": Command(
        "cti_journal.gateway.main",
        "read CTI journal entries (tcp, listen or file) and publish them to RabbitMQ",
    ),
    "import": Command(
        "cti_journal.gateway.backfill",
        "load existing journal files (journal.log) through the pipeline; safe to repeat",
    ),
    "lookup": Command(
        "cti_journal.lookup.main",
        "enrich entries with the contact record behind the number (any number of workers)",
    ),
    "probe": Command(
        "cti_journal.cli.probe",
        "ask the cti-journal process on this host whether it is healthy (or --ready): exit 0/1",
    ),
    "purge": Command(
        "cti_journal.writer.retention",
        "delete journal rows older than an age once (writer.retention_days does it continually)",
    ),
    "schema": Command(
        "cti_journal.writer.ddl",
        "print a CREATE TABLE for the journal table (all 16 Journal_* columns or a subset)",
    ),
    "simulate": Command(
        "cti_journal.simulator.server",
        "a fake CTI server: emits realistic, seeded journal entries over TCP or to day.log",
    ),
    "subject": Command(
        "cti_journal.writer.subject",
        "data subject requests: export or erase every journal row of one phone number",
    ),
    "writer": Command(
        "cti_journal.writer.main",
        "insert enriched entries into the ODBC journal table in batches (any number of workers)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cti-journal",
        description="CTI server journal → RabbitMQ → contact look-up → ODBC journal table.",
    )
    parser.add_argument(
        "--log-level", default="INFO", type=log_level, help="DEBUG, INFO, WARNING, ERROR (INFO)"
    )
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    parser.add_argument(
        "--log-numbers",
        action="store_true",
        help="show phone numbers in full in log lines (default: masked to the last 3 digits)",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"cti-journal {version()} (Python {python_version()})",
    )
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        subs.add_parser(name, help=command.help, add_help=False)
    return parser


def _command_parser(name: str) -> tuple[argparse.ArgumentParser, Callable[..., int]]:
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(prog=f"cti-journal {name}", description=command.help)
    module.configure(parser)
    return parser, cast(Callable[..., int], module.run)


def main(argv: Sequence[str] | None = None) -> int:
    common, rest = build_parser().parse_known_args(argv)
    # The command's own arguments are parsed by its own parser, built only for it.
    parser, run = _command_parser(common.command)
    args = parser.parse_args(rest, namespace=common)
    setup_logging(args.log_level, json_lines=args.log_json, log_numbers=args.log_numbers)
    try:
        code: int = run(args)
    except ConfigError as exc:
        _report(args, exc)
        return EXIT_CONFIG
    except CtiJournalError as exc:
        _report(args, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


def _report(args: argparse.Namespace, error: CtiJournalError) -> None:
    """An error the user must act on, said once: a log record under --log-json (one JSON line
    for the shipper), else one plain line without a timestamp or traceback."""
    if args.log_json:
        logging.getLogger("cti_journal").error("%s", error, extra={"error": type(error).__name__})
    else:
        # A config error quotes the admin's own settings; others may quote a caller's number.
        plain = args.log_numbers or isinstance(error, ConfigError)
        text = str(error) if plain else mask_numbers_in(str(error))
        print(f"cti-journal: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
