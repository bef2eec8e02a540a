"""The broker link's publish/confirm state machine (shared/confirms.py), fed events by hand: no
broker, no pika. What a real broker does with it (a quorum queue whose channel refuses every
publish) is tests/fault/test_cluster_refusals.py."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from cti_journal.shared.confirms import (
    CONFIRM_BOUND_S,
    REFUSED_FIRST_HOLD_S,
    REOPEN_AFTER_ROUNDS,
    ConfirmWindow,
)
from tests.support.clock import Clock

LOG = logging.getLogger("test_confirms")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def window(clock: Clock) -> ConfirmWindow[str]:
    return ConfirmWindow(max_hold_s=30.0, log=LOG, where=lambda: "broker mq1", clock=clock)


def publish(window: ConfirmWindow[str], *names: str, key: str = "q.lookup") -> None:
    for name in names:
        window.published(key, f"id-{name}", name)


def test_the_module_imports_no_pika() -> None:
    script = (
        "import sys\n"
        "import cti_journal.shared.confirms\n"
        "print('pika' in sys.modules, any(m.startswith('pika.') for m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["False", "False"], out


def test_an_ack_settles_its_message_and_holds_nothing(window: ConfirmWindow[str]) -> None:
    publish(window, "a", "b")
    assert window.in_flight == 2
    decision = window.confirmed(1, multiple=False, ack=True)
    assert [(p.token, ok) for p, ok in decision.settled] == [("a", True)]
    assert (decision.degraded, decision.recovered, decision.reopen) == (None, False, None)
    assert window.in_flight == 1
    assert not window.holding and window.retry_in_s() == 0.0


def test_a_multiple_ack_settles_every_tag_up_to_it_in_publish_order(
    window: ConfirmWindow[str],
) -> None:
    publish(window, "a", "b", "c", "d")
    decision = window.confirmed(3, multiple=True, ack=True)
    assert [p.token for p, ok in decision.settled if ok] == ["a", "b", "c"]
    assert window.in_flight == 1


def test_a_tag_not_pending_changes_nothing(window: ConfirmWindow[str]) -> None:
    publish(window, "a")
    decision = window.confirmed(7, multiple=False, ack=False)
    assert decision.settled == [] and decision.degraded is None
    assert window.in_flight == 1 and not window.degraded and not window.holding


def test_a_nack_holds_publishing_and_reports_degraded_once(
    window: ConfirmWindow[str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    publish(window, "a", "b", "c")
    first = window.confirmed(1, multiple=False, ack=False)
    assert [(p.token, ok) for p, ok in first.settled] == [("a", False)]
    assert first.degraded is not None and "nacked for routing key 'q.lookup'" in first.degraded
    assert window.degraded and window.holding
    # The first hold is REFUSED_FIRST_HOLD_S jittered to [½, 1] of itself.
    assert REFUSED_FIRST_HOLD_S / 2 <= window.retry_in_s() <= REFUSED_FIRST_HOLD_S
    # More refusals within the hold: the same round, degraded already said.
    hold = window.retry_in_s()
    second = window.confirmed(2, multiple=False, ack=False)
    assert second.degraded is None and second.reopen is None
    assert window.retry_in_s() == hold
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("broker mq1 refused publishes: nacked")
    clock.now += REFUSED_FIRST_HOLD_S
    assert not window.holding and window.retry_in_s() == 0.0


def test_rounds_of_refusals_without_a_confirm_reopen_the_connection(
    window: ConfirmWindow[str], clock: Clock
) -> None:
    reopened = []
    holds = []
    for i in range(2 * REOPEN_AFTER_ROUNDS):
        publish(window, f"m{i}")
        decision = window.confirmed(i + 1, multiple=False, ack=False)
        holds.append(window.retry_in_s())
        reopened.append(decision.reopen)
        clock.now += window.retry_in_s()  # the caller waits out the hold, then publishes again
    assert [why is not None for why in reopened] == [False, False, True, False, False, True]
    assert reopened[2] is not None and reopened[2].startswith(
        f"{REOPEN_AFTER_ROUNDS} rounds of refused publishes (nacked"
    )
    # Later rounds hold longer: the backoff resets only on a confirm (jitter: ½ to 1 of 2ⁿ×).
    assert holds[-1] >= REFUSED_FIRST_HOLD_S * 2 ** (len(holds) - 1) / 2


def test_a_confirm_after_refusals_recovers_and_clears_the_hold(
    window: ConfirmWindow[str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    publish(window, "a", "b")
    window.confirmed(1, multiple=False, ack=False)
    assert window.holding
    decision = window.confirmed(2, multiple=False, ack=True)
    assert decision.recovered and decision.degraded is None
    assert not window.degraded and not window.holding
    assert any("publishes to broker mq1: back after" in r.getMessage() for r in caplog.records)
    # The backoff started over: the next refusal holds for the first delay again.
    publish(window, "c")
    window.confirmed(3, multiple=False, ack=False)
    assert window.retry_in_s() <= REFUSED_FIRST_HOLD_S
    # A confirm while all is well recovers nothing.
    clock.now += 1
    publish(window, "d")
    window.confirmed(4, multiple=False, ack=True)
    publish(window, "e")
    assert not window.confirmed(5, multiple=False, ack=True).recovered


def test_a_returned_message_is_refused_with_the_brokers_reason_when_its_ack_comes(
    window: ConfirmWindow[str],
) -> None:
    publish(window, "a", "b")
    window.returned("id-a", "returned 312 NO_ROUTE for routing key 'q.lookup'")
    decision = window.confirmed(2, multiple=True, ack=True)
    assert [(p.token, ok) for p, ok in decision.settled] == [("a", False), ("b", True)]
    assert decision.degraded == "returned 312 NO_ROUTE for routing key 'q.lookup'"
    assert window.holding


def test_a_lost_channel_fails_everything_pending_and_a_new_one_counts_from_one(
    window: ConfirmWindow[str],
) -> None:
    publish(window, "a", "b")
    window.returned("id-b", "returned 312 NO_ROUTE")
    assert [p.token for p in window.lost()] == ["a", "b"]
    assert window.in_flight == 0
    window.opened()
    publish(window, "c")
    decision = window.confirmed(1, multiple=False, ack=True)
    assert [(p.token, ok) for p, ok in decision.settled] == [("c", True)]
    window.opened()
    publish(window, "d")
    window.returned("id-b", "stale")  # a return of the old channel's message id
    decision = window.confirmed(1, multiple=False, ack=True)
    assert [(p.token, ok) for p, ok in decision.settled] == [("d", True)]


def test_a_publish_unconfirmed_past_the_bound_reopens(
    window: ConfirmWindow[str], clock: Clock
) -> None:
    assert window.tick(blocked=False).reopen is None  # nothing pending
    publish(window, "a")
    clock.now += CONFIRM_BOUND_S
    assert window.tick(blocked=False).reopen is None  # at the bound, not past it
    clock.now += 0.5
    blocked = window.tick(blocked=True)  # an alarm blocks publishing: not the broker refusing
    assert blocked.reopen is None and blocked.degraded is None
    decision = window.tick(blocked=False)
    assert decision.reopen == f"a publish unconfirmed for over {CONFIRM_BOUND_S:.0f} s"
    assert decision.degraded == f"no confirm for {CONFIRM_BOUND_S:.0f} s"
    assert window.degraded
    assert not window.holding  # the reconnect waits its own backoff, not a publish hold
