"""How each `Journal_*` value is made to fit its column's SQL type; a value that cannot fit
raises `PermanentError` naming the column.

* Missing values: an empty text or a missing number goes in as NULL when the column is nullable,
  and as the neutral value ("" or 0) when it is NOT NULL (or the driver cannot tell), so that an
  unanswered call without a duration is never refused by a NOT NULL column.
* Text longer than the column is cut to fit and `on_truncate(column)` is called; the declared
  size is honoured on SQLite as well, which does not enforce it, so that all databases hold the
  same data. A number is never cut: a number whose text does not fit is a `PermanentError`.
  The event id (`ID`) is never cut either: a cut id could collide with another entry's.
* Integers are checked against the column's range here, because MariaDB outside strict mode would
  silently store the nearest value.
* `Journal_ZeitpunktNumerisch` (and `Journal_Zeitpunkt`, which carries the same value) goes into
  a date/time column as a naive `datetime` of the local wall-clock time; into a column with a time
  zone (PostgreSQL `timestamptz`, SQL Server `datetimeoffset`) as the UTC instant; into a floating
  point or decimal column as the OLE Automation date; into a text column as the text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final

from cti_journal.shared.columns import SPECS, ColumnType
from cti_journal.shared.convert import is_digits, local_time, whole_number
from cti_journal.shared.errors import BadInputError, PermanentError
from cti_journal.shared.message import JournalEntry
from cti_journal.writer.mapping import MappedColumn

OLE_EPOCH: Final = date(1899, 12, 30)


def ole_date(moment: datetime) -> float:
    """*moment* as an OLE Automation date: days since 1899-12-30, the time of day as the fraction.

    Before the epoch the whole days count down while the fraction still counts up, as in Access.
    """
    days = (moment.date() - OLE_EPOCH).days
    fraction = (
        moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    ) / 86400
    return days + fraction if days >= 0 else days - fraction


def converter(
    col: MappedColumn, on_truncate: Callable[[str], None]
) -> Callable[[JournalEntry], Any]:
    source = _source(col)
    if col.sql_kind == "text":
        return _text_converter(col, source, on_truncate)
    if col.sql_kind == "integer":
        return _integer_converter(col, source)
    if col.sql_kind == "float":
        return lambda entry: _float(col, source(entry))
    if col.utc:
        return lambda entry: entry.utc
    return lambda entry: _moment(col, entry.zeitpunkt)


def _text_converter(
    col: MappedColumn, source: Callable[[JournalEntry], Any], on_truncate: Callable[[str], None]
) -> Callable[[JournalEntry], Any]:
    """`_text` with the usual case inline (a text that fits, or a missing one): one call per
    column and row instead of three, on every row the writer writes."""
    size = col.size if col.size is not None else -1
    missing = _missing(col)

    def convert(entry: JournalEntry) -> Any:
        value = source(entry)
        if value == "" or value is None:
            return missing
        if type(value) is str and (size < 0 or len(value) <= size):
            return value
        return _text(col, value, on_truncate)  # a number, or too long: cut or refused

    return convert


def _integer_converter(
    col: MappedColumn, source: Callable[[JournalEntry], Any]
) -> Callable[[JournalEntry], Any]:
    """`_integer` with the usual case inline: an int (not a bool) within the column's range."""
    low = col.low if col.low is not None else -(2**63)
    high = col.high if col.high is not None else 2**63 - 1

    def convert(entry: JournalEntry) -> Any:
        value = source(entry)
        if type(value) is int and low <= value <= high:
            return value
        return _integer(col, value)

    return convert


def _source(col: MappedColumn) -> Callable[[JournalEntry], Any]:
    if (
        col.type in (ColumnType.ZEITPUNKT, ColumnType.ZEITPUNKT_NUMERISCH)
        and col.sql_kind == "float"
    ):
        return lambda entry: _moment(col, entry.zeitpunkt)
    return operator.attrgetter(SPECS[col.type].field)


def _missing(col: MappedColumn) -> Any:
    if col.nullable:
        return None
    return "" if col.sql_kind == "text" else 0


def _text(col: MappedColumn, value: str | int | None, on_truncate: Callable[[str], None]) -> Any:
    if value is None or value == "":
        return _missing(col)
    text = str(value)
    if col.size is None or len(text) <= col.size:
        return text
    if isinstance(value, int) or col.type is ColumnType.ID:
        raise PermanentError(
            f"{text!r} does not fit into column {col.name} of {col.size} characters",
            column=col.name,
        )
    on_truncate(col.name)
    return text[: col.size]


_WIDEST: Final = 2**63  # no SQL integer type is wider; the column's own range is checked after


def _integer(col: MappedColumn, value: str | int | None) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return _missing(col)
        value = _whole_number(col, text)
    if value is None:
        return _missing(col)
    _check_range(col, value)
    return value


def _whole_number(col: MappedColumn, text: str) -> int:
    try:
        # shared/convert.py: ASCII digits only, never int() on 4,301 digits (a ValueError that
        # was not a PermanentError and took the whole batch with it)
        return whole_number(text.removeprefix("+"), f"column {col.name}", _WIDEST, minimum=-_WIDEST)
    except BadInputError as exc:
        digits = text.lstrip("+-")
        problem = (
            f"{text[:30]!r} ({len(digits)} digits) does not fit into column {col.name}"
            if is_digits(digits)
            else f"{text[:60]!r} is not a whole number for the integer column {col.name}"
        )
        raise PermanentError(problem, column=col.name) from exc


def _check_range(col: MappedColumn, value: float) -> None:
    if (col.low is not None and value < col.low) or (col.high is not None and value > col.high):
        raise PermanentError(
            f"{value} does not fit into column {col.name} ({col.low}..{col.high})",
            column=col.name,
        )


def _float(col: MappedColumn, value: datetime | int | None) -> Any:
    if value is None:
        return _missing(col)
    number = ole_date(value) if isinstance(value, datetime) else value
    _check_range(col, number)
    if col.scale is not None and isinstance(number, float):
        return round(number, col.scale)
    return number


def _moment(col: MappedColumn, zeitpunkt: str) -> datetime:
    try:
        return local_time(zeitpunkt, "Zeitpunkt")  # ASCII digits only, a value or BadInputError
    except BadInputError as exc:
        raise PermanentError(
            f"Zeitpunkt {zeitpunkt[:40]!r} is not YYYY-MM-DD HH:MM:SS", column=col.name
        ) from exc
