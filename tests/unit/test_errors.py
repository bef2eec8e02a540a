import pika
import pika.exceptions
import pytest

from cti_journal.shared.errors import describe
from tests.support.harness import free_port


def test_a_refused_broker_connection_says_refused() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F?connection_attempts=1"
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(pika.URLParameters(url))
    assert str(info.value) == "" or "refused" in describe(info.value).lower()
    assert "refused" in describe(info.value).lower()


def test_plain_errors_and_empty_ones() -> None:
    assert describe(ValueError("bad port")) == "bad port"
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(ConnectionRefusedError(111, "Connection refused")) == "connection refused"
