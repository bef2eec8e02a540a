"""A contact file as a source (`type = "file"`): a vCard file, a folder of vCard files, or an
Outlook / Google / plain CSV export (lookup/sources/exports.py); the format from the content.

The file is read again only when it changed: its size and modification time, and when those
moved, the SHA-256 of its bytes (a re-export with the same content costs no rebuild). The
change feed hands the holder the records that differ from the last read and the ids that are
gone, so a changed file never empties the source for a moment. A file that changes while it is
read (an export job still writing), that is missing, unreadable, or cut off inside a quoted
field fails the refresh and the last complete read stays in service.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import (
    ChangeSet,
    Configured,
    SourceRefusedError,
    SourceUnavailableError,
    where,
)
from cti_journal.lookup.sources.exports import BrokenExportError, ExportError, decode, read_csv
from cti_journal.lookup.sources.vcard import VCardReader, card_row
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.masking import mask_numbers_in

log = logging.getLogger(__name__)

VCARD_SUFFIXES: Final = (".vcf", ".vcard")


@dataclass(frozen=True)
class _Snapshot:
    stat: tuple[tuple[str, int, int], ...]  # (name, size, mtime_ns) of each file read
    digest: str

    @property
    def token(self) -> str:
        return self.digest


def read_contacts(
    data: bytes, source: ContactSourceSettings, *, file: str = ""
) -> list[ContactRow]:
    """The rows of one file's bytes, whatever its format; ExportError if it has none we know.
    A vCard without UID gets `<file>#N` (`card:N` without a file name): its place."""
    text, _encoding = decode(data)
    if not text.lstrip().upper().startswith("BEGIN:VCARD"):
        return list(read_csv(text, source))
    reader = VCardReader()
    rows = [
        card_row(card, source, fallback_id=f"{file}#{n}" if file else f"card:{n}")
        for n, card in enumerate(reader.read_text(text, file or source.name), 1)
    ]
    if reader.skipped:
        if not rows:
            raise ExportError(f"no readable vCard: {reader.problems[0]}")
        log.warning(
            "source %s: %d malformed vCard(s) skipped, e.g. %s",
            source.name, reader.skipped, mask_numbers_in(reader.problems[0]),
        )  # fmt: skip
    return rows


class FileContactSource(Configured):
    def __init__(self, settings: ContactSourceSettings) -> None:
        self._settings = settings
        self._path = Path(settings.path)
        self._snapshot: _Snapshot | None = None
        self._rows: dict[str, ContactRow] = {}

    @property
    def incremental(self) -> bool:
        return True

    @property
    def deletions(self) -> bool:
        return True

    @property
    def token(self) -> str | None:
        return None if self._snapshot is None else self._snapshot.token

    def full_load(self) -> Iterator[ContactRow]:
        snapshot, rows = self._read()
        self._keep(snapshot, rows)
        return iter(rows)

    def changes(self, token: str | None) -> ChangeSet:
        known = self._snapshot
        if known is not None and token == known.token and self._stat() == known.stat:
            return ChangeSet(token=token)
        snapshot, rows = self._read()
        if self._snapshot is not None and snapshot.digest == self._snapshot.digest:
            self._snapshot = snapshot  # touched, not changed
            return ChangeSet(token=snapshot.token)
        old = self._rows
        self._keep(snapshot, rows)
        upserts = [row for row in rows if old.get(row.record_id) != row]
        deleted = [rid for rid in old if rid not in self._rows]
        return ChangeSet(upserts=upserts, deletions=deleted, token=snapshot.token)

    def _keep(self, snapshot: _Snapshot, rows: list[ContactRow]) -> None:
        self._snapshot = snapshot
        self._rows = {row.record_id: row for row in rows}

    # -- reading ---------------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        if self._path.is_dir():
            return sorted(
                p
                for p in self._path.iterdir()
                if p.suffix.lower() in VCARD_SUFFIXES and p.is_file()
            )
        return [self._path]

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        place = where(self._settings, str(self._path))
        try:
            out = []
            for p in self._files():
                st = p.stat()
                out.append((p.name, st.st_size, st.st_mtime_ns))
            return tuple(out)
        except FileNotFoundError as exc:
            raise SourceRefusedError(f"{place}: does not exist") from exc
        except OSError as exc:
            raise SourceUnavailableError(f"{place}: cannot read: {exc.strerror}") from exc

    def _read(self) -> tuple[_Snapshot, list[ContactRow]]:
        place = where(self._settings, str(self._path))
        before = self._stat()
        digest = hashlib.sha256()
        rows: list[ContactRow] = []
        for p in self._files():
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise SourceUnavailableError(
                    f"{place}: cannot read {p.name}: {exc.strerror}"
                ) from exc
            digest.update(p.name.encode() + b"\0" + data)
            try:
                rows += read_contacts(data, self._settings, file=p.name)
            except BrokenExportError as exc:
                raise SourceUnavailableError(f"{place}: {p.name}: {exc}") from exc
            except ExportError as exc:
                raise SourceRefusedError(f"{place}: {p.name}: {exc}") from exc
        if self._stat() != before:
            raise SourceUnavailableError(f"{place}: changed while it was read; read again later")
        if self._path.is_dir() and not before:
            log.warning("%s: no %s files in the folder", place, "/".join(VCARD_SUFFIXES))
        return _Snapshot(before, digest.hexdigest()), rows
