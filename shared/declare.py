"""Declaring the topology (exchange, queues, bindings): on a link's channel one step after
another (`Declarer`, on the IOLoop, on every (re)connect), or once over a short blocking
connection (`declare_topology_blocking`, for `check`, `dlq` and tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.channel
import pika.exceptions

from cti_journal.shared.amqp_params import connection_parameters, redact
from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.errors import CtiJournalError, describe
from cti_journal.shared.topology import Topology


class TopologyError(CtiJournalError):
    """The broker refused our declarations (e.g. a queue exists with other arguments)."""


class BrokerRefusedError(TopologyError):
    """The broker will keep refusing until its or our configuration changes: a queue with other
    arguments, a user without permission. Exit 2: restarting cannot fix it."""

    exit_code = 2


class Declarer:
    """Declares the exchange, every queue and binding, one after another, then calls done()."""

    def __init__(self, channel: pika.channel.Channel, topology: Topology, done: Callable[[], None]):
        self.channel = channel
        self.topology = topology
        self.done = done
        self.specs = topology.queues()

    def start(self) -> None:
        self.channel.exchange_declare(
            self.topology.exchange, "direct", durable=True, callback=lambda _f: self._next(0)
        )

    def _next(self, index: int) -> None:
        if index == len(self.specs):
            self.done()
            return
        spec = self.specs[index]

        def bind(_frame: Any) -> None:
            self.channel.queue_bind(
                spec.name,
                self.topology.exchange,
                spec.routing_key,
                callback=lambda _f: self._next(index + 1),
            )

        self.channel.queue_declare(spec.name, durable=True, arguments=spec.arguments, callback=bind)


def declare_topology_blocking(broker: BrokerSettings) -> Topology:
    """Declare everything once over a short blocking connection (for `check`, `dlq`, tests)."""
    topology = Topology.from_settings(broker)
    last: Exception | None = None
    for url in broker.urls:
        try:
            connection = pika.BlockingConnection(connection_parameters(url, broker, "declare"))
        except (pika.exceptions.AMQPError, OSError) as exc:  # ssl.SSLError is an OSError
            last = exc
            continue
        try:
            channel = connection.channel()
            channel.exchange_declare(topology.exchange, "direct", durable=True)
            for spec in topology.queues():
                channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
                channel.queue_bind(spec.name, topology.exchange, spec.routing_key)
        except pika.exceptions.ChannelClosedByBroker as exc:
            hint = {
                403: "the broker user lacks permission on these names (deploy/rabbitmq)",
                406: f"a queue under prefix {broker.prefix!r} exists with other arguments",
            }.get(exc.reply_code, "")
            raise TopologyError(f"{redact(url)}: {exc.reply_text}. {hint}".strip()) from exc
        finally:
            if connection.is_open:
                connection.close()
        return topology
    reason = describe(last) if last is not None else "no URL"
    raise TopologyError(f"no broker reachable at {', '.join(map(redact, broker.urls))}: {reason}")
