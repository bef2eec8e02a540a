"""What `subject` writes: the export (CSV or JSON) and the dry run's listing.

The export is the subject's data, handed to the subject or to a lawyer, and opened in a
spreadsheet: a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed
with `'` (OWASP, "CSV Injection"), so that a contact name such as `=HYPERLINK(...)` stays text.
Written to a file (`-o`), the export is a NEW file of mode 0600: an existing file is refused
and a symbolic link is never followed (O_CREAT|O_EXCL|O_NOFOLLOW), so that the command cannot be
made to overwrite another file or leave the data readable. Written to the terminal, every
control character of the data is shown escaped (shared/terminal.py).
"""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson

from cti_journal.shared.errors import ConfigError
from cti_journal.shared.masking import mask_name, mask_numbers_in
from cti_journal.shared.terminal import safe_text
from cti_journal.writer.subject_dead import DeadMatch

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
NAME_COLUMNS: Final = frozenset({"Journal_Name", "Journal_Firma"})


@dataclass
class Export:
    columns: list[str]  # the journal table's mapped columns, in order
    rows: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[str] = field(default_factory=list)  # event ids found in the ledger
    dead: list[DeadMatch] = field(default_factory=list)


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def open_new_file(path: str) -> IO[str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(
            "--output", f"{path} exists (or is a link): give a new file name; export never "
            "overwrites or follows a link"
        ) from exc  # fmt: skip
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError("--output", f"{path} is a symbolic link: refused") from exc
        raise ConfigError("--output", f"cannot create {path}: {exc.strerror}") from exc
    os.fchmod(fd, 0o600)  # whatever the umask left
    return open(fd, "w", encoding="utf-8", newline="")


def write_export(export: Export, fmt: str, fh: IO[str], *, terminal: bool) -> None:
    if fmt == "json":
        text = orjson.dumps(_as_json(export), option=orjson.OPT_INDENT_2).decode()
        if terminal:  # JSON escapes C0 controls itself; C1 controls and bidi marks it leaves
            text = "\n".join(safe_text(line, backslashes=False) for line in text.split("\n"))
        fh.write(text + "\n")
        return
    header = ["record", *export.columns, "event_id", "dead_letter_id", "dead_letter_stage",
              "dead_letter_content"]  # fmt: skip
    writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
    for record in (header, *_csv_records(export)):
        cells = [csv_cell(v) for v in record]
        writer.writerow([safe_text(c) for c in cells] if terminal else cells)


def _as_json(export: Export) -> dict[str, Any]:
    return {
        "journal": export.rows,
        "ledger": [{"event_id": e} for e in export.ledger],
        "dead_letters": [_dead_json(m) for m in export.dead],
    }


def _dead_json(match: DeadMatch) -> dict[str, Any]:
    found: dict[str, Any] = {"id": match.id, "stage": match.stage}
    if match.entries:
        found["entries"] = match.entries
    else:
        found["line"] = match.raw_line
    return found


def _csv_records(export: Export) -> Iterator[list[Any]]:
    blank = [""] * len(export.columns)
    for row in export.rows:
        yield ["journal", *(row.get(c) for c in export.columns), "", "", "", ""]
    for event_id in export.ledger:
        yield ["ledger", *blank, event_id, "", "", ""]
    for match in export.dead:
        contents: Iterable[str] = (
            [orjson.dumps(e).decode() for e in match.entries] if match.entries else [match.raw_line]
        )
        for content in contents:
            yield ["dead_letter", *blank, "", match.id, match.stage, content]


def listing(export: Export) -> Iterator[str]:
    """Every row, ledger entry and dead letter a request touches, one line each, with numbers
    and names masked and control characters escaped (the dry run's listing)."""
    for row in export.rows:
        shown = ", ".join(f"{c}={_masked(c, row.get(c))}" for c in export.columns)
        yield f"  journal: {shown}"
    for event_id in export.ledger:
        yield f"  ledger: event {event_id} (kept: no number; stops a re-import)"
    for match in export.dead:
        what = f"{len(match.entries)} entries" if match.entries else "a raw line"
        kept = ", the rest of its bundle stays" if match.keep is not None else ""
        yield f"  dead letter {match.id} ({safe_text(match.stage)}): {what}{kept}"


def _masked(column: str, value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    text = mask_name(text) if column in NAME_COLUMNS else mask_numbers_in(text)
    return safe_text(text)
