import logging
import threading

from cti_journal.shared.backoff import Backoff


def test_delays_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    b = Backoff(first_s=1.0, max_s=8.0)
    bases = [1, 2, 4, 8, 8, 8]
    for base in bases:
        d = b.delay()
        assert base * 0.5 <= d <= base
    assert b.failing


def test_success_resets_and_logs_the_recovery_once(caplog: object) -> None:
    b = Backoff(first_s=0.01, max_s=0.02)
    logger = logging.getLogger("t")
    b.failed(logger, "broker x", "refused")
    assert b.wait(threading.Event()) is False
    b.succeeded(logger, "broker x")
    assert not b.failing and b.delay() <= 0.01


def test_wait_returns_true_when_stopped() -> None:
    stop = threading.Event()
    stop.set()
    assert Backoff(first_s=5).wait(stop) is True
