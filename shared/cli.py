"""The `cti-journal` console script.

Sub-commands are plugins declared in pyproject.toml under the entry-point group
`cti_journal.commands`; each names a `Command`. That keeps the import graph one-directional:
shared/ never imports a process folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from cti_journal.shared.errors import ConfigError, CtiJournalError
from cti_journal.shared.logs import log_level, setup_logging
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.version import python_version, version

GROUP = "cti_journal.commands"
EXIT_CONFIG = 2


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


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
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            command: Command = ep.load()
        except Exception as exc:  # one broken plugin must not take every other command down
            command = _unavailable(ep.name, exc)
        sub = subs.add_parser(ep.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


def _unavailable(name: str, error: Exception) -> Command:
    reason = f"{type(error).__name__}: {error}"

    def run(_args: argparse.Namespace) -> int:
        print(f"cti-journal: the {name} command cannot be loaded: {reason}", file=sys.stderr)
        return 1

    return Command(help=f"(unavailable: {reason})", configure=lambda _parser: None, run=run)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json, log_numbers=args.log_numbers)
    try:
        code: int = args._run(args)
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
