"""Logging set-up: plain lines for people, JSON lines (`--log-json`) for log shippers.

- Phone numbers are personal data: every string (and exception) argument of a log record is
  masked to its last digits, and a quoted name in it to its initials (`shared.masking`), unless
  `--log-numbers` is given for a debugging session. Counts and
  times are passed as numbers (`%d`, `%.1f`) and stay as they are.
- A JSON line carries the fields given with `extra=` (source, queue, event_id, counts …) beside
  `msg`, so that a log shipper can filter on them.
- pika reports every failed connection attempt at ERROR with a traceback; an outage is expected
  and our own code logs it once, with what and where. pika's records about outages are dropped;
  anything else pika says at ERROR passes, without its traceback unless at DEBUG level.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import time
from typing import Any

import orjson

from cti_journal.shared.masking import mask_personal_in

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class PlainFormatter(logging.Formatter):
    """Plain lines; a traceback's text is masked too (an error message may quote a value)."""

    def __init__(self, *, mask: bool = True) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.mask = mask

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        text = super().formatException(ei)
        return mask_personal_in(text) if self.mask else text


class JsonFormatter(PlainFormatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class MaskNumbers(logging.Filter):
    """Masks phone numbers in a record's string arguments and `extra` strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.msg, str):  # a message without arguments (args is ())
            record.msg = mask_personal_in(record.msg)
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask_personal_in(value))
        return True


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_personal_in(value)
    if isinstance(value, BaseException):  # formatted with %s later: its text may quote values
        return mask_personal_in(str(value))
    if isinstance(value, bytes):  # a raw line logged with %r
        return mask_personal_in(value.decode("latin-1")).encode("latin-1")
    if isinstance(value, BaseException):  # an error message may quote a line or a number
        return mask_personal_in(str(value))
    return value


class QuietPika(logging.Filter):
    """Drops pika's records about an unreachable or lost broker (ours say it once); keeps the
    rest, without a traceback unless `keep_tracebacks`."""

    def __init__(self, keep_tracebacks: bool) -> None:
        super().__init__()
        self.keep_tracebacks = keep_tracebacks

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("pika"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_outage(error):
            return False
        if any(word in record.getMessage() for word in _OUTAGE_WORDS):
            return False
        if not self.keep_tracebacks:
            record.exc_info = None
            record.exc_text = None
        return True


_OUTAGE_WORDS = (
    "Error in _create_connection",
    "Connection workflow failed",
    "connection_lost",
    "Socket error",
    "StreamLostError",
    "AMQPConnectionWorkflowFailed",
    "TCP Connection attempt failed",
    "Stream connection lost",
    "Connection refused",
    "closed unexpectedly",
)


def _is_outage(error: BaseException) -> bool:
    import pika.exceptions

    return isinstance(
        error, pika.exceptions.AMQPConnectionError | ConnectionError | socket.error | ssl.SSLError
    )


def setup_logging(level: str, *, json_lines: bool = False, log_numbers: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    mask = not log_numbers
    handler.setFormatter(JsonFormatter(mask=mask) if json_lines else PlainFormatter(mask=mask))
    debug = level.upper() == "DEBUG"
    handler.addFilter(QuietPika(keep_tracebacks=debug))
    if not log_numbers:
        handler.addFilter(MaskNumbers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika logs every reconnect step at INFO; our own code logs each state change once.
    logging.getLogger("pika").setLevel(logging.DEBUG if debug else logging.ERROR)


def log_level(value: str) -> str:
    """argparse type for --log-level: a clear error instead of logging's ValueError."""
    if value.upper() not in LEVELS:
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(LEVELS)}")
    return value.upper()
