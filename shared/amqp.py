"""One AMQP connection per process: pika's SelectConnection on a single IOLoop that outlives
reconnects, with publisher confirms streamed (a window of unconfirmed messages, never a wait per
message: see shared/measurements.md) and the topology declared on every (re)connect.

Everything here runs on the IOLoop thread, except `call_threadsafe` and `stop`, which other
threads use to hand work in. Callers never see pika objects.

Refused publishes (RabbitMQ 3.10.8 on a cluster that lost a node, seen and reproduced): a
channel opened during a quorum queue's leader election initialises its queue client from the
queue record, which still names the dead leader; the client's first enqueue asks that node for
its machine version, gets `{badrpc, nodedown}` and answers `reject_publish` *without changing
its state* (rabbit_fifo_client:enqueue/3), so every later publish on that channel is nacked at
once, forever, while a new channel gets a fresh client and its confirms. So a run of nacks (or
returns, or a confirm that does not come) is handled here, once for every process: the link
holds publishing for a backoff delay (`retry_in_s`, `holding`), logs the broker's reason once
per change of state, sets `publish_degraded` and the health state's "publishes degraded" (not
ready), and after REOPEN_AFTER_ROUNDS held rounds without a single confirm, or a confirm older
than CONFIRM_BOUND_S, closes the connection and opens one to the next URL, whose channel starts
clean.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.select_connection import IOLoop, SelectConnection

from cti_journal.shared.amqp_consume import MessageCallback, ack, consume, nack_requeue
from cti_journal.shared.amqp_params import connection_parameters, redact
from cti_journal.shared.backoff import Backoff
from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.declare import BrokerRefusedError, Declarer
from cti_journal.shared.errors import ConfigError, describe
from cti_journal.shared.metrics import Metrics
from cti_journal.shared.topology import Topology

log = logging.getLogger(__name__)
ConfirmCallback = Callable[[bool], None]

# A round is every refusal that arrives within one hold. Three rounds in a row with no confirm in
# between (about 1-2 s of refusals with the first holds of 0.25, 0.5, 1 s) mean the channel will not
# recover by itself: reopen, to the next URL. Later rounds hold longer (the backoff only resets on a
# confirm), so a broker that refuses everything is asked less and less often, up to
# broker.reconnect_max_s apart.
REOPEN_AFTER_ROUNDS = 3
REFUSED_FIRST_HOLD_S = 0.25
# A publish not confirmed within this bound (a node cut off from the queue's leader neither acks
# nor nacks) counts as refused and reopens the connection. Confirms normally take milliseconds; a
# memory or disk alarm blocks the connection instead, which is not counted (nothing is sent then).
CONFIRM_BOUND_S = 15.0
WATCH_INTERVAL_S = 1.0


def _nack_reason(routing_key: str) -> str:
    # AMQP 0-9-1 nacks carry no reason text: say what RabbitMQ nacks for.
    return (
        f"nacked for routing key {routing_key!r} (a quorum queue without a leader this "
        "channel can reach, or over its length limit)"
    )


# A broker may refuse a login for a moment while its users are being set up (a definitions
# import, a new cluster node): a few rounds of backoff, then it is a wrong password (exit 2).
AUTH_REFUSALS = 5
_REFUSALS = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
    pika.exceptions.AuthenticationError,
)


@dataclass(slots=True)
class _Pending:
    routing_key: str
    message_id: str
    callback: ConfirmCallback
    sent_at: float


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
        self.topology = Topology(
            broker.prefix,
            broker.retry_delays_ms,
            broker.delivery_limit,
            broker.dead_letter_days * 86_400_000,
        )
        self.name = name
        self.metrics = metrics
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._declare = declare
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
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._returned: dict[str, str] = {}  # message id -> the broker's reason
        self._message_counter = 0
        # refused publishes (see the module's docstring)
        self._refused = Backoff(first_s=REFUSED_FIRST_HOLD_S, max_s=broker.reconnect_max_s)
        self._hold_until = 0.0
        self._rounds = 0
        self._degraded = False
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
        self._seq = 0
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
        self._reconnect.attempts, self._reconnect.failing_since = 0, None
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
        pending, self._pending = self._pending, {}
        self._returned.clear()
        self.metrics.in_flight.set(0)
        for item in pending.values():
            self.metrics.publish_failed.inc()
            item.callback(False)
        if was_ready and self._on_lost is not None:
            self._on_lost()

    # -- publishing -------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def degraded(self) -> bool:
        """Publishes are being refused (nacked, returned) or not confirmed within the bound."""
        return self._degraded

    @property
    def holding(self) -> bool:
        """Publishing is held after a refusal; retry after `retry_in_s()`."""
        return time.monotonic() < self._hold_until

    def retry_in_s(self) -> float:
        return max(0.0, self._hold_until - time.monotonic())

    def can_publish(self, window: int) -> bool:
        if not self._ready or self._blocked or self.holding:
            return False
        return len(self._pending) < window

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
        self._seq += 1
        self._pending[self._seq] = _Pending(routing_key, message_id, on_confirm, time.monotonic())
        self.metrics.published.labels(routing_key).inc()
        self.metrics.in_flight.set(len(self._pending))
        return True

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        # Counted and logged with the confirm that follows every return (_publish_refused).
        if properties.message_id:
            self._returned[properties.message_id] = (
                f"returned {method.reply_code} {method.reply_text} for routing key "
                f"{method.routing_key!r} (was a queue deleted?)"
            )

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        tag: int = method.delivery_tag
        if method.multiple:
            tags = []
            for t in self._pending:  # insertion order is publish order: stop at the first later
                if t > tag:
                    break
                tags.append(t)
        else:
            tags = [tag] if tag in self._pending else []
        outcomes: list[tuple[_Pending, bool]] = []
        refusal = ""
        for t in tags:
            item = self._pending.pop(t)
            returned = self._returned.pop(item.message_id, None)
            success = ok and returned is None
            if success:
                self.metrics.confirmed.labels(item.routing_key).inc()
            else:
                self.metrics.publish_failed.inc()
                refusal = refusal or returned or _nack_reason(item.routing_key)
            outcomes.append((item, success))
        self.metrics.in_flight.set(len(self._pending))
        # The state first, so that callbacks see the hold (retry_in_s) this frame causes.
        if refusal:
            self._publish_refused(refusal)
        elif outcomes:
            self._publish_confirmed()
        for item, success in outcomes:
            item.callback(success)

    # -- refused publishes --------------------------------------------------------------------
    def _where(self) -> str:
        return f"broker {redact(self.broker.urls[self._url_index])}"

    def _publish_confirmed(self) -> None:
        if self._degraded:
            self._refused.succeeded(log, f"publishes to {self._where()}")
            self._degraded = False
            self.metrics.health.set_degraded("publishes", None, self.metrics.publish_degraded)
        self._refused.attempts, self._refused.failing_since = 0, None
        self._rounds = 0
        self._hold_until = 0.0

    def _set_degraded(self, reason: str) -> None:
        """Not ready (/readyz, cti_journal_ready) and publish_degraded 1 until a confirm."""
        if not self._degraded:
            self._degraded = True
            self.metrics.health.set_degraded(
                "publishes",
                f"{self._where()} refused them: {reason}",
                self.metrics.publish_degraded,
            )

    def _publish_refused(self, reason: str) -> None:
        self._set_degraded(reason)
        if self.holding:
            return  # this round is already counted
        self._refused.failed(log, f"{self._where()} refused publishes", reason)
        self._hold_until = time.monotonic() + self._refused.delay()
        self._rounds += 1
        if self._rounds >= REOPEN_AFTER_ROUNDS:
            self._reopen(f"{self._rounds} rounds of refused publishes ({reason})")

    def _reopen(self, why: str) -> None:
        """Close the connection; the reconnect goes to the next URL with a channel that starts
        clean. Whatever is unconfirmed is reported as failed and sent again."""
        self._rounds = 0
        connection = self._connection
        if self._stopping or connection is None or not connection.is_open:
            return
        log.warning("%s: %s; reopening the connection to the next broker URL", self._where(), why)
        connection.close(reply_text="cti-journal: publishes refused, reconnecting")

    def _watch_confirms(self) -> None:
        self._watch = None
        if not self._ready:
            return
        oldest = next(iter(self._pending.values()), None)
        if (
            oldest is not None
            and not self._blocked
            and time.monotonic() - oldest.sent_at > CONFIRM_BOUND_S
        ):
            self._set_degraded(f"no confirm for {CONFIRM_BOUND_S:.0f} s")
            self._refused.failed(
                log, f"{self._where()} refused publishes", f"no confirm for {CONFIRM_BOUND_S:.0f} s"
            )
            self._refused.delay()  # counts the failure; the reconnect waits its own backoff
            self._reopen(f"a publish unconfirmed for over {CONFIRM_BOUND_S:.0f} s")
            return
        self._watch = self.ioloop.call_later(WATCH_INTERVAL_S, self._watch_confirms)

    # -- consuming --------------------------------------------------------------------------
    def consume(self, stage_queue: str, prefetch: int, on_message: MessageCallback) -> None:
        if self._channel is not None:
            consume(self._channel, stage_queue, prefetch, on_message)

    def ack(self, tag: int, *, multiple: bool = False) -> None:
        ack(self._channel, tag, multiple=multiple)

    def nack_requeue(self, tag: int) -> None:
        nack_requeue(self._channel, tag)


def run_in_thread(link: AmqpLink) -> threading.Thread:
    thread = threading.Thread(target=link.run, name=f"amqp-{link.name}", daemon=True)
    thread.start()
    return thread
