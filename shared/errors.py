"""The project's one exception tree.

Adapters (pika, pyodbc, the line parser) translate what they see into these classes at their
edge, so that the retry decision is made in one place (`shared.consumer`) from the class alone.
"""

from __future__ import annotations


class CtiJournalError(Exception):
    """Base of every error this project raises on purpose."""

    # What the process exits with when this ends it: 1 = worth a restart (a supervisor restarts
    # it with a delay), 2 = a configuration problem that a restart cannot fix (not restarted).
    exit_code = 1


class ConfigError(CtiJournalError):
    """A setting is missing or wrong. The message names the setting; the process exits 2."""

    exit_code = 2

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"config: {setting}: {problem}")
        self.setting = setting
        self.problem = problem


class CheckFailedError(CtiJournalError):
    """A `cti-journal check` part that has a report to show and failed: its lines are printed,
    then the failure."""

    def __init__(self, lines: list[str], message: str) -> None:
        super().__init__(message)
        self.lines = lines


class BadInputError(CtiJournalError):
    """An input (a CTI line, a message body) can never be processed: dead-letter it, never retry."""


class PermanentError(CtiJournalError):
    """Processing this one entry failed for good (e.g. the database rejects the value)."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class TransientError(CtiJournalError):
    """A fault outside the entry (connection lost, deadlock, timeout): retry later, bounded."""


class ConnectionLostError(TransientError):
    """The database or broker cannot be reached: wait and reconnect; the entry is innocent."""


def describe(error: BaseException) -> str:
    """A one-line reason for a log or an error message, never empty: pika's connection errors
    have an empty str() and hide the cause (refused, timed out, TLS, credentials) in their args."""
    inner = error
    for _ in range(5):  # pika wraps: AMQPConnectionError(AMQPConnectorSocketConnectError(OSError))
        wrapped = getattr(inner, "exception", None)  # pika's connector phase errors
        if wrapped is None and getattr(inner, "exceptions", None):
            wrapped = inner.exceptions[-1]  # type: ignore[attr-defined]  # a failed workflow
        if wrapped is None and inner.args and isinstance(inner.args[0], BaseException):
            wrapped = inner.args[0]
        if not isinstance(wrapped, BaseException):
            break
        inner = wrapped
    cause = inner.args[-1] if isinstance(inner, OSError) and inner.args else None
    if isinstance(inner, OSError) and isinstance(cause, str):
        return cause.lower()  # "connection refused", "no route to host"
    text = str(inner).strip()
    if text.startswith("(") and text.endswith(",)"):
        text = text[1:-2].strip("'\"")
    return text or type(inner).__name__
