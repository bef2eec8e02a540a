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

import dataclasses
import functools
import operator
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Final

from cti_journal.shared.columns import SPECS, ColumnType
from cti_journal.shared.convert import is_digits, local_time, whole_number
from cti_journal.shared.errors import BadInputError, PermanentError
from cti_journal.shared.message import EntryFields, JournalEntry
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


# An entry as the writer holds it: its fields' values in `JournalEntry`'s field order, optional
# ones at their defaults. One C call makes it from a decoded message's fields (`entry_values`) or
# from a `JournalEntry` (`values_of`), where building the entry object from the dict cost ~8
# times as much (a Python loop over 22 slots); it holds as little memory as the object (the
# writer holds up to `prefetch` messages' entries while the database is busy).
EntryValues = tuple[Any, ...]
RowBuilder = Callable[[EntryValues], tuple[Any, ...]]
FIELDS: Final = tuple(f.name for f in dataclasses.fields(JournalEntry))
values_of: Final[Callable[[JournalEntry], EntryValues]] = operator.attrgetter(*FIELDS)
EVENT_ID: Final = FIELDS.index("event_id")
SOURCE: Final = FIELDS.index("source")
RECEIVED_AT: Final = FIELDS.index("received_at")
UTC: Final = FIELDS.index("utc")
GATEWAY: Final = FIELDS.index("gateway")
ZEITPUNKT: Final = FIELDS.index("zeitpunkt")


# A decoded message's entry (`decode_bundle_fields`: checked, every field present, defaults
# filled in by the reader) as `EntryValues`: its fields share `JournalEntry`'s names.
entry_values: Final[Callable[[EntryFields], EntryValues]] = operator.attrgetter(*FIELDS)


def entry_of(values: EntryValues) -> JournalEntry:
    """The entry again, e.g. to encode it as the message it came as (a dead letter)."""
    return JournalEntry.assemble(dict(zip(FIELDS, values, strict=True)))


def row_builder(columns: Sequence[MappedColumn], on_truncate: Callable[[str], None]) -> RowBuilder:
    """One function that turns an entry's values into the parameters of its row, for these
    columns: each column's conversion is chosen here, once, and the usual case (a text that
    fits, an int within range, a missing value) is inline code; anything else goes to the
    column's full conversion (`_text`, `_integer`, `_float`, `_moment`), which cuts, refuses
    or converts. Generated as one function because calling a converter per column and row
    cost more than the conversions themselves (about 2.5 times the generated function).

    Equal to the per-value conversions, by a property test (tests/unit/test_row_builder.py).
    Only numbers are written into the code (field positions, the columns' sizes and ranges as
    ints); everything else is passed as objects in its namespace."""
    namespace: dict[str, Any] = {}
    lines: list[str] = []
    for j, col in enumerate(columns):
        lines += _column_code(j, col, on_truncate, namespace)
    values = "".join(f"c{j}, " for j in range(len(columns)))
    code = "def row(fields):\n"
    code += "".join(f"    {line}\n" for line in lines)
    code += f"    return ({values})\n"
    exec(compile(code, f"<row of {len(columns)} columns>", "exec"), namespace)
    row: RowBuilder = namespace["row"]
    return row


def _column_code(
    j: int, col: MappedColumn, on_truncate: Callable[[str], None], namespace: dict[str, Any]
) -> list[str]:
    """The lines that set `c<j>`, the value of column *col*, from `fields` (EntryValues)."""
    value = f"fields[{FIELDS.index(SPECS[col.type].field)}]"
    namespace[f"missing{j}"] = _missing(col)
    if col.sql_kind == "text":
        namespace[f"slow{j}"] = functools.partial(_text, col, on_truncate=on_truncate)
        fits = "" if col.size is None else f" and len(v) <= {int(col.size)}"
        return [
            f"v = {value}",
            f'if v == "" or v is None: c{j} = missing{j}',
            f"elif type(v) is str{fits}: c{j} = v",
            f"else: c{j} = slow{j}(v)  # a number, or too long: cut or refused",
        ]
    if col.sql_kind == "integer":
        namespace[f"slow{j}"] = functools.partial(_integer, col)
        low = int(col.low) if col.low is not None else -(2**63)
        high = int(col.high) if col.high is not None else 2**63 - 1
        return [
            f"v = {value}",
            f"if type(v) is int and {low} <= v <= {high}: c{j} = v",
            f"else: c{j} = slow{j}(v)",
        ]
    namespace[f"moment{j}"] = functools.partial(_moment, col)
    moment = f"moment{j}(fields[{FIELDS.index('zeitpunkt')}])"
    if col.sql_kind == "float":
        namespace[f"float{j}"] = functools.partial(_float, col)
        zeitpunkt = col.type in (ColumnType.ZEITPUNKT, ColumnType.ZEITPUNKT_NUMERISCH)
        return [f"c{j} = float{j}({moment if zeitpunkt else value})"]
    if col.utc:
        return [f"c{j} = fields[{UTC}]"]
    return [f"c{j} = {moment}"]


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
