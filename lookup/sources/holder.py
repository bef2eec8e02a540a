"""The holder: the index in service, built from every source, refreshed source by source.

Each source owns its part of the index. A refresh reads one source (fully, or its change feed)
and swaps in a new index only when that read completed: a source that fails, times out or
stops part-way keeps its last complete part, and the other sources are refreshed as usual.
The holder reports every refresh through `on_refresh` (the worker turns that into per-source
metrics: records, failures, the time of the last complete load), logs the first failure of a
streak and the recovery, and carries on.

Look-ups never wait for a refresh: the index is immutable and swapped by reference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.base import FULL_RELOAD_EVERY, ContactSource
from cti_journal.lookup.sources.factory import make_source
from cti_journal.shared.config import LookupSettings
from cti_journal.shared.errors import ConfigError, CtiJournalError
from cti_journal.shared.normalize import NumberNormalizer

log = logging.getLogger(__name__)

OnRefresh = Callable[[str, bool, int, float], None]  # source, ok, records, seconds


@dataclass
class _State:
    loaded: bool = False  # one complete load into the index
    token: str | None = None
    refreshes: int = 0
    failing: bool = False
    last_success: float = 0.0  # time.time() of the last complete load


class _Counted:
    """Counts the rows it passes on; stops a source that returns more than `limit` rows
    (lookup.max_contacts) before the index holds them."""

    def __init__(self, rows: Iterable[ContactRow], limit: int = 1_000_000, name: str = "") -> None:
        self._rows = rows
        self.count = 0
        self._limit = limit
        self._name = name

    def __iter__(self) -> Iterator[ContactRow]:
        for row in self._rows:
            self.count += 1
            if self.count > self._limit:
                raise ConfigError(
                    "lookup.max_contacts",
                    f"contact source {self._name} returned more than {self._limit:,} rows; "
                    "raise the limit if that is right (each contact costs about 200 bytes, and "
                    "a full refresh builds the new index beside the one in service: about twice "
                    "that at its peak), or narrow the source",
                )
            yield row


class IndexHolder:
    """The current index of all sources, refreshed in a daemon thread."""

    def __init__(
        self,
        settings: LookupSettings,
        on_refresh: OnRefresh | None = None,
        *,
        sources: Sequence[ContactSource] | None = None,
    ) -> None:
        self._settings = settings
        self._on_refresh = on_refresh
        self._sources: Sequence[ContactSource] = (
            sources if sources is not None else [make_source(s) for s in settings.sources]
        )
        self._normalizer = NumberNormalizer.from_settings(settings)
        if self._normalizer.own_base:
            log.info(
                "lookup.own_number %r: in internal sources, +%s followed by 1 to %d digits is "
                "also an extension", settings.own_number, self._normalizer.own_base,
                settings.max_extension_digits,
            )  # fmt: skip
        self._index = ContactIndex.empty(self._normalizer, settings.tie_break)
        log.info(
            "contacts: at most %d per source (lookup.max_contacts); a full refresh builds the new "
            "index beside the one in service, so memory peaks at about twice the index",
            settings.max_contacts,
        )
        self._state = {source.name: _State() for source in self._sources}
        self._lock = threading.Lock()  # one refresh at a time: the thread's or refresh_now's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> ContactIndex:
        return self._index

    @property
    def sources(self) -> Sequence[ContactSource]:
        return self._sources

    def last_success(self, source: str) -> float:
        """time.time() of the source's last complete load; 0.0 if none yet."""
        return self._state[source].last_success

    def start(self) -> None:
        """Read every source not read yet (blocking; raises SourceUnavailableError, or
        SourceRefusedError for a source that refuses for good), then refresh in the background.
        Called again after a failure, it reads only the sources still missing."""
        with self._lock:
            for source in self._sources:
                if not self._state[source.name].loaded:
                    self._full(source)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="contact-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def refresh_now(self) -> None:
        """One refresh of every source; a failing one keeps its last complete part."""
        with self._lock:
            before = self._index
            for source in self._sources:
                self._refresh_one(source)
            if self._index is not before:
                del before
                _give_back_freed_memory()

    def _run(self) -> None:
        while not self._stop.wait(self._settings.refresh_s):
            try:
                self.refresh_now()
            except Exception:
                # The refresh thread must outlive anything a source or the index can throw;
                # the last good index stays in service.
                log.exception("contact refresh failed; keeping the last good index")

    def _refresh_one(self, source: ContactSource) -> None:
        state = self._state[source.name]
        state.refreshes += 1
        full = (
            not state.loaded
            or not source.incremental
            or (not source.deletions and state.refreshes % FULL_RELOAD_EVERY == 0)
        )
        try:
            if full:
                self._full(source)
            else:
                self._changes(source)
        except CtiJournalError as exc:
            if not state.failing:
                log.warning(
                    "contact source %s failed, keeping its last good data: %s", source.name, exc
                )
            state.failing = True
            self._report(source.name, ok=False, seconds=0.0)
            return
        if state.failing:
            state.failing = False
            log.info("contact source %s is readable again", source.name)

    def _full(self, source: ContactSource) -> None:
        started = time.monotonic()
        rows = _Counted(source.full_load(), self._settings.max_contacts, source.name)
        # `updated` consumes the rows; an exception on the way leaves self._index as it was.
        self._index = self._index.updated(source.settings, rows, replace="all")
        self._loaded(source, started, source.token, f"fully read, {rows.count} records")

    def _changes(self, source: ContactSource) -> None:
        started = time.monotonic()
        state = self._state[source.name]
        change = source.changes(state.token)
        if change.upserts or change.deletions:
            self._index = self._index.updated(
                source.settings, change.upserts, replace="changed", deleted=change.deletions
            )
        self._loaded(
            source,
            started,
            change.token,
            f"{len(change.upserts)} changed and {len(change.deletions)} deleted records",
        )

    def _loaded(self, source: ContactSource, started: float, token: str | None, what: str) -> None:
        state = self._state[source.name]
        state.loaded = True
        state.token = token
        state.last_success = time.time()
        seconds = time.monotonic() - started
        # An incremental refresh that found nothing is the common case: not worth a line.
        quiet = what.startswith("0 changed and 0 deleted")
        log.log(logging.DEBUG if quiet else logging.INFO,
                "contact source %s: %s in %.1f s", source.name, what, seconds)  # fmt: skip
        self._report(source.name, ok=True, seconds=seconds)

    def _report(self, name: str, *, ok: bool, seconds: float) -> None:
        if self._on_refresh is not None:
            self._on_refresh(name, ok, self._index.records_of(name), seconds)


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _give_back_freed_memory() -> None:
    """A refresh builds the new index beside the old one (in this thread's malloc arena) and
    frees the old one; glibc keeps the freed pages mapped, so the process stayed at old + new
    (a look-up of 100,000 contacts: 90 → 122 MB after its first refresh, issue 18).
    malloc_trim(0) returns the free pages of every arena to the system (~3 ms)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
