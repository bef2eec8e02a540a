"""`cti-journal check`: validate a config file against the real broker and databases.

Process folders contribute their own checks as entry points in the group
`cti_journal.checks` (a callable taking Settings and returning report lines), so this module
never imports them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import entry_points

from cti_journal.shared.amqp import TopologyError, declare_topology_blocking, redact
from cti_journal.shared.cli import Command
from cti_journal.shared.config import Settings
from cti_journal.shared.errors import ConfigError, CtiJournalError
from cti_journal.shared.process import add_config_argument, load_settings

CHECKS = "cti_journal.checks"


class CheckFailedError(CtiJournalError):
    """A check that has a report to show and failed: its lines are printed, then the failure."""

    def __init__(self, lines: list[str], message: str) -> None:
        super().__init__(message)
        self.lines = lines


def check_broker(settings: Settings) -> list[str]:
    try:
        topology = declare_topology_blocking(settings.broker)
    except TopologyError as exc:
        raise ConfigError("broker.urls", str(exc)) from exc
    names = ", ".join(q.name for q in topology.queues()[:3])
    urls = ", ".join(map(redact, settings.broker.urls))
    return [f"broker {urls}: reachable; topology declared ({names}, ...)"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--only", choices=("broker", "writer", "lookup"), help="check one part (default all)"
    )


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    print("config: valid")
    checks: list[tuple[str, Callable[[Settings], list[str]]]] = [("broker", check_broker)]
    checks += [
        (ep.name, ep.load()) for ep in sorted(entry_points(group=CHECKS), key=lambda e: e.name)
    ]
    failed = 0
    for name, check in checks:
        if args.only and name != args.only:
            continue
        try:
            lines = check(settings)
        except CheckFailedError as exc:
            for line in exc.lines:
                print(f"{name}: {line}")
            print(f"{name}: FAILED: {exc}")
            failed += 1
            continue
        except CtiJournalError as exc:
            print(f"{name}: FAILED: {exc}")
            failed += 1
            continue
        for line in lines:
            print(f"{name}: {line}")
    if failed:
        print(f"{failed} check(s) failed")
        return 2
    print("all checks passed")
    return 0


COMMAND = Command(
    help="validate a config: connect to the broker and databases, show the column mapping",
    configure=_configure,
    run=_run,
)
