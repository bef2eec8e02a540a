import logging
import threading

import pytest

from cti_journal.shared.backoff import Backoff, retry


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


def test_retry_waits_out_the_failures_and_logs_the_run_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="t")
    results = iter([OSError("refused"), OSError("refused"), "connected"])

    def attempt() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    got = retry(attempt, failures=OSError, backoff=Backoff(first_s=0.001, max_s=0.002),
                stop=threading.Event(), logger=logging.getLogger("t"), what="db",
                failing="db unreachable")  # fmt: skip
    assert got == "connected"
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [m for level, m in messages if level == logging.WARNING] == [
        "db unreachable: refused; retrying with backoff (at most 0 s apart)"
    ]
    assert messages[-1][0] == logging.INFO and messages[-1][1].startswith("db: back after")


def test_retry_ends_with_none_when_stopped_and_lets_other_errors_through() -> None:
    stop = threading.Event()
    stop.set()

    def unreachable() -> None:
        raise OSError("down")

    logger = logging.getLogger("t")
    assert retry(unreachable, failures=OSError, backoff=Backoff(first_s=5), stop=stop,
                 logger=logger, what="db") is None  # fmt: skip

    def refused() -> None:
        raise ValueError("wrong password")

    with pytest.raises(ValueError):
        retry(refused, failures=OSError, backoff=Backoff(), stop=stop, logger=logger, what="db")
