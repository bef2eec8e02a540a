"""A REST CRM as a contact source (`type = "http"`).

The list endpoint (`url`) is read page by page: the next page's URL from the reply
(`next_path`, relative links resolved against the page's URL) or a page number parameter
(`page_param`: 1, 2, … until a page comes back empty or short). JSON paths (shared/jsonpath.py)
map each record onto id, name (or first + last), company and phone fields. With `updated_path`
the source has a change feed: the highest change time seen is sent back as `updated_since` on
the next refresh, exactly as the CRM wrote it; deletions are seen by the holder's periodic full
read.

Failures: 429 and 5xx are retried (a few times, the shared backoff, at least the reply's
Retry-After, capped); 401, 403 and 404 refuse for good (wrong token, wrong URL); a reply that is
not JSON, a connection error or a time-out fail the page, and with it the read: the source's
last complete part of the index stays. Why urllib: the source needs GET, two headers, a
time-out, a CA file and the status code, which the standard library does; `requests`/`httpx`
would add a dependency (and their own connection pools) for nothing the source uses.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import orjson

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import (
    ChangeSet,
    Configured,
    SourceRefusedError,
    SourceUnavailableError,
    where,
)
from cti_journal.shared.backoff import Backoff
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.jsonpath import JsonPath, text_of
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.secrets import redact_url

log = logging.getLogger(__name__)

ATTEMPTS: Final = 4  # per page, for 429 and 5xx
RETRY_AFTER_MAX_S: Final = 60.0  # a Retry-After beyond this is not waited for in one refresh
MAX_REPLY_BYTES: Final = 64 * 1024 * 1024
_REFUSED: Final = {401: "unauthorised", 403: "forbidden", 404: "not found", 410: "gone"}


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """urllib sends a request's Authorization header on to wherever a redirect points: a
    redirect to another host (or from https to http) would hand it the token or password. Such
    a redirect is refused (HTTP 3xx, a refused read); one within the same origin is followed."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urlsplit(req.full_url), urlsplit(urljoin(req.full_url, newurl))
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            return None  # urllib then raises HTTPError with the 3xx code
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpClient:
    """GET → parsed JSON for one source, with its auth, CA and time-out; errors as the
    source's errors, naming the source and the (redacted) URL."""

    def __init__(
        self, settings: ContactSourceSettings, *, timeout_s: float, attempts: int = ATTEMPTS
    ) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._context = ssl.create_default_context(cafile=settings.ca_file or None)
        self._opener = urllib.request.build_opener(
            _SameOriginRedirects(), urllib.request.HTTPSHandler(context=self._context)
        )
        self._headers = {"Accept": "application/json", "User-Agent": "cti-journal"}
        if settings.token:
            self._headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username:
            pair = f"{settings.username}:{settings.password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

    def get_json(self, url: str, *, shown: str = "") -> Any:
        """`shown`: the URL as messages show it, if not `url` redacted (a per-call query shows
        its template, never the number)."""
        backoff = Backoff(first_s=0.5, max_s=30.0)
        place = where(self._settings, shown or mask_numbers_in(redact_url(url)))
        for attempt in range(1, self._attempts + 1):
            status, body, retry_after = self._get(url, place)
            if status == 200:
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise SourceUnavailableError(f"{place}: the reply is not JSON: {exc}") from None
            if status in _REFUSED:
                raise SourceRefusedError(
                    f"{place}: HTTP {status} ({_REFUSED[status]}): check url and the credentials"
                )
            if 300 <= status < 400:
                raise SourceRefusedError(
                    f"{place}: HTTP {status}: a redirect to another host or to http:// is not "
                    "followed (it would carry the credentials); give the final URL"
                )
            if status != 429 and status < 500:
                raise SourceRefusedError(f"{place}: HTTP {status}")
            if attempt == self._attempts:
                break
            delay = max(backoff.delay(), min(retry_after, RETRY_AFTER_MAX_S))
            log.debug("%s: HTTP %d, attempt %d, again in %.1f s", place, status, attempt, delay)
            time.sleep(delay)
        raise SourceUnavailableError(f"{place}: HTTP {status} after {self._attempts} attempts")

    def _get(self, url: str, place: str) -> tuple[int, bytes, float]:
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with self._opener.open(request, timeout=self._timeout_s) as reply:
                body = reply.read(MAX_REPLY_BYTES + 1)
                if len(body) > MAX_REPLY_BYTES:
                    raise SourceUnavailableError(f"{place}: reply larger than {MAX_REPLY_BYTES}")
                return int(reply.status), body, 0.0
        except urllib.error.HTTPError as exc:
            retry_after = _retry_after(exc.headers.get("Retry-After", ""))
            exc.close()
            return exc.code, b"", retry_after
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise SourceRefusedError(f"{place}: TLS: {reason.verify_message}") from None
            raise SourceUnavailableError(f"{place}: {reason}") from None


