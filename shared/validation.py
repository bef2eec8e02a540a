"""Checks of `Settings` that types and bounds (shared/config.py) cannot express — one setting
against another, a file that must load, a zone that must exist: each names the setting and what
to do."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import re
import socket
from collections.abc import Collection
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti_journal.shared.columns import parse_type
from cti_journal.shared.config import (
    BrokerSettings,
    ContactSourceSettings,
    GatewaySettings,
    LookupSettings,
    Settings,
    WriterSettings,
)
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.jsonpath import JsonPath
from cti_journal.shared.record import LineFormat


def validate_settings(s: Settings, sections: Collection[str] = ("gateway",)) -> None:
    _broker(s.broker)
    _gateway(s.gateway, running_here="gateway" in sections)
    _lookup(s.lookup)
    _writer(s.writer)


def _broker(b: BrokerSettings) -> None:
    for i, url in enumerate(b.urls):
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ConfigError(f"broker.urls[{i}]", "expected amqp://user:pass@host:port/vhost")
        try:
            parts.port  # noqa: B018  # urlsplit checks the port only when it is read
        except ValueError:
            raise ConfigError(
                f"broker.urls[{i}]", "the port after the host must be a number from 1 to 65535"
            ) from None
    if not b.prefix or any(c in b.prefix for c in " \t/"):
        raise ConfigError("broker.prefix", "must be a non-empty name without spaces or '/'")
    if b.delivery_limit <= b.max_attempts:
        raise ConfigError("broker.delivery_limit", "must be larger than broker.max_attempts")


def _gateway(g: GatewaySettings, *, running_here: bool = True) -> None:
    try:
        LineFormat(g.format, g.separator, g.fields, g.encoding, g.timezone)
    except ValueError as exc:
        raise ConfigError("gateway.fields/separator", str(exc)) from exc
    try:
        "x".encode(g.encoding)
    except LookupError as exc:
        raise ConfigError("gateway.encoding", f"unknown encoding {g.encoding!r}") from exc
    if g.timezone:
        try:
            ZoneInfo(g.timezone)
        # OSError: with the `tzdata` package installed, a region name ("Europe") is a folder
        # there and ZoneInfo raises IsADirectoryError instead of ZoneInfoNotFoundError.
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ConfigError("gateway.timezone", f"unknown IANA zone {g.timezone!r}") from exc
    if g.source == "file" and not g.path:
        raise ConfigError("gateway.path", "source = 'file' needs the path of day.log")
    _gateway_listen(g)
    # Only the gateway's own host opens its TLS key (least privilege) and has its address.
    if running_here:
        _gateway_tls(g)
        if g.source == "listen":
            listen_family(g.listen_address, "gateway.listen_address")


def _gateway_listen(g: GatewaySettings) -> None:
    for i, net in enumerate(g.allowed_networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"gateway.allowed_networks[{i}]", str(exc)) from exc
    _gateway_exposure(g)


def listen_family(address: str, where: str = "gateway.listen_address") -> socket.AddressFamily:
    """The address family to listen on `address` with, after trying a bind to it (on port 0:
    the real port may be held by the running process): `::` on a host without IPv6, or an
    address that is not this host's, is a config error now instead of a failure at start."""
    try:
        infos = socket.getaddrinfo(
            address, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
    except socket.gaierror as exc:
        raise ConfigError(where, f"{address!r} is not an address or host name: {exc}") from exc
    family, _, _, _, sockaddr = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind(sockaddr)
    except OSError as exc:
        ipv6 = family == socket.AF_INET6
        if ipv6 and exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            why = "IPv6 is not available on this host: listen on 0.0.0.0 or an IPv4 address"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = "not an address of this host (see `ip addr`)"
        else:
            why = exc.strerror or str(exc)
        raise ConfigError(where, f"cannot listen on {address!r}: {why}") from exc
    return family


def _gateway_exposure(g: GatewaySettings) -> None:
    """A listener reachable from other hosts must say who may push into the journal."""
    if g.source != "listen" or g.allowed_networks or g.tls_client_ca_file:
        return
    if not _is_loopback(g.listen_address):
        raise ConfigError(
            "gateway.allowed_networks / gateway.tls_client_ca_file",
            f"listen_address {g.listen_address!r} is reachable from other hosts: list the "
            "networks of the CTI clients in allowed_networks, or require client certificates "
            "with tls_client_ca_file (or listen on 127.0.0.1)",
        )


def _is_loopback(address: str) -> bool:
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def _lookup(lk: LookupSettings) -> None:
    if len(lk.region) != 2 or not lk.region.isalpha():
        raise ConfigError(
            "lookup.region", f"expected a two-letter region such as DE, not {lk.region!r}"
        )
    if lk.area_code and not lk.area_code.lstrip("0").isdigit():
        raise ConfigError("lookup.area_code", f"expected digits such as 89, not {lk.area_code!r}")
    if lk.own_number and not re.fullmatch(r"\+?[0-9 /().\-–]{4,40}", lk.own_number.strip()):
        raise ConfigError(
            "lookup.own_number",
            f"expected one phone number such as 089 1234-0, not {lk.own_number!r}",
        )
    names: set[str] = set()
    for i, src in enumerate(lk.sources):
        if not src.name.strip():
            raise ConfigError(f"lookup.sources[{i}].name", "give every source a name")
        if src.name in names:
            raise ConfigError(f"lookup.sources[{src.name}].name", "source names must be unique")
        names.add(src.name)
        validate_source(src)


def _writer(w: WriterSettings) -> None:
    seen: dict[str, str] = {}
    for column, type_name in w.columns.items():
        try:
            ctype = parse_type(type_name)
        except ValueError as exc:
            raise ConfigError(f"writer.columns.{column}", str(exc)) from exc
        if ctype.value in seen:
            raise ConfigError(
                f"writer.columns.{column}", f"{ctype.value} is mapped to {seen[ctype.value]} too"
            )
        seen[ctype.value] = column


def _gateway_tls(g: GatewaySettings) -> None:
    import ssl

    if not (g.tls_cert_file or g.tls_key_file or g.tls_client_ca_file):
        return
    if g.source != "listen":
        raise ConfigError("gateway.tls_cert_file", "TLS is for source = 'listen' only")
    if not g.tls_cert_file:
        raise ConfigError("gateway.tls_cert_file", "TLS needs the certificate chain (PEM)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(g.tls_cert_file, g.tls_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("gateway.tls_cert_file/tls_key_file", f"cannot load: {exc}") from exc
    if g.tls_client_ca_file:
        try:
            context.load_verify_locations(g.tls_client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("gateway.tls_client_ca_file", f"cannot load: {exc}") from exc


# -- [[lookup.sources]] ---------------------------------------------------------------------------


def _keys(names: str) -> frozenset[str]:
    return frozenset(names.split())


# Keys every type takes; then each type's own. A key set (to other than its default) on a type
# it does not apply to is an error: a `base_dn` on a file source is a mistake, not a no-op.
COMMON_SOURCE_KEYS: frozenset[str] = frozenset(
    {"name", "type", "label", "priority", "internal", "max_age_s"}
)
SOURCE_KEYS: dict[str, frozenset[str]] = {
    "odbc": _keys(
        "dsn table query id_column name_column first_name_column last_name_column "
        "company_column phone_columns modified_column timeout_s"
    ),
    "ldap": _keys(
        "url base_dn bind_dn password ca_file filter start_tls timeout_s allow_plain "
        "phone_attributes name_attribute company_attribute id_attribute ldap_page_size"
    ),
    "carddav": _keys("url username password ca_file timeout_s allow_plain"),
    "file": frozenset({"path"}),
    "http": _keys(
        "url username password token ca_file timeout_s records_path id_path name_path "
        "first_name_path last_name_path company_path phone_paths updated_path "
        "updated_since_param next_path page_param page_size_param page_size max_pages "
        "query_url query_timeout_s query_cache_size query_cache_s"
    ),
}


def validate_source(src: ContactSourceSettings) -> None:
    """One source: the keys that apply to its type, then the type's own checks. Messages start
    with `lookup.sources[<name>].<key>`."""
    at = f"lookup.sources[{src.name}]"
    allowed = COMMON_SOURCE_KEYS | SOURCE_KEYS[src.type]
    for f in dataclasses.fields(src):
        if f.name in allowed or f.default is dataclasses.MISSING:
            continue
        if getattr(src, f.name) != f.default:
            raise ConfigError(
                f"{at}.{f.name}",
                f"this key does not apply to type {src.type!r} "
                f"(it takes: {', '.join(sorted(SOURCE_KEYS[src.type]))})",
            )
    if src.type == "odbc":
        _odbc_source(at, src)
    elif src.type == "file":
        if not src.path:
            raise ConfigError(f"{at}.path", "type 'file' needs the path of a vCard file or "
                              "folder, or an Outlook or Google CSV export")  # fmt: skip
    elif src.type == "http":
        _http_source(at, src)
    elif src.type == "ldap":
        _ldap_source(at, src)
    else:
        _carddav_source(at, src)
    if src.ca_file:
        _ca_file(f"{at}.ca_file", src.ca_file)


def _ldap_source(at: str, src: ContactSourceSettings) -> None:
    _url(at, src, ("ldap", "ldaps"))
    scheme = urlsplit(src.url).scheme
    if scheme == "ldap" and not (src.start_tls or src.allow_plain):
        raise ConfigError(
            f"{at}.url",
            "ldap:// without start_tls is refused (the bind password would cross the network "
            "in the clear); use ldaps:// or start_tls = true, or allow_plain = true",
        )
    if scheme == "ldaps" and src.start_tls:
        raise ConfigError(f"{at}.start_tls", "ldaps:// is TLS already; start_tls is for ldap://")
    if not src.base_dn.strip():
        raise ConfigError(f"{at}.base_dn", "give the DN to search under, e.g. DC=example,DC=local")
    search = src.filter.strip()
    if search and not (search.startswith("(") and search.endswith(")")):
        raise ConfigError(f"{at}.filter", f"an LDAP filter is in parentheses: ({search})")
    if search.count("(") != search.count(")"):
        raise ConfigError(f"{at}.filter", "unbalanced parentheses")
    if src.bind_dn and not src.password:
        raise ConfigError(f"{at}.password_file", "bind_dn is set: give its password in a file")
    if not 1 <= src.ldap_page_size <= 1000:
        raise ConfigError(
            f"{at}.ldap_page_size", "must be 1..1000 (Active Directory pages at most 1,000)"
        )
    for key in ("phone_attributes", "name_attribute", "company_attribute", "id_attribute"):
        value = getattr(src, key)
        for name in value if isinstance(value, tuple) else (value,) if value else ():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+", name):
                raise ConfigError(f"{at}.{key}", f"{name!r} is no LDAP attribute name")


def _carddav_source(at: str, src: ContactSourceSettings) -> None:
    _url(at, src, ("http", "https"))
    if urlsplit(src.url).scheme == "http" and not src.allow_plain:
        raise ConfigError(
            f"{at}.url",
            "http:// is refused (the password would cross the network in the clear); use "
            "https://, or allow_plain = true",
        )
    if src.password and not src.username:
        raise ConfigError(f"{at}.username", "password_file is set: give the user name too")


def _odbc_source(at: str, src: ContactSourceSettings) -> None:
    if not src.dsn:
        raise ConfigError(f"{at}.dsn", "type 'odbc' needs an ODBC connection string")
    if bool(src.table) == bool(src.query):
        raise ConfigError(f"{at}.table/query", "give exactly one of table or query")
    if not src.phone_columns:
        raise ConfigError(f"{at}.phone_columns", "name at least one column")
    if not (src.name_column or src.first_name_column or src.last_name_column or src.company_column):
        raise ConfigError(
            f"{at}.name_column", "give name_column, first/last_name_column or company_column"
        )


def _http_source(at: str, src: ContactSourceSettings) -> None:
    if not src.url and not src.query_url:
        raise ConfigError(f"{at}.url", "type 'http' needs url (a list endpoint) or query_url")
    if src.url:
        _url(at, src, ("http", "https"))
    if src.query_url:
        _url(at, src, ("http", "https"), key="query_url")
        if "{number}" not in src.query_url:
            raise ConfigError(f"{at}.query_url", "must contain {number} where the number goes")
    _http_auth(at, src)
    _http_paths(at, src)
    if src.page_param and src.next_path != "links.next":
        raise ConfigError(f"{at}.page_param", "give either page_param or next_path, not both")


def _http_auth(at: str, src: ContactSourceSettings) -> None:
    if src.token and (src.username or src.password):
        raise ConfigError(f"{at}.token", "give a bearer token or username + password, not both")
    if bool(src.username) != bool(src.password):
        raise ConfigError(f"{at}.password", "basic auth needs username and password(_file)")


def _http_paths(at: str, src: ContactSourceSettings) -> None:
    paths = {"records_path": src.records_path, "id_path": src.id_path,
             "name_path": src.name_path, "first_name_path": src.first_name_path,
             "last_name_path": src.last_name_path, "company_path": src.company_path,
             "updated_path": src.updated_path, "next_path": src.next_path}  # fmt: skip
    paths |= {f"phone_paths[{i}]": p for i, p in enumerate(src.phone_paths)}
    for key, text in paths.items():
        try:
            JsonPath.parse(text)
        except ValueError as exc:
            raise ConfigError(f"{at}.{key}", str(exc)) from exc
    if not src.phone_paths:
        raise ConfigError(f"{at}.phone_paths", "name at least one path to a phone number")
    if not (src.name_path or src.first_name_path or src.last_name_path or src.company_path):
        raise ConfigError(f"{at}.name_path", "give name_path, first/last_name_path or company_path")


def _url(at: str, src: ContactSourceSettings, schemes: tuple[str, ...], key: str = "url") -> None:
    value = getattr(src, key)
    if not value:
        raise ConfigError(f"{at}.{key}", f"type {src.type!r} needs a {' or '.join(schemes)} URL")
    parts = urlsplit(value.replace("{number}", "0"))
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(
            f"{at}.{key}", f"expected a {' or '.join(s + '://' for s in schemes)} URL with a host"
        )
    if parts.password is not None:
        # A password in the URL ends up in logs and process listings: it belongs in a file.
        raise ConfigError(f"{at}.{key}", "no password in the URL: give username and password_file")


def _ca_file(where: str, path: str) -> None:
    import ssl

    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(where, f"cannot load the CA file {path}: {exc}") from exc
