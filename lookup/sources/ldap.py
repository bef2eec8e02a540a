"""Contacts from LDAP / Active Directory (`type = "ldap"`).

ldap3 rather than python-ldap: pure Python (python-ldap builds against libldap and libsasl
headers, which a plain `pip install` on a slim image does not have) and it speaks every part used
here: StartTLS, simple bind, the paged-results control (RFC 2696).

- TLS by default: `ldaps://`, or `ldap://` with `start_tls = true`, the server checked against
  `ca_file` (else the system's CAs) and its host name. A plain `ldap://` needs `allow_plain =
  true` (validation refuses it otherwise): a simple bind sends the password in the clear, and
  domain controllers refuse it anyway.
- Paged search, the control marked critical: a server that cannot page says so instead of
  answering 1,000 entries; a sizeLimitExceeded or any other non-success result fails the load,
  so the holder keeps the last complete index instead of a silently truncated one.
- Incremental refresh: entries whose `uSNChanged` (Active Directory, when the rootDSE has
  `highestCommittedUSN`) or `modifyTimestamp` (everything else) is at or above the highest seen.
  Deletions show only in a full load, which the holder makes every few refreshes.
- Record id: `objectGUID` in its registry form (AD), else `entryUUID` (RFC 4530), else the DN.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

with warnings.catch_warnings():
    # ldap3 2.9.1 imports names pyasn1 >= 0.6 has deprecated; harmless, and not ours to fix.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.core import exceptions as ldap_errors
    from ldap3.utils.conv import escape_filter_chars

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.sources.base import (
    ChangeSet,
    Configured,
    SourceRefusedError,
    SourceUnavailableError,
)
from cti_journal.shared.config import ContactSourceSettings

log = logging.getLogger(__name__)

PAGED_RESULTS_OID: Final = "1.2.840.113556.1.4.319"
PAGE_SIZE: Final = 500  # under AD's MaxPageSize (1,000) and OpenLDAP's default size limit
DEFAULT_PHONES: Final = (
    "telephoneNumber", "mobile", "homePhone", "ipPhone", "otherTelephone", "otherMobile",
    "facsimileTelephoneNumber",
)  # fmt: skip
ID_ATTRIBUTES: Final = ("objectGUID", "entryUUID")
NAME_ATTRIBUTES: Final = ("displayName", "givenName", "sn", "cn")
COMPANY_ATTRIBUTES: Final = ("company", "o")
DEFAULT_FILTER: Final = "(objectClass=person)"
CHANGE_ATTRIBUTES: Final = ("uSNChanged", "modifyTimestamp")
MAX_VALUE_CHARS: Final = 1000  # a phone or name attribute longer than this is not one


@dataclass(frozen=True)
class LdapOptions:
    """What the LDAP source needs, read from the source's settings."""

    name: str
    url: str
    base_dn: str
    filter: str = DEFAULT_FILTER
    bind_dn: str = ""
    password: str = ""
    ca_file: str = ""
    start_tls: bool = False
    phone_attributes: tuple[str, ...] = DEFAULT_PHONES
    name_attribute: str = ""  # "" = displayName, else givenName + sn, else cn
    company_attribute: str = ""  # "" = company, else o
    id_attribute: str = ""  # "" = objectGUID, else entryUUID, else the DN
    timeout_s: float = 10.0
    page_size: int = PAGE_SIZE

    @classmethod
    def from_settings(cls, s: ContactSourceSettings) -> LdapOptions:
        return cls(
            name=s.name,
            url=s.url,
            base_dn=s.base_dn,
            filter=s.filter or DEFAULT_FILTER,
            bind_dn=s.bind_dn,
            password=s.password,
            ca_file=s.ca_file,
            start_tls=s.start_tls,
            phone_attributes=s.phone_attributes or DEFAULT_PHONES,
            name_attribute=s.name_attribute,
            company_attribute=s.company_attribute,
            id_attribute=s.id_attribute,
            timeout_s=s.timeout_s,
            page_size=s.ldap_page_size,
        )

    @property
    def where(self) -> str:
        """`source ad (ldaps://dc1:636)`: the URL without user or query, never the password."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"source {self.name} ({parts.scheme}://{parts.hostname}{port})"


def encode_token(attribute: str, value: str) -> str | None:
    return f"{attribute}:{value}" if value else None


def decode_token(token: str | None) -> tuple[str, str] | None:
    if not token or ":" not in token:
        return None
    attribute, _, value = token.partition(":")
    return (attribute, value) if attribute in CHANGE_ATTRIBUTES and value else None


class _CheckedTls(ldap3.Tls):  # type: ignore[misc]
    """ldap3 checks host names with `ssl.match_hostname` (deprecated, and without SNI); this
    wraps with a default SSLContext that verifies the chain and the name itself."""

    def __init__(self, ca_file: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file or None)
        self._ca_file = ca_file or None

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(cafile=self._ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            connection.socket = context.wrap_socket(
                connection.socket,
                server_hostname=connection.server.host,
                do_handshake_on_connect=do_handshake,
            )
        except BaseException:
            connection.socket.close()  # ldap3 leaves the plain socket open on a failed wrap
            raise


class LdapContactSource(Configured):
    """`full_load()` streams page by page; `changes(token)` reads what changed since."""

    def __init__(self, settings: ContactSourceSettings) -> None:
        self._settings = settings
        self._options = LdapOptions.from_settings(settings)
        self._token: str | None = None

    @property
    def incremental(self) -> bool:
        return True

    @property
    def deletions(self) -> bool:
        return False  # a deleted entry is simply absent: the holder's periodic full load sees it

    @property
    def token(self) -> str | None:
        return self._token

    def full_load(self) -> Iterator[ContactRow]:
        self._token = None
        yield from self._read(None)

    def changes(self, token: str | None) -> ChangeSet:
        rows = list(self._read(decode_token(token)))
        return ChangeSet(upserts=rows, deletions=[], token=self._token)

    def _read(self, since: tuple[str, str] | None) -> Iterator[ContactRow]:
        o = self._options
        conn = self._connect()
        try:
            attribute = since[0] if since else _change_attribute(conn)
            search = o.filter if since is None else _since_filter(o.filter, *since)
            highest = since[1] if since else ""
            for dn, attrs in paged_search(conn, o, search, self._attributes(attribute)):
                highest = _later(attribute, highest, _first(attrs, attribute))
                yield self._row(dn, attrs)
            # Set only after the last page: a load that stopped part-way leaves no token.
            self._token = encode_token(attribute, highest)
        except ldap_errors.LDAPException as exc:
            raise SourceUnavailableError(
                f"{o.where}: search under {o.base_dn!r} failed: {_reason(exc)}"
            ) from exc
        finally:
            _close(conn)

    def _connect(self) -> Any:
        o = self._options
        parts = urlsplit(o.url)
        secure = parts.scheme == "ldaps"
        tls = _CheckedTls(o.ca_file) if secure or o.start_tls else None
        server = ldap3.Server(
            parts.hostname or "",
            port=parts.port or (636 if secure else 389),
            use_ssl=secure,
            tls=tls,
            get_info=ldap3.DSA,
            connect_timeout=o.timeout_s,
        )
        conn = ldap3.Connection(
            server,
            user=o.bind_dn or None,
            password=o.password or None,
            # ldap3 packs this into SO_RCVTIMEO as a whole number of seconds
            receive_timeout=max(1, math.ceil(o.timeout_s)),
            auto_referrals=False,
            read_only=True,
            raise_exceptions=False,
        )
        try:
            conn.open()
            if o.start_tls and not secure:
                conn.start_tls()
            bound = conn.bind()
        except ldap_errors.LDAPException as exc:
            _close(conn)
            raise SourceUnavailableError(f"{o.where}: cannot connect: {_reason(exc)}") from exc
        if not bound:
            result = conn.result or {}
            _close(conn)
            # Wrong credentials or a bind the server will not take (no TLS): only a change of
            # settings helps.
            raise SourceRefusedError(
                f"{o.where}: bind as {o.bind_dn or 'anonymous'!r} refused: "
                f"{result.get('description', '?')} {result.get('message', '')}".rstrip()
            )
        return conn

    def _attributes(self, change_attribute: str) -> list[str]:
        o = self._options
        names = {*o.phone_attributes, change_attribute}
        names |= {o.name_attribute} if o.name_attribute else set(NAME_ATTRIBUTES)
        names |= {o.company_attribute} if o.company_attribute else set(COMPANY_ATTRIBUTES)
        names |= {o.id_attribute} if o.id_attribute else set(ID_ATTRIBUTES)
        return sorted(names)

    def _row(self, dn: str, attrs: Mapping[str, list[bytes]]) -> ContactRow:
        o = self._options
        phones = tuple(
            text
            for name in o.phone_attributes
            for value in attrs.get(name.lower(), ())
            if (text := _text(value))
        )
        company_names = (o.company_attribute,) if o.company_attribute else COMPANY_ATTRIBUTES
        return ContactRow(
            record_id=record_id(dn, attrs, o.id_attribute),
            name=_name(attrs, o.name_attribute),
            company=_pick(attrs, company_names),
            phones=phones,
            source=self._settings,
        )


def _close(conn: Any) -> None:
    """Unbind, and close the socket even where ldap3 does not (after a failed open or search)."""
    with contextlib.suppress(ldap_errors.LDAPException):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        sock.close()


def paged_search(
    conn: Any, o: LdapOptions, search: str, attributes: Sequence[str]
) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    """(dn, {lower-case attribute: raw values}) of every entry, page by page (RFC 2696)."""
    cookie: bytes | None = None
    pages = 0
    while True:
        conn.search(
            o.base_dn,
            search,
            search_scope=ldap3.SUBTREE,
            attributes=list(attributes),
            paged_size=o.page_size,
            paged_criticality=True,
            paged_cookie=cookie,
            time_limit=int(o.timeout_s) or 1,
        )
        result = conn.result or {}
        if result.get("result") != 0:
            raise SourceUnavailableError(
                f"{o.where}: search under {o.base_dn!r} stopped after {pages} pages: "
                f"{result.get('description', '?')} {result.get('message', '')}".rstrip()
            )
        pages += 1
        for entry in conn.response or ():
            if entry.get("type") == "searchResEntry":
                raw = entry.get("raw_attributes", {})
                yield entry["dn"], {k.lower(): list(v) for k, v in raw.items()}
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID, {})
        cookie = control.get("value", {}).get("cookie") or None
        if not cookie:
            return


def _change_attribute(conn: Any) -> str:
    """uSNChanged where the server is Active Directory (its rootDSE has highestCommittedUSN)."""
    info = getattr(conn.server, "info", None)
    other = getattr(info, "other", None) or {}
    return "uSNChanged" if "highestCommittedUSN" in other else "modifyTimestamp"


def _since_filter(base: str, attribute: str, value: str) -> str:
    inner = base if base.startswith("(") else f"({base})"
    return f"(&{inner}({attribute}>={escape_filter_chars(value)}))"


def _later(attribute: str, a: str, b: str) -> str:
    if not b:
        return a
    if not a:
        return b
    if attribute == "uSNChanged":
        return b if int(b) > int(a) else a
    # Generalized time as LDAP servers write it (YYYYMMDDHHMMSS[.f]Z) sorts as text.
    return max(a, b)


def record_id(dn: str, attrs: Mapping[str, list[bytes]], attribute: str = "") -> str:
    """objectGUID (16 bytes, little-endian fields) as AD shows it, else entryUUID, else the DN."""
    for name in (attribute,) if attribute else ID_ATTRIBUTES:
        values = attrs.get(name.lower())
        if not values:
            continue
        value = values[0]
        if name.lower() == "objectguid" and len(value) == 16:
            return str(uuid.UUID(bytes_le=bytes(value)))
        return _text(value)
    return dn


def _name(attrs: Mapping[str, list[bytes]], attribute: str) -> str:
    if attribute:
        return _first(attrs, attribute)
    display = _first(attrs, "displayName")
    if display:
        return display
    full = f"{_first(attrs, 'givenName')} {_first(attrs, 'sn')}".strip()
    return full or _first(attrs, "cn")


def _pick(attrs: Mapping[str, list[bytes]], names: Sequence[str] | None) -> str:
    for name in names or ():
        if value := _first(attrs, name):
            return value
    return ""


def _first(attrs: Mapping[str, list[bytes]], name: str) -> str:
    values = attrs.get(name.lower())
    return _text(values[0]) if values else ""


def _text(value: bytes | str) -> str:
    text = value if isinstance(value, str) else bytes(value).decode("utf-8", errors="replace")
    return text.strip()[:MAX_VALUE_CHARS]


def _reason(exc: BaseException) -> str:
    """ldap3's socket errors nest the cause in a list; the innermost text reads best."""
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
