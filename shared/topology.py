"""The AMQP topology: names and arguments, declared idempotently by every process at start.

    exchange <prefix> (direct, durable)
      "lookup"          -> <prefix>.lookup          quorum; dead-letters to "dead"
      "write"           -> <prefix>.write           quorum; dead-letters to "dead"
      "dead"            -> <prefix>.dead            quorum; each letter expires after
                                                     broker.dead_letter_days (0 = never)
      "retry.<stage>.N" -> <prefix>.retry.<stage>.N quorum, TTL = retry_delays_ms[N];
                                                     expired messages dead-letter back to <stage>

Work queues carry `x-delivery-limit`: an entry that crashes its worker again and again (so that no
handler ever sees it fail) is dead-lettered by the broker instead of looping forever. Every
dead-letter hop is `at-least-once`, which RabbitMQ allows only with `x-overflow: reject-publish`.

Dead letters keep the whole entry (the raw line, for replay) and so are personal data with a
retention limit: each dead letter we publish carries a per-message TTL (`expiration`), not the
queue a `x-message-ttl`. A queue's arguments cannot change once it exists (declaring it with
other arguments fails with PRECONDITION_FAILED and would stop every process of an existing
deployment), while a per-message TTL works on the queue as it is and follows a changed setting
from the next letter on. Not covered: letters the broker dead-letters itself (an entry past
`x-delivery-limit`) keep the properties they had; an admin who wants those to expire too sets a
policy on the queue (docs/privacy.md, "Dead letters").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cti_journal.shared.config import BrokerSettings

LOOKUP: Final = "lookup"
WRITE: Final = "write"
DEAD: Final = "dead"
STAGES: Final = (LOOKUP, WRITE)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    routing_key: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Topology:
    prefix: str
    retry_delays_ms: tuple[int, ...]
    delivery_limit: int
    dead_letter_ttl_ms: int = 0  # 0 = dead letters never expire

    @classmethod
    def from_settings(cls, broker: BrokerSettings) -> Topology:
        """The topology `[broker]` describes: the same names, arguments and dead-letter expiry in
        every process and command."""
        return cls(
            broker.prefix,
            broker.retry_delays_ms,
            broker.delivery_limit,
            broker.dead_letter_days * 86_400_000,
        )

    def expiration(self, routing_key: str) -> str | None:
        """The per-message TTL (AMQP `expiration`, ms as text) of a message to `routing_key`."""
        if routing_key == DEAD and self.dead_letter_ttl_ms > 0:
            return str(self.dead_letter_ttl_ms)
        return None

    @property
    def exchange(self) -> str:
        return self.prefix

    def queue(self, stage: str) -> str:
        return f"{self.prefix}.{stage}"

    def retry_key(self, stage: str, attempt: int) -> str:
        """Routing key of the retry queue for the given (1-based) failed attempt: delays grow."""
        index = min(max(attempt, 1), len(self.retry_delays_ms)) - 1
        return f"retry.{stage}.{index}"

    def queues(self) -> list[QueueSpec]:
        safe_dlx = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        specs = [
            QueueSpec(
                self.queue(stage),
                stage,
                {
                    "x-queue-type": "quorum",
                    "x-dead-letter-exchange": self.exchange,
                    "x-dead-letter-routing-key": DEAD,
                    "x-delivery-limit": self.delivery_limit,
                    **safe_dlx,
                },
            )
            for stage in STAGES
        ]
        specs.append(QueueSpec(self.queue(DEAD), DEAD, {"x-queue-type": "quorum"}))
        for stage in STAGES:
            for index, delay in enumerate(self.retry_delays_ms):
                specs.append(
                    QueueSpec(
                        f"{self.prefix}.retry.{stage}.{index}",
                        f"retry.{stage}.{index}",
                        {
                            "x-queue-type": "quorum",
                            "x-message-ttl": delay,
                            "x-dead-letter-exchange": self.exchange,
                            "x-dead-letter-routing-key": stage,
                            **safe_dlx,
                        },
                    )
                )
        return specs
