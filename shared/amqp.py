"""One AMQP connection per process: pika's SelectConnection on a single IOLoop that outlives
reconnects, with publisher confirms streamed (a window of unconfirmed messages, never a wait per
message: see shared/measurements.md) and the topology declared on every (re)connect.

Everything here runs on the IOLoop thread, except `call_threadsafe` and `stop`, which other
threads use to hand work in. Callers never see pika objects.

Refused publishes (nacks, returns, a confirm that does not come) hold publishing, make the
process not ready and, after a few rounds, reopen the connection to the next URL: the state
machine that decides this is `shared/confirms.py` (no pika there); the link feeds it pika's
frames and carries its decisions out. Declaring the topology is `shared/declare.py`, one URL's
connection parameters `shared/amqp_params.py`, consuming and acking `shared/amqp_consume.py`.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.select_connection import IOLoop, SelectConnection

from cti_journal.shared.amqp_consume import MessageCallback, ack, cancel, consume, nack_requeue
from cti_journal.shared.amqp_params import connection_parameters, redact
from cti_journal.shared.backoff import Backoff
from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.confirms import ConfirmWindow, Decision, return_reason
from cti_journal.shared.declare import BrokerRefusedError, Declarer
from cti_journal.shared.errors import ConfigError, describe
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.topology import Topology

log = logging.getLogger(__name__)
ConfirmCallback = Callable[[bool], None]

WATCH_INTERVAL_S = 1.0


# A broker may refuse a login for a moment while its users are being set up (a definitions
# import, a new cluster node): a few rounds of backoff, then it is a wrong password (exit 2).
AUTH_REFUSALS = 5
_REFUSALS = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
    pika.exceptions.AuthenticationError,
)


class AmqpLink:
    """A reconnecting connection + one confirm-mode channel.

    `on_ready` runs on the IOLoop after every (re)connect, once the topology is declared: register
    consumers there. `on_lost` runs when the channel goes away: everything unacked is void then
    (the broker redelivers it) and every pending confirm has already been reported as failed.
    """

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        name: str,
        metrics: Metrics,
        on_ready: Callable[[], None],
        on_lost: Callable[[], None] | None = None,
        declare: bool = True,
    ) -> None:
        self.broker = broker
        self.topology = Topology.from_settings(broker)
        self.name = name
        self.metrics = metrics
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._declare = declare and broker.declare_topology  # least privilege: see config
        self.ioloop = IOLoop()
        self._connection: SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        self._ready = False
        self._session_up = False
        self._blocked = False
        self._stopping = False
        self._fatal: Exception | None = None
        self._url_index = 0
        self._failures = 0
        self._refusals = 0  # logins refused in a row
        self._reconnect = Backoff(first_s=0.5, max_s=broker.reconnect_max_s)
        self._message_counter = 0
        self._confirms: ConfirmWindow[ConfirmCallback] = ConfirmWindow(
            max_hold_s=broker.reconnect_max_s, log=log, where=self._where
        )
        self._watch: object | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> None:
        """Connect and run the IOLoop until `stop()`; raises if the broker refused the topology."""
        self.ioloop.add_callback_threadsafe(self._connect)
        self.ioloop.start()
        if self._fatal is not None:
            raise self._fatal

    def stop(self) -> None:
        """Thread-safe: close the connection and end `run()`."""
        self.ioloop.add_callback_threadsafe(self._stop)

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        self.ioloop.add_callback_threadsafe(fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> object:
        return self.ioloop.call_later(delay_s, fn)

    def remove_timeout(self, handle: object) -> None:
        self.ioloop.remove_timeout(handle)

    @property
    def ready(self) -> bool:
        return self._ready

    def _stop(self) -> None:
        self._stopping = True
        if self._connection is not None and not (
            self._connection.is_closed or self._connection.is_closing
        ):
            self._connection.close()
        else:
            self.ioloop.stop()

    def _fail_fatally(self, error: Exception) -> None:
        self._fatal = error
        self._stop()

    # -- connecting -------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._stopping:
            self.ioloop.stop()
            return
        url = self.broker.urls[self._url_index]
        try:
            params = connection_parameters(url, self.broker, self.name)
        except (ValueError, OSError, ssl.SSLError) as exc:
            self._fail_fatally(ConfigError("broker.urls/tls", f"{redact(url)}: {exc}"))
            return
        log.debug("connecting to %s", redact(url))
        self._connection = SelectConnection(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_open_error,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=self.ioloop,
        )

    def _reconnect_later(self) -> None:
        if self._stopping:
            self.ioloop.stop()
            return
        # Fail over through the URLs in order at once; back off (jittered, so that many workers
        # do not come back in step) each time the list wraps around.
        self._url_index = (self._url_index + 1) % len(self.broker.urls)
        self._failures += 1
        delay = 0.0 if self._url_index else self._reconnect.delay()
        self.ioloop.call_later(delay, self._connect)

    def _on_connection_open_error(self, _conn: SelectConnection, error: BaseException) -> None:
        url = redact(self.broker.urls[self._url_index])
        self._reconnect.failed(log, f"broker {url} unreachable", describe(error))
        self._connection = None
        if isinstance(error, _REFUSALS):
            self._refusals += 1
            if self._refusals >= AUTH_REFUSALS:
                self._fail_fatally(
                    ConfigError(
                        "broker.urls",
                        f"{url} refused the login {self._refusals} times in a row: "
                        "check the user, password and vhost (and its permissions)",
                    )
                )
                return
        else:
            self._refusals = 0
        self._reconnect_later()

    def _on_connection_open(self, connection: SelectConnection) -> None:
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_blocked(self, *_args: Any) -> None:
        log.warning("broker blocked publishing (memory or disk alarm); holding entries")
        self._blocked = True

    def _on_unblocked(self, *_args: Any) -> None:
        log.info("broker unblocked publishing")
        self._blocked = False

    def _on_connection_closed(self, _conn: SelectConnection, reason: BaseException) -> None:
        # The channel may have closed first (an orderly broker stop): _session_up still knows.
        was_ready, self._session_up = self._session_up, False
        self._channel_gone()
        self._connection = None
        if self._stopping or self._fatal is not None:
            self.ioloop.stop()
            return
        if was_ready:
            log.warning("lost broker connection: %s; reconnecting", reason)
            self._failures = 0
        self._reconnect_later()

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        self._confirms.opened()
        channel.confirm_delivery(ack_nack_callback=self._on_confirm)
        if self._declare:
            Declarer(channel, self.topology, self._on_declared).start()
        else:
            self._on_declared()

    def _on_declared(self) -> None:
        self._ready = True
        self._session_up = True
        self._failures = 0
        self._refusals = 0
        self._reconnect.reset()
        self._blocked = False
        self.metrics.broker_connected.set(1)
        log.info("connected to broker %s", redact(self.broker.urls[self._url_index]))
        self._watch = self.ioloop.call_later(WATCH_INTERVAL_S, self._watch_confirms)
        self._on_ready()

    def _on_channel_closed(self, _channel: pika.channel.Channel, reason: BaseException) -> None:
        code = getattr(reason, "reply_code", 0)
        text = getattr(reason, "reply_text", str(reason))
        if code == 406 and not self._ready:
            self._fail_fatally(
                BrokerRefusedError(
                    f"the broker refused a declaration: {text}. A queue under the prefix "
                    f"{self.broker.prefix!r} exists with other arguments: delete it or choose "
                    "another broker.prefix"
                )
            )
            return
        if code == 403:
            self._fail_fatally(
                BrokerRefusedError(
                    f"the broker user has no permission: {text} (see deploy/rabbitmq)"
                )
            )
            return
        self._channel_gone()
        if not self._stopping and self._connection is not None and self._connection.is_open:
            log.warning("channel closed by broker: %s; reopening the connection", text)
            self._connection.close()

    def _channel_gone(self) -> None:
        was_ready, self._ready = self._ready, False
        self._channel = None
        self.metrics.broker_connected.set(0)
        if self._watch is not None:
            self.ioloop.remove_timeout(self._watch)
            self._watch = None
        pending = self._confirms.lost()
        self.metrics.in_flight.set(0)
        for item in pending:
            self.metrics.publish_failed.inc()
            item.token(False)
        if was_ready and self._on_lost is not None:
            self._on_lost()

    # -- publishing -------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return self._confirms.in_flight

    @property
    def degraded(self) -> bool:
        """Publishes are being refused (nacked, returned) or not confirmed within the bound."""
        return self._confirms.degraded

    @property
    def holding(self) -> bool:
        """Publishing is held after a refusal; retry after `retry_in_s()`."""
        return self._confirms.holding

    def retry_in_s(self) -> float:
        return self._confirms.retry_in_s()

    def can_publish(self, window: int) -> bool:
        if not self._ready or self._blocked or self._confirms.holding:
            return False
        return self._confirms.in_flight < window

    def publish(
        self,
        routing_key: str,
        body: bytes,
        on_confirm: ConfirmCallback,
        *,
        headers: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> bool:
        """Publish persistently; `on_confirm(ok)` runs once the broker confirmed (or failed).

        Returns False without publishing when not connected: the caller keeps the message.
        """
        if not self._ready or self._channel is None:
            return False
        self._message_counter += 1
        message_id = f"{self.name}-{self._message_counter}"
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type=content_type,
            message_id=message_id,
            headers=dict(headers) if headers else None,
            app_id="cti-journal",
            expiration=self.topology.expiration(routing_key),  # dead letters: retention
        )
        # mandatory: an unroutable message comes back instead of vanishing with an ack
        try:
            self._channel.basic_publish(
                self.topology.exchange, routing_key, body, properties, mandatory=True
            )
        except (pika.exceptions.AMQPError, OSError) as exc:
            # The channel is going away; its close callback reports everything pending.
            log.debug("publish failed: %s", exc)
            return False
        self._confirms.published(routing_key, message_id, on_confirm)
        self.metrics.published.labels(routing_key).inc()
        self.metrics.in_flight.set(self._confirms.in_flight)
        return True

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        # Counted and logged with the confirm that follows every return.
        if properties.message_id:
            self._confirms.returned(
                properties.message_id,
                return_reason(method.reply_code, method.reply_text, method.routing_key),
            )

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        decision = self._confirms.confirmed(
            method.delivery_tag,
            multiple=bool(method.multiple),
            ack=isinstance(method, pika.spec.Basic.Ack),
        )
        for item, success in decision.settled:
            if success:
                self.metrics.confirmed.labels(item.routing_key).inc()
            else:
                self.metrics.publish_failed.inc()
        self.metrics.in_flight.set(self._confirms.in_flight)
        # The state first, so that callbacks see the hold (retry_in_s) this frame causes.
        self._carry_out(decision)
        for item, success in decision.settled:
            item.token(success)

    # -- refused publishes (shared/confirms.py decides) -------------------------------------
    def _where(self) -> str:
        return f"broker {redact(self.broker.urls[self._url_index])}"

    def _carry_out(self, decision: Decision[ConfirmCallback]) -> None:
        # Not ready (/readyz, cti_journal_ready) and publish_degraded 1 until a confirm.
        if decision.degraded is not None:
            self.metrics.health.set_degraded(
                "publishes",
                f"{self._where()} refused them: {decision.degraded}",
                self.metrics.publish_degraded,
            )
        elif decision.recovered:
            self.metrics.health.set_degraded("publishes", None, self.metrics.publish_degraded)
        if decision.reopen is not None:
            self._reopen(decision.reopen)

    def _reopen(self, why: str) -> None:
        """Close the connection; the reconnect goes to the next URL with a channel that starts
        clean. Whatever is unconfirmed is reported as failed and sent again."""
        connection = self._connection
        if self._stopping or connection is None or not connection.is_open:
            return
        log.warning("%s: %s; reopening the connection to the next broker URL", self._where(), why)
        connection.close(reply_text="cti-journal: publishes refused, reconnecting")

    def _watch_confirms(self) -> None:
        self._watch = None
        if not self._ready:
            return
        decision = self._confirms.tick(blocked=self._blocked)
        self._carry_out(decision)
        if decision.reopen is None:
            self._watch = self.ioloop.call_later(WATCH_INTERVAL_S, self._watch_confirms)

    # -- consuming --------------------------------------------------------------------------
    def consume(self, stage_queue: str, prefetch: int, on_message: MessageCallback) -> str:
        """Subscribe on the current channel; the consumer tag, or "" without a channel."""
        if self._channel is not None:
            return consume(self._channel, stage_queue, prefetch, on_message)
        return ""

    def cancel(self, consumer_tag: str) -> None:
        cancel(self._channel, consumer_tag)

    def ack(self, tag: int, *, multiple: bool = False) -> None:
        ack(self._channel, tag, multiple=multiple)

    def nack_requeue(self, tag: int) -> None:
        nack_requeue(self._channel, tag)


def run_in_thread(link: AmqpLink) -> threading.Thread:
    thread = threading.Thread(target=link.run, name=f"amqp-{link.name}", daemon=True)
    thread.start()
    return thread