def _retry_after(value: str) -> float:
    """Retry-After as seconds (a number, or an HTTP date); 0 when absent or unreadable."""
    value = value.strip()
    if not value:
        return 0.0
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def with_params(url: str, params: Mapping[str, object]) -> str:
    """`url` with `params` added to (or replacing those in) its query."""
    if not params:
        return url
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.partition("=")[0] not in params]
    query = "&".join([*kept, urlencode({k: str(v) for k, v in params.items()})])
    return urlunsplit(parts._replace(query=query))


class RecordMapper:
    """A reply's records → ContactRows, by the source's JSON paths."""

    def __init__(self, settings: ContactSourceSettings) -> None:
        self._settings = settings
        s = settings
        self.records = JsonPath.parse(s.records_path)
        self._id = JsonPath.parse(s.id_path)
        self._names = [JsonPath.parse(p) for p in (s.name_path,) if p] or [
            JsonPath.parse(p) for p in (s.first_name_path, s.last_name_path) if p
        ]
        self._company = JsonPath.parse(s.company_path) if s.company_path else None
        self._phones = [JsonPath.parse(p) for p in s.phone_paths]
        self.updated = JsonPath.parse(s.updated_path) if s.updated_path else None

    def rows(self, reply: Any) -> Iterator[tuple[ContactRow, Any]]:
        """(row, its change time or None) for each record with an id."""
        for record in self.records.values(reply):
            record_id = text_of(self._id.first(record))
            if not record_id:
                continue  # nothing to write to Journal_DatensatzID: not a contact
            name = " ".join(t for p in self._names if (t := text_of(p.first(record))))
            company = text_of(self._company.first(record)) if self._company else ""
            phones = tuple(
                t for path in self._phones for value in path.values(record) if (t := text_of(value))
            )
            updated = self.updated.first(record) if self.updated else None
            yield ContactRow(record_id, name, company, phones, self._settings, updated), updated


def _later(a: Any, b: Any) -> Any:
    """The later of two change times as the CRM writes them (numbers, or ISO texts in one
    format, which sort as text)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, int | float) and isinstance(b, int | float):
        return max(a, b)
    return max(str(a), str(b))


class HttpContactSource(Configured):
    def __init__(self, settings: ContactSourceSettings) -> None:
        self._settings = settings
        self._client = HttpClient(settings, timeout_s=settings.timeout_s)
        self._mapper = RecordMapper(settings)
        self._next = JsonPath.parse(settings.next_path) if settings.next_path else None
        self._token: str | None = None

    @property
    def incremental(self) -> bool:
        return bool(self._settings.url and self._settings.updated_path)

    @property
    def deletions(self) -> bool:
        return False

    @property
    def token(self) -> str | None:
        return self._token

    def full_load(self) -> list[ContactRow]:
        rows, latest = self._read(None)
        self._token = None if latest is None else text_of(latest)
        return rows

    def changes(self, token: str | None) -> ChangeSet:
        rows, latest = self._read(token)
        if latest is not None:
            self._token = text_of(_later(token, latest))
        return ChangeSet(upserts=rows, deletions=[], token=self._token)

    def _read(self, since: str | None) -> tuple[list[ContactRow], Any]:
        """Every page, or an error: a page that fails fails the read."""
        if not self._settings.url:
            return [], None  # a query_url-only CRM: nothing to list
        rows: list[ContactRow] = []
        latest: Any = None
        for reply in self._pages(since):
            page = list(self._mapper.rows(reply))
            for row, updated in page:
                rows.append(row)
                latest = _later(latest, updated)
        return rows, latest

    def _pages(self, since: str | None) -> Iterator[Any]:
        s = self._settings
        params: dict[str, object] = {}
        if s.page_size_param:
            params[s.page_size_param] = s.page_size
        if since is not None and s.updated_path:
            params[s.updated_since_param] = since
        url = with_params(s.url, params)
        seen = {url}
        for number in range(1, s.max_pages + 1):
            page_url = with_params(url, {s.page_param: number}) if s.page_param else url
            reply = self._client.get_json(page_url)
            yield reply
            if s.page_param:
                count = sum(1 for _ in self._mapper.records.values(reply))
                if count == 0 or (s.page_size_param and count < s.page_size):
                    return
                continue
            link = text_of(self._next.first(reply)) if self._next else ""
            if not link:
                return
            url = urljoin(page_url, link)
            if url in seen:
                raise SourceUnavailableError(
                    f"{where(s, redact_url(page_url))}: the next link repeats an earlier page"
                )
            seen.add(url)
        raise SourceUnavailableError(
            f"{where(s, redact_url(s.url))}: more than max_pages = {s.max_pages} pages"
        )
