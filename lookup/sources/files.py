"""Placeholder until the reader lands (same branch, next commits)."""

from __future__ import annotations

from collections.abc import Iterator

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import FullLoadOnly, SourceRefusedError, where
from cti_journal.shared.config import ContactSourceSettings


class FileContactSource(FullLoadOnly):
    def __init__(self, settings: ContactSourceSettings) -> None:
        self._settings = settings

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def settings(self) -> ContactSourceSettings:
        return self._settings

    def full_load(self) -> Iterator[ContactRow]:
        raise SourceRefusedError(f"{where(self._settings)}: not implemented yet")
