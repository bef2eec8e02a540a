"""`cti-journal check`: validate a config file against the real broker and databases, each
process's part by that process's own check (a callable taking Settings, returning report lines).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pika
import pika.exceptions

from cti_journal.lookup.check import check as lookup_check
from cti_journal.shared.amqp_params import connection_parameters
from cti_journal.shared.arguments import ALL, add_config_argument, load_settings
from cti_journal.shared.config import Settings
from cti_journal.shared.declare import TopologyError, declare_topology_blocking
from cti_journal.shared.errors import CheckFailedError, ConfigError, CtiJournalError, describe
from cti_journal.shared.secrets import redact_url
from cti_journal.writer.check import check as writer_check


def check_broker(settings: Settings) -> list[str]:
    urls = ", ".join(map(redact_url, settings.broker.urls))
    if not settings.broker.declare_topology:
        return [f"broker {urls}: reachable; {_topology_exists(settings)}"]
    try:
        topology = declare_topology_blocking(settings.broker)
    except TopologyError as exc:
        raise ConfigError("broker.urls", str(exc)) from exc
    names = ", ".join(q.name for q in topology.queues()[:3])
    return [f"broker {urls}: reachable; topology declared ({names}, ...)"]


def _topology_exists(settings: Settings) -> str:
    """With declare_topology = false (a user without configure permission): each queue is looked
    up passively, which needs no permission and changes nothing."""
    broker = settings.broker
    names = [f"{broker.prefix}.{stage}" for stage in ("lookup", "write", "dead")]
    url = broker.urls[0]
    try:
        conn = pika.BlockingConnection(connection_parameters(url, broker, "check"))
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise ConfigError("broker.urls", f"{redact_url(url)}: {describe(exc)}") from exc
    try:
        for name in names:
            try:
                conn.channel().queue_declare(name, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise ConfigError(
                    "broker.declare_topology",
                    f"queue {name}: {exc.reply_text}; with declare_topology = false the admin "
                    "user declares the topology (deploy/rabbitmq/setup-user.sh)",
                ) from exc
    finally:
        if conn.is_open:
            conn.close()
    return f"topology found ({', '.join(names)}; not declared: declare_topology = false)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--only", choices=("broker", "writer", "lookup"), help="check one part (default all)"
    )


def run(args: argparse.Namespace) -> int:
    only = frozenset({args.only, "broker", "privacy"}) if args.only else ALL
    settings = load_settings(args, only)
    print("config: valid")
    checks: list[tuple[str, Callable[[Settings], list[str]]]] = [
        ("broker", check_broker),
        ("lookup", lookup_check),
        ("writer", writer_check),
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
