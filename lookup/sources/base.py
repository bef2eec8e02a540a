"""What every contact source is: the protocol the holder refreshes, the change set of an
incremental feed, and the two ways a source fails.

A source's life in the holder (lookup/sources/holder.py):
- `full_load()` yields every record. The holder builds the source's new part of the index from
  it and swaps it in only when the iterator ends normally: a source that raises part-way (a
  failed page, a dropped connection) keeps its last complete part. A source must therefore
  raise on anything incomplete, never just stop yielding.
- After a complete load the holder reads `token` (the source's resume point, e.g. the highest
  `modifyTimestamp`, a CardDAV sync-token) and, on later refreshes of an `incremental` source,
  calls `changes(token)`: the records added or changed since, the ids deleted since, and the
  next token. A feed that cannot see deletions (`deletions` false: a modified-timestamp column,
  `updated_since`) is read fully every `FULL_RELOAD_EVERY`-th refresh instead.
- `SourceUnavailableError`: transient (a server down, a timeout, a 5xx, a partial page): the
  holder keeps the last good part and tries again at the next refresh; at start-up the worker
  waits with backoff. `SourceRefusedError` (a subclass): refused for good (bad credentials, an
  unknown base DN, a table that does not exist, a file that is no contact export): at start-up
  this is a configuration error (exit 2); later it is kept as a failure like any other, since
  the last good data is still worth serving.

Messages of both name the source (`source ad (ldaps://dc1…): …`) and never hold a secret: a
source masks passwords in URLs and DSNs (`shared.masking`/`shared.odbc.redact_dsn`) and never
prints tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from cti_journal.lookup.contacts import ContactRow
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.errors import TransientError

# With refresh_s = 300: deletions in a feed without them show within an hour.
FULL_RELOAD_EVERY: Final = 12


class SourceUnavailableError(TransientError):
    """A contact source could not be read now (down, timed out, a page failed): try later."""


class SourceRefusedError(SourceUnavailableError):
    """A contact source answered and will keep refusing until its settings or the server are
    changed (credentials, base DN, table, a file in no known format). At start-up: exit 2."""


@dataclass(frozen=True)
class ChangeSet:
    """What changed in a source since a token: rows to add or replace (by record id), record
    ids to remove, and the token to resume from next time."""

    upserts: list[ContactRow] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    token: str | None = None


class Configured:
    """What every source has the same way: its settings, and its name from them."""

    _settings: ContactSourceSettings

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def settings(self) -> ContactSourceSettings:
        return self._settings


@runtime_checkable
class ContactSource(Protocol):
    """One place contacts come from (an ODBC table, a directory, an address book, a file, a CRM).

    Implementations: odbc.OdbcContactSource, files.FileContactSource, http.HttpContactSource,
    ldap / carddav (their own modules); factory.make_source picks one by `settings.type`."""

    @property
    def name(self) -> str:
        """The source's name (`[[lookup.sources]] name`): metric label, log lines, ownership."""
        ...

    @property
    def settings(self) -> ContactSourceSettings: ...

    @property
    def incremental(self) -> bool:
        """True when `changes()` works; false: every refresh is a `full_load()`."""
        ...

    @property
    def deletions(self) -> bool:
        """True when `changes()` reports deleted records; false: the holder also reads fully
        every FULL_RELOAD_EVERY-th refresh to see them."""
        ...

    @property
    def token(self) -> str | None:
        """The resume point after the last complete `full_load()` or `changes()` (None: none
        known; `changes(None)` then means "everything since the beginning")."""
        ...

    def full_load(self) -> Iterable[ContactRow]:
        """Every record; raises SourceUnavailableError (or SourceRefusedError) if it cannot
        deliver all of them. May be lazy: errors can come while iterating."""
        ...

    def changes(self, token: str | None) -> ChangeSet:
        """What changed since `token` (only called when `incremental`); raises as full_load."""
        ...


def where(settings: ContactSourceSettings, location: str = "") -> str:
    """`source crm (https://crm.example/api)`: the start of every message about a source;
    `location` must already be free of secrets."""
    return f"source {settings.name}" + (f" ({location})" if location else "")
