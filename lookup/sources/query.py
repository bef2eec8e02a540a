"""Per-call queries for CRMs that cannot be listed (`query_url` of an http source).

A number the index does not know is asked of the CRM (`query_url` with `{number}` = E.164,
`+4989…`) and the reply is read by the same JSON paths, field reader and ownership rules as a
listed source (it is indexed on its own and looked up). A slow CRM must never hold up the
pipeline, so:
- the queries of one message run in parallel on a small pool, and the message waits for them
  together at most `query_timeout_s` (≤ 5 s, default 1 s); whatever is not back by then is
  treated as no match, and still fills the cache when it arrives (a redelivery, the next call
  from that number, finds it);
- after a query missed its deadline the source counts as slow: messages stop waiting for it
  at all (queries still start, in the background) until one answers within its time-out;
- at most `MAX_PENDING` queries of a source run or wait at once; beyond that a number is not
  asked (no queue grows while the CRM is down);
- answers, "no such number" included, are cached for `query_cache_s` (at most
  `query_cache_size` numbers, least recently used out first); failures are not cached.

The number leaves the company for the CRM: that is what query mode is (docs/privacy.md); it
never appears in a log line unmasked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Final

from cti_journal.lookup.contacts import Match
from cti_journal.lookup.enrich import Finder
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.http import HttpClient, RecordMapper
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.errors import CtiJournalError
from cti_journal.shared.masking import mask_number
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.normalize import NumberNormalizer
from cti_journal.shared.secrets import redact_url

log = logging.getLogger(__name__)

MAX_PENDING: Final = 32
WORKERS: Final = 4

Key = tuple[str, str, bool]  # rufnummer, amtsholung, incoming


@dataclass
class QueryStats:
    """What happened to queries, for tests and the log (no metric label carries a number)."""

    asked: int = 0
    answered: int = 0
    late: int = 0  # not back by the message's deadline
    failed: int = 0
    skipped: int = 0  # too many pending


@dataclass
class _Cache:
    size: int
    ttl_s: float
    entries: OrderedDict[int, tuple[float, Match | None]] = field(default_factory=OrderedDict)

    def get(self, key: int) -> tuple[bool, Match | None]:
        hit = self.entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        self.entries.move_to_end(key)
        return True, hit[1]

    def put(self, key: int, match: Match | None) -> None:
        self.entries[key] = (time.monotonic() + self.ttl_s, match)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class CallQuery:
    """One source's per-call query."""

    def __init__(
        self, settings: ContactSourceSettings, normalizer: NumberNormalizer, tie_break: str
    ) -> None:
        self.settings = settings
        self._normalizer = normalizer
        self._tie_break = tie_break
        # The message waits query_timeout_s at most; the request itself may take timeout_s, so
        # that a slow CRM's answer still lands in the cache for the caller's next call.
        self._client = HttpClient(settings, timeout_s=settings.timeout_s, attempts=1)
        self._shown = redact_url(settings.query_url)
        self._mapper = RecordMapper(settings)
        self._cache = _Cache(settings.query_cache_size, settings.query_cache_s)
        self._pending: dict[int, Future[Match | None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"query-{settings.name}")
        self.slow = False
        self.failing = False
        self.stats = QueryStats()

    def cached(self, key: int) -> tuple[bool, Match | None]:
        with self._lock:
            return self._cache.get(key)

    def start(self, key: int) -> Future[Match | None] | None:
        """The running or a new query for `key`; None if cached or too many are pending."""
        with self._lock:
            known, _ = self._cache.get(key)
            if known:
                return None
            running = self._pending.get(key)
            if running is not None:
                return running
            if len(self._pending) >= MAX_PENDING:
                self.stats.skipped += 1
                return None
            self.stats.asked += 1
            future = self._pool.submit(self._ask, key, time.monotonic())
            self._pending[key] = future
            return future

    def _ask(self, key: int, started: float) -> Match | None:
        url = self.settings.query_url.replace("{number}", f"%2B{key}")
        try:
            reply = self._client.get_json(url, shown=self._shown)
            rows = [row for row, _updated in self._mapper.rows(reply)]
            index = ContactIndex.build(rows, self._normalizer, self._tie_break)
            match = index.find(f"+{key}", incoming=True)
        except CtiJournalError as exc:
            with self._lock:
                self._pending.pop(key, None)
                self.stats.failed += 1
                first = not self.failing
                self.failing = True
            if first:
                log.warning("per-call query of source %s failed: %s", self.settings.name, exc)
            raise
        in_time = time.monotonic() - started <= self.settings.query_timeout_s
        with self._lock:
            self._pending.pop(key, None)
            self._cache.put(key, match)
            self.stats.answered += 1
            recovered = self.failing or (self.slow and in_time)
            self.failing = False
            if in_time:
                self.slow = False
        if recovered:
            log.info("per-call query of source %s answers in time again", self.settings.name)
        return match

    def missed_deadline(self, key: int) -> None:
        with self._lock:
            self.stats.late += 1
            first = not self.slow
            self.slow = True
        if first:
            log.warning(
                "per-call query of source %s took longer than query_timeout_s = %.1f s (number "
                "%s): calls no longer wait for it until it answers in time",
                self.settings.name, self.settings.query_timeout_s, mask_number(f"+{key}"),
            )  # fmt: skip

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class CallQueries:
    """The per-call queries of every http source with a `query_url`, best priority first."""

    def __init__(self, settings: LookupSettings) -> None:
        self._normalizer = NumberNormalizer.from_settings(settings)
        configured = [s for s in settings.sources if s.type == "http" and s.query_url]
        self.queries = [
            CallQuery(s, self._normalizer, settings.tie_break)
            for s in sorted(configured, key=lambda s: s.priority)
        ]

    def __bool__(self) -> bool:
        return bool(self.queries)

    def finder(self, index: Finder, entries: Sequence[JournalEntry], *, relookup: bool) -> Finder:
        """A finder for this message's entries: the index's answer, else a query's; the queries
        of the entries the index misses are started and waited for together, at most the
        sources' query_timeout_s."""
        found: dict[Key, Match | None] = {}
        wanted: dict[Key, int] = {}
        for entry in entries:
            if not entry.rufnummer or (entry.has_contact and not relookup):
                continue
            key: Key = (entry.rufnummer, entry.amtsholung, entry.in_out == "i")
            match = found[key] = index.find(key[0], key[1], incoming=key[2])
            number = None if match else self._normalizer.journal(*key[:2], incoming=key[2])
            if number is not None and number.keys:
                wanted[key] = number.keys[0]
        if wanted:
            self._ask(set(wanted.values()))
        return _Answers(index, found, wanted, self.queries)

    def _ask(self, numbers: set[int]) -> None:
        started = time.monotonic()
        # Every source's queries first, then one wait: the sources answer in parallel.
        running = [
            (query, {n: f for n in numbers if (f := query.start(n)) is not None})
            for query in self.queries
        ]
        for query, futures in running:
            if not futures or query.slow:
                continue
            left = started + query.settings.query_timeout_s - time.monotonic()
            _done, late = wait(futures.values(), timeout=max(0.0, left))
            for number, future in futures.items():
                if future in late:
                    query.missed_deadline(number)

    def close(self) -> None:
        for query in self.queries:
            query.close()


class _Answers:
    def __init__(
        self,
        index: Finder,
        found: dict[Key, Match | None],
        wanted: dict[Key, int],
        queries: Sequence[CallQuery],
    ) -> None:
        self._index = index
        self._found = found
        self._wanted = wanted
        self._queries = queries

    def find(self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False) -> Match | None:
        key = (rufnummer, amtsholung, incoming)
        if key in self._found and self._found[key] is not None:
            return self._found[key]
        if key not in self._found:
            match = self._index.find(rufnummer, amtsholung, incoming=incoming)
            if match is not None:
                return match
        number = self._wanted.get(key)
        if number is None:
            return None
        for query in self._queries:
            known, answer = query.cached(number)
            if known and answer is not None:
                return answer
        return None
