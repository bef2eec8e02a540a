"""Settings: one TOML file plus `CTI_JOURNAL_*` environment variables, validated before anything
connects.

Every string setting `x` may instead be given as `x_file = "/path"`: the file's content (stripped)
is used, so that passwords in DSNs and AMQP URLs can live in a file readable only by the service.
An environment variable `CTI_JOURNAL_<SECTION>__<KEY>` overrides `[section] key` (lists:
comma-separated); only declared settings are read from the environment, so other variables with
the prefix (`CTI_JOURNAL_CONFIG`, a platform's own) never stop the process. A bad setting
raises `ConfigError` naming it; the CLI exits 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from cti_journal.shared.errors import ConfigError
from cti_journal.shared.privacy import PrivacyRule
from cti_journal.shared.record import FIELDS

ENV_PREFIX = "CTI_JOURNAL_"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""  # SNI / certificate host name check; default: the URL's host


@dataclass(frozen=True)
class BrokerSettings:
    urls: tuple[str, ...] = ("amqp://guest:guest@127.0.0.1:5672/%2F",)
    prefix: str = "cti-journal"
    heartbeat_s: int = 30
    reconnect_max_s: float = 30.0
    retry_delays_ms: tuple[int, ...] = (1000, 5000, 30000)
    max_attempts: int = 5  # handler attempts (through the retry queues) before dead-lettering
    delivery_limit: int = 20  # broker-side limit for entries that crash their worker repeatedly
    dead_letter_days: int = 30  # dead letters expire after this (per-message TTL); 0 = never
    tls: TlsSettings = field(default_factory=TlsSettings)


@dataclass(frozen=True)
class GatewaySettings:
    source: Literal["tcp", "listen", "file"] = "tcp"
    host: str = "127.0.0.1"  # tcp: the CTI server
    port: int = 4711
    listen_address: str = "127.0.0.1"  # listen: where pushing clients connect
    listen_port: int = 4712
    max_clients: int = 16
    max_clients_per_address: int = 8  # listen: connections from one client address at once
    # listen: e.g. ("10.1.0.0/16",); empty = any, allowed only on a loopback listen_address or
    # with client certificates (tls_client_ca_file)
    allowed_networks: tuple[str, ...] = ()
    handshake_timeout_s: float = 10.0  # listen: drop a client with no complete line by then
    path: str = ""  # file: the server's Journal/day.log
    checkpoint: str = ""  # file: where the read position is kept (default: <path>.cti-journal)
    format: Literal["delimited", "json"] = "delimited"
    separator: str = ";"
    fields: tuple[str, ...] = FIELDS
    encoding: str = "utf-8"
    timezone: str = ""  # IANA zone of Zeitpunkt, e.g. "Europe/Berlin"; "" = this machine's
    source_id: str = "cti"  # part of every event id: keep it stable for one CTI server
    max_line_bytes: int = 8192
    max_dead_letter_bytes: int = 4096  # raw bytes kept with a dead-lettered line
    idle_timeout_s: float = 0.0  # listen: drop a client silent this long; 0 = never
    window: int = 1000  # unconfirmed messages in flight
    bundle_max: int = 50  # entries per message when they are waiting anyway; 1 = never bundle
    buffer: int = 5000  # entries read but not yet published; full = stop reading the socket
    preenriched: Literal["write", "lookup"] = "write"
    reconnect_max_s: float = 30.0
    spool: bool = True  # tcp/listen: fsync'd local spool; false = memory only (lost on a crash)
    # "" = $STATE_DIRECTORY/spool-<source_id> under systemd (StateDirectory=), else
    # ./var/spool-<source_id> in the working directory
    spool_dir: str = ""
    spool_max_bytes: int = 256 * 1024 * 1024  # full spool = stop reading (the server buffers)
    tls_cert_file: str = ""  # listen: serve TLS with this certificate chain (PEM)
    tls_key_file: str = ""
    tls_client_ca_file: str = ""  # listen: require client certificates signed by this CA
    metrics_port: int = 9310
    name: str = ""  # this gateway in metrics and messages; "" = "<host name>/<source>"


@dataclass(frozen=True)
class ContactSourceSettings:
    name: str
    dsn: str
    table: str = ""
    query: str = ""  # instead of table: any SELECT returning the named columns
    id_column: str = "id"
    name_column: str = ""
    first_name_column: str = ""
    last_name_column: str = ""
    company_column: str = ""
    phone_columns: tuple[str, ...] = ()
    label: str = ""  # written to Journal_DatensatzTabelle; default: the table name
    priority: int = 100  # lower wins when several records share a number
    internal: bool = False  # an internal directory: matched against short extensions only
    modified_column: str = ""  # enables incremental refresh


@dataclass(frozen=True)
class LookupSettings:
    prefetch: int = 200
    region: str = "DE"
    area_code: str = ""  # the company's own area code, e.g. "89", for local numbers
    outside_prefix: str = "0"  # outgoing calls: the outside-line prefix when Amtsholung is empty
    max_extension_digits: int = 4  # internal numbers have at most this many digits
    own_number: str = ""  # the company's main number, e.g. "089 1234-0": its extensions' block
    refresh_s: float = 300.0
    relookup: bool = False  # look up entries that arrived enriched, too
    tie_break: Literal["lowest_id", "highest_id"] = "lowest_id"
    sources: tuple[ContactSourceSettings, ...] = ()
    metrics_port: int = 9311


@dataclass(frozen=True)
class WriterSettings:
    dsn: str = ""
    table: str = "journal"
    columns: Mapping[str, str] = field(default_factory=dict)  # table column -> Journal_* / ID
    batch_size: int = 500
    batch_ms: int = 200
    prefetch: int = 0  # 0 = 2 × batch_size
    strategy: Literal["auto", "values", "executemany", "fast_executemany"] = "auto"
    ledger_table: str = ""  # "" = "<table>_ledger": one ledger per journal table
    # 0 = ledger rows live as long as the journal rows they guard (deleted with them by the
    # retention pass, retention_days); N > 0 = also pruned alone after N days (a re-import
    # after that doubles rows)
    ledger_retention_days: int = 0
    retention_days: int = 0  # delete journal rows older than this (by the time column); 0 = never
    retention_every_s: float = 3600.0  # how often a writer looks for rows past retention_days
    create_table: bool = False  # create the journal table (all 16 columns) when missing
    db_retry_max_s: float = 30.0
    metrics_port: int = 9312


@dataclass(frozen=True)
class PrivacySettings:
    pseudonym_key: str = ""  # secret for action "pseudonymise": give pseudonym_key_file
    rules: tuple[PrivacyRule, ...] = ()  # [[privacy.rules]], first match wins (shared/privacy.py)


@dataclass(frozen=True)
class HealthSettings:
    # Work pending (entries not yet confirmed, deliveries not yet acknowledged) with no progress
    # for this long makes a process not ready (/readyz 503, cti_journal_ready 0).
    stall_s: float = 60.0


@dataclass(frozen=True)
class Settings:
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    lookup: LookupSettings = field(default_factory=LookupSettings)
    writer: WriterSettings = field(default_factory=WriterSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    metrics_address: str = "0.0.0.0"

    @classmethod
    def load(cls, path: str | Path | None, env: Mapping[str, str] | None = None) -> Settings:
        data: dict[str, Any] = {}
        if path:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except FileNotFoundError as exc:
                raise ConfigError("--config", f"file {path} does not exist") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc
        _apply_env(data, os.environ if env is None else env)
        settings = build(cls, data, "")
        validate(settings)
        return settings


T = TypeVar("T")


def build(cls: type[T], data: Mapping[str, Any], path: str) -> T:
    """A dataclass from a TOML table, checking every key and value against the type hints."""
    if not isinstance(data, Mapping):
        raise ConfigError(path or "(top)", "must be a table")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = key.removesuffix("_file") if key.endswith("_file") and key not in names else key
        where = f"{path}.{key}" if path else key
        if name not in names:
            raise ConfigError(where, f"unknown setting; known: {', '.join(sorted(names))}")
        if name != key:
            value = _read_secret_file(where, value)
        kwargs[name] = _convert(hints[name], value, where)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(path or "(top)", f"missing a required setting: {exc}") from exc


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in args:
            raise ConfigError(where, f"{value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(where, f"expected a list, got {type(value).__name__}")
        return tuple(_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(where, "expected a table of name = value")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin in (Union, types.UnionType):
        raise ConfigError(where, "internal: union settings are not supported")
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(where, f"expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, str):
            try:
                value = hint(value)
            except ValueError as exc:
                raise ConfigError(where, f"expected a number, got {value!r}") from exc
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, f"expected a number, got {value!r}")
        if hint is int and not isinstance(value, int):
            raise ConfigError(where, f"expected a whole number, got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"expected a string, got {value!r}")
        return value
    raise ConfigError(where, f"internal: unsupported setting type {hint!r}")


def _read_secret_file(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, "expected a file path")
    try:
        return Path(value).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(where, f"cannot read {value}: {exc.strerror}") from exc


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Only declared settings are read: `CTI_JOURNAL_<SECTION>__<KEY>` (and `…_FILE`) for each
    field of the settings classes. Anything else under the prefix is not ours to judge —
    `CTI_JOURNAL_CONFIG` names the file, Kubernetes adds `<SERVICE>_SERVICE_HOST`-style variables
    for a Service named cti-journal-… — so it is ignored; a name inside a known section that
    matches no setting is probably a typo and gets one warning line."""
    variables = list(_declared_env(Settings, ()))
    # A field's own name wins over another field's `_FILE` form (`x_file` next to `x`).
    declared = {var.names[1]: var for var in variables} | {var.names[0]: var for var in variables}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        var = declared.get(ENV_PREFIX + key[len(ENV_PREFIX) :].upper())
        if var is None:
            if "__" in key:
                _warn_undeclared(key, declared)
            continue
        if var.table_only:
            raise ConfigError(key, f"{'.'.join(var.path)} can only be set in the TOML file")
        var.set(data, value, from_file=key.endswith("_FILE") and key != var.names[0])


