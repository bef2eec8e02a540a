"""Contacts from a CardDAV server (`type = "carddav"`): Nextcloud, Radicale, SOGo, iCloud, …

- Discovery (RFC 6352 6, RFC 5397): `url` is an address book collection itself, or any URL of the
  account (the server root, the principal, the address-book home): then current-user-principal
  → addressbook-home-set → every address book in the home (a Nextcloud account has "Contacts"
  and "Recently contacted", say); record ids are the cards' UIDs, so a card in two books is one
  record.
- Full load: the collection's `sync-token` first, then a REPORT addressbook-query for every card
  (RFC 6352 8.6). Taking the token first means a card changed during the load is read again
  at the next refresh rather than missed.
- Incremental refresh (RFC 6578): REPORT sync-collection from the token; changed members are
  fetched with addressbook-multiget, members answered 404 are deletions (by their href, mapped
  back to the UID read earlier). A token the server refuses (403/409 `valid-sync-token`: expired,
  or the collection was recreated) leads to a full load, reported as upserts of everything and
  deletions of every id that is no more.
- Basic auth (password from `password_file`), https with `ca_file` (else the system CAs);
  plain http only with `allow_plain = true`.
- Bounds: each request has `timeout_s` per socket operation, each reply at most
  MAX_RESPONSE_BYTES and is parsed as a stream (one `<response>` at a time, so 100,000 cards
  never sit in memory as one XML tree); a card over the vCard bounds is skipped and counted.

Replies are parsed with defusedxml: the server is a remote party whose replies are untrusted
input, and defusedxml refuses DTDs and entity declarations (entity expansion bombs,
external entities) that the standard library's parser would process.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Final
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import (
    ChangeSet,
    Configured,
    SourceRefusedError,
    SourceUnavailableError,
)
from cti_journal.lookup.sources.vcard import Card, VCardReader, card_row
from cti_journal.shared.config import ContactSourceSettings

log = logging.getLogger(__name__)

DAV: Final = "{DAV:}"
CARD: Final = "{urn:ietf:params:xml:ns:carddav}"
MAX_RESPONSE_BYTES: Final = 512 << 20  # 100,000 cards with photos stripped are ~60 MB
MULTIGET_BATCH: Final = 200  # hrefs per addressbook-multiget
MAX_REDIRECTS: Final = 3
USER_AGENT: Final = "cti-journal"

_NS = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"'
PROPFIND_ACCOUNT: Final = (
    f'<?xml version="1.0" encoding="utf-8"?><d:propfind {_NS}><d:prop><d:resourcetype/>'
    "<d:current-user-principal/><c:addressbook-home-set/><d:sync-token/>"
    "</d:prop></d:propfind>"
)
QUERY_ALL: Final = (
    f'<?xml version="1.0" encoding="utf-8"?><c:addressbook-query {_NS}><d:prop><d:getetag/>'
    "<c:address-data/></d:prop></c:addressbook-query>"
)


class _TokenRefusedError(Exception):
    """The server no longer knows the sync-token: read everything."""


@dataclass
class _Response:
    href: str
    status: int  # the response's own status (sync-collection: 404 = deleted), else 200
    props: dict[str, Element] = field(default_factory=dict)  # found (2xx) properties only


@dataclass
class _Book:
    href: str  # absolute URL of the collection
    token: str | None = None


class _BoundedReader:
    """A reply body that fails once it is larger than `limit` bytes."""

    def __init__(self, raw: http.client.HTTPResponse, limit: int, where: str) -> None:
        self._raw = raw
        self._left = limit
        self._where = where

    def read(self, size: int = 65536) -> bytes:
        data = self._raw.read(min(size if size > 0 else 65536, 65536))
        self._left -= len(data)
        if self._left < 0:
            raise SourceUnavailableError(
                f"{self._where}: reply larger than {MAX_RESPONSE_BYTES} bytes; refused"
            )
        return data


class CardDavContactSource(Configured):
    def __init__(self, settings: ContactSourceSettings) -> None:
        self._settings = settings
        self._books: list[_Book] | None = None
        self._ids: dict[str, str] = {}  # card href → record id (for deletions by href)
        self._token: str | None = None
        self._reader = VCardReader()
        parts = urlsplit(settings.url)
        port = f":{parts.port}" if parts.port else ""
        # No user, password or query: the message goes to logs and `check`.
        self._where = (
            f"source {settings.name} ({parts.scheme}://{parts.hostname}{port}{parts.path})"
        )
        self._context = (
            ssl.create_default_context(cafile=settings.ca_file or None)
            if parts.scheme == "https"
            else None
        )

    @property
    def incremental(self) -> bool:
        return True

    @property
    def deletions(self) -> bool:
        return True

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def skipped_cards(self) -> int:
        return self._reader.skipped

    # -- the protocol -----------------------------------------------------------------------

    def full_load(self) -> Iterator[ContactRow]:
        self._token = None
        books = self._discover()
        skipped = self._reader.skipped
        ids: dict[str, str] = {}
        for book in books:
            book.token = self._sync_token(book.href)
            for href, card in self._query_all(book.href):
                row = card_row(card, self._settings, fallback_id=href)
                ids[href] = row.record_id
                yield row
        # Only a load that got to the end replaces the map and sets a token.
        self._ids = ids
        self._token = self._encode(books)
        if self._reader.skipped > skipped:
            log.warning(
                "%s: %d cards skipped as unreadable (e.g. %s)",
                self._where, self._reader.skipped - skipped, self._reader.problems[-1],
            )  # fmt: skip

    def changes(self, token: str | None) -> ChangeSet:
        books = self._decode(token)
        if books is None:
            return self._reload()
        upserts: list[ContactRow] = []
        deletions: list[str] = []
        for book in books:
            try:
                changed, deleted, book.token = self._sync(book)
            except _TokenRefusedError:
                log.info("%s: sync-token refused by the server; reading everything", self._where)
                return self._reload()
            for href in deleted:
                record = self._ids.pop(href, None)
                if record is not None:
                    deletions.append(record)
            for href, card in self._multiget(book.href, changed):
                row = card_row(card, self._settings, fallback_id=href)
                self._ids[href] = row.record_id
                upserts.append(row)
        self._books = books
        self._token = self._encode(books)
        return ChangeSet(upserts=upserts, deletions=deletions, token=self._token)

    def _reload(self) -> ChangeSet:
        """A full load expressed as changes: everything, and the ids that are gone."""
        before = set(self._ids.values())
        self._books = None
        rows = list(self.full_load())
        now = {row.record_id for row in rows}
        return ChangeSet(upserts=rows, deletions=sorted(before - now), token=self._token)

    # -- tokens -----------------------------------------------------------------------------

    def _encode(self, books: list[_Book]) -> str | None:
        if any(book.token is None for book in books):
            return None  # a book without sync support: every refresh is a full load
        return json.dumps({book.href: book.token for book in books}, sort_keys=True)

    def _decode(self, token: str | None) -> list[_Book] | None:
        if not token:
            return None
        try:
            tokens = json.loads(token)
        except ValueError:
            return None
        if not isinstance(tokens, dict):
            return None
        return [_Book(str(href), str(value)) for href, value in tokens.items()]

    # -- discovery --------------------------------------------------------------------------

    def _discover(self) -> list[_Book]:
        if self._books is not None:
            return self._books
        url = self._settings.url
        first = self._propfind_one(url)
        if _is_book(first):
            books = [_Book(url)]
        else:
            home = _href(first, f"{CARD}addressbook-home-set")
            if not home:
                principal = _href(first, f"{DAV}current-user-principal")
                if not principal:
                    raise SourceRefusedError(
                        f"{self._where}: neither an address book nor an account URL (no "
                        "current-user-principal); give the address book's URL"
                    )
                home = _href(
                    self._propfind_one(urljoin(url, principal)), f"{CARD}addressbook-home-set"
                )
            if not home:
                raise SourceRefusedError(f"{self._where}: the account has no addressbook-home-set")
            home_url = urljoin(url, home)
            books = [
                _Book(urljoin(home_url, r.href))
                for r in self._dav("PROPFIND", home_url, PROPFIND_ACCOUNT, depth="1")
                if _is_book(r)
            ]
            if not books:
                raise SourceRefusedError(f"{self._where}: no address book under {home}")
        self._books = books
        return books

    def _propfind_one(self, url: str) -> _Response:
        for response in self._dav("PROPFIND", url, PROPFIND_ACCOUNT, depth="0"):
            return response
        raise SourceUnavailableError(f"{self._where}: PROPFIND {urlsplit(url).path}: empty reply")

    def _sync_token(self, url: str) -> str | None:
        element = self._propfind_one(url).props.get(f"{DAV}sync-token")
        return (element.text or "").strip() or None if element is not None else None

    # -- reading cards ----------------------------------------------------------------------

    def _query_all(self, url: str) -> Iterator[tuple[str, Card]]:
        yield from self._cards(self._dav("REPORT", url, QUERY_ALL, depth="1"), url)

    def _multiget(self, url: str, hrefs: list[str]) -> Iterator[tuple[str, Card]]:
        for start in range(0, len(hrefs), MULTIGET_BATCH):
            batch = "".join(
                f"<d:href>{_xml_text(h)}</d:href>" for h in hrefs[start : start + MULTIGET_BATCH]
            )
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><c:addressbook-multiget {_NS}><d:prop>'
                f"<d:getetag/><c:address-data/></d:prop>{batch}</c:addressbook-multiget>"
            )
            yield from self._cards(self._dav("REPORT", url, body, depth="1"), url)

    def _cards(self, responses: Iterable[_Response], url: str) -> Iterator[tuple[str, Card]]:
        for response in responses:
            data = response.props.get(f"{CARD}address-data")
            if data is None or not (data.text or "").strip():
                continue  # the collection itself, or a member that is no card
            where = f"{self._settings.name} {urlsplit(response.href).path}"
            for card in self._reader.read_text(data.text or "", where):
                yield response.href, card

    def _sync(self, book: _Book) -> tuple[list[str], list[str], str | None]:
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><d:sync-collection {_NS}>'
            f"<d:sync-token>{_xml_text(book.token or '')}</d:sync-token>"
            "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
        )
        changed: list[str] = []
        deleted: list[str] = []
        tokens: list[str] = []
        for response in self._dav("REPORT", book.href, body, depth=None, sync_tokens=tokens):
            href = urljoin(book.href, response.href)
            if _same(href, book.href):
                continue
            (deleted if response.status == 404 else changed).append(response.href)
        return changed, deleted, (tokens[-1] if tokens else book.token)

    # -- HTTP -------------------------------------------------------------------------------

    def _dav(
        self,
        method: str,
        url: str,
        body: str,
        *,
        depth: str | None,
        sync_tokens: list[str] | None = None,
    ) -> Iterator[_Response]:
        """Send one WebDAV request; yield the multistatus responses as they are parsed."""
        for _ in range(MAX_REDIRECTS + 1):
            conn, reply = self._send(method, url, body, depth)
            try:
                if reply.status in (301, 302, 307, 308):
                    url = self._redirect(url, reply.getheader("Location") or "")
                    continue
                self._check_status(method, url, reply)
                yield from _multistatus(_BoundedReader(reply, MAX_RESPONSE_BYTES, self._where),
                                        self._where, sync_tokens)  # fmt: skip
                return
            finally:
                conn.close()
        raise SourceRefusedError(f"{self._where}: more than {MAX_REDIRECTS} redirects")

    def _send(
        self, method: str, url: str, body: str, depth: str | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        s = self._settings
        parts = urlsplit(url)
        timeout = s.timeout_s
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        headers = {
            "Content-Type": 'application/xml; charset="utf-8"',
            "User-Agent": USER_AGENT,
        }
        if depth is not None:
            headers["Depth"] = depth
        if s.username or s.password:
            pair = f"{s.username}:{s.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        try:
            conn.request(method, path, body=body.encode(), headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            conn.close()
            raise SourceUnavailableError(
                f"{self._where}: {method} {parts.path}: {type(exc).__name__}: {exc}"
            ) from exc

    def _redirect(self, url: str, location: str) -> str:
        target = urljoin(url, location)
        old, new = urlsplit(url), urlsplit(target)
        # Credentials go along only to the same origin (and never from https down to http).
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise SourceRefusedError(
                f"{self._where}: redirected to another server ({new.scheme}://{new.hostname}); "
                "give that URL in the settings"
            )
        return target

    def _check_status(self, method: str, url: str, reply: http.client.HTTPResponse) -> None:
        status = reply.status
        if status == 207:
            return
        path = urlsplit(url).path
        detail = reply.read(4096).decode("utf-8", errors="replace")
        if status in (403, 409) and "valid-sync-token" in detail:
            raise _TokenRefusedError
        message = f"{self._where}: {method} {path}: HTTP {status} {reply.reason}"
        if status in (401, 403, 404, 405):
            hint = {401: "wrong username or password", 404: "no such address book"}.get(status, "")
            raise SourceRefusedError(f"{message}{': ' + hint if hint else ''}")
        raise SourceUnavailableError(message)


def _multistatus(
    body: IO[bytes] | _BoundedReader, where: str, sync_tokens: list[str] | None
) -> Iterator[_Response]:
    """The `<response>` elements of a multistatus, each freed once handed out."""
    try:
        events = SafeET.iterparse(body, events=("start", "end"), forbid_dtd=True)
        root: Element | None = None
        for event, element in events:
            if root is None:
                root = element
            if event != "end":
                continue
            if element.tag == f"{DAV}response":
                yield _response(element)
                element.clear()
                if root is not None:
                    root.clear()  # drop finished children of the multistatus
            elif element.tag == f"{DAV}sync-token" and sync_tokens is not None:
                sync_tokens.append((element.text or "").strip())
    except SourceUnavailableError:
        raise
    except Exception as exc:  # ParseError, defusedxml's DTDForbidden / EntitiesForbidden
        raise SourceUnavailableError(
            f"{where}: unreadable reply: {type(exc).__name__}: {exc}"
        ) from exc


def _response(element: Element) -> _Response:
    href = (element.findtext(f"{DAV}href") or "").strip()
    status = _status(element.findtext(f"{DAV}status"), 200)
    props: dict[str, Element] = {}
    for propstat in element.findall(f"{DAV}propstat"):
        if 200 <= _status(propstat.findtext(f"{DAV}status"), 200) < 300:
            prop = propstat.find(f"{DAV}prop")
            for child in prop if prop is not None else ():
                props[child.tag] = child
    return _Response(href, status, props)


def _status(line: str | None, default: int) -> int:
    """`HTTP/1.1 404 Not Found` → 404."""
    parts = (line or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else default


def _is_book(response: _Response) -> bool:
    kinds = response.props.get(f"{DAV}resourcetype")
    return kinds is not None and kinds.find(f"{CARD}addressbook") is not None


def _href(response: _Response, prop: str) -> str:
    element = response.props.get(prop)
    return "" if element is None else (element.findtext(f"{DAV}href") or "").strip()


def _same(a: str, b: str) -> bool:
    return urlsplit(a).path.rstrip("/") == urlsplit(b).path.rstrip("/")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
