"""Checks of `Settings` that types and bounds (shared/config.py) cannot express — one setting
against another, a file that must load, a zone that must exist: each names the setting and what
to do."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti_journal.shared.columns import parse_type
from cti_journal.shared.config import (
    BrokerSettings,
    GatewaySettings,
    LookupSettings,
    Settings,
    WriterSettings,
)
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.record import LineFormat


def validate_settings(s: Settings) -> None:
    _broker(s.broker)
    _gateway(s.gateway)
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


def _gateway(g: GatewaySettings) -> None:
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
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError("gateway.timezone", f"unknown IANA zone {g.timezone!r}") from exc
    if g.source == "file" and not g.path:
        raise ConfigError("gateway.path", "source = 'file' needs the path of day.log")
    _gateway_tls(g)
    for i, net in enumerate(g.allowed_networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"gateway.allowed_networks[{i}]", str(exc)) from exc
    _gateway_exposure(g)


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
    names = set()
    for i, src in enumerate(lk.sources):
        where = f"lookup.sources[{i}] ({src.name})"
        if src.name in names:
            raise ConfigError(where, "source names must be unique")
        names.add(src.name)
        if bool(src.table) == bool(src.query):
            raise ConfigError(where, "give exactly one of table or query")
        if not src.phone_columns:
            raise ConfigError(where, "phone_columns must name at least one column")
        if not (
            src.name_column or src.first_name_column or src.last_name_column or src.company_column
        ):
            raise ConfigError(where, "give name_column, first/last_name_column or company_column")


def _writer(w: WriterSettings) -> None:
    if w.prefetch and w.prefetch < w.batch_size:
        raise ConfigError("writer.prefetch", "must be at least writer.batch_size (or 0 = 2 ×)")
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