@dataclass(frozen=True)
class _EnvVar:
    path: tuple[str, ...]  # TOML keys, e.g. ("broker", "urls")
    table_only: bool  # a table or an array of tables: a variable cannot spell it

    @property
    def names(self) -> tuple[str, str]:
        name = ENV_PREFIX + "__".join(self.path).upper()
        return name, f"{name}_FILE"

    def set(self, data: dict[str, Any], value: str, *, from_file: bool) -> None:
        target = data
        for part in self.path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise ConfigError(part, "must be a table")
            target = nested
        name = self.path[-1]
        # The environment wins over the file, whichever of `x` / `x_file` either one uses.
        target.pop(name, None)
        target.pop(f"{name}_file", None)
        target[f"{name}_file" if from_file else name] = value


def _declared_env(cls: type, path: tuple[str, ...]) -> Iterator[_EnvVar]:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, where = hints[f.name], (*path, f.name)
        if dataclasses.is_dataclass(hint):
            yield from _declared_env(hint, where)  # type: ignore[arg-type]
            continue
        origin, args = get_origin(hint), get_args(hint)
        nested = origin is tuple and bool(args) and dataclasses.is_dataclass(args[0])
        yield _EnvVar(where, table_only=nested or origin in (Mapping, dict))


def _warn_undeclared(key: str, declared: Mapping[str, _EnvVar]) -> None:
    section = key[len(ENV_PREFIX) :].split("__", 1)[0]
    if not any(name.startswith(f"{ENV_PREFIX}{section}__") for name in declared):
        return
    close = difflib.get_close_matches(key, list(declared), n=1)
    log.warning("ignoring %s: not a setting%s", key, f"; did you mean {close[0]}?" if close else "")


def validate(s: Settings) -> None:
    """Cross-field checks the types alone cannot express."""
    from cti_journal.shared.privacy import validate_privacy
    from cti_journal.shared.validation import validate_settings

    validate_settings(s)
    validate_privacy(s)
