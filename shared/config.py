"""The settings schema: one frozen dataclass per section, with types and defaults. The loader
(shared/loader.py) fills it from one TOML file plus `CTI_JOURNAL_*` environment variables and
validates it before anything connects.

Each setting's bounds live beside its type and default (`bounded(...)`: dataclass field metadata
the loader checks while it converts the value, naming the setting), so that one place says what a
setting is. What the types and bounds cannot say — one setting against another, a file that must
load, a zone that must exist — is checked by shared/validation.py.

Why dataclasses with metadata rather than msgspec Structs or pydantic-settings: the settings are
already frozen dataclasses passed down explicitly; the loader's own forms (comma lists from the
environment, `x_file` secrets, only declared variables read) would need custom hooks in either
library (docs/configuration.md says what pydantic-settings lacked), and neither would remove the
loader. Metadata adds no dependency and no import time to `probe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cti_journal.shared.message import MAX_BUNDLE_ENTRIES
from cti_journal.shared.record import FIELDS


@dataclass(frozen=True)
class Bound:
    """What a number (or each number of a list) may be; `message` replaces the generic text."""

    above: float | None = None  # the value must be greater than this
    minimum: float | None = None  # ... at least this
    maximum: float | None = None  # ... at most this
    port: bool = False  # a TCP port, 0 = off
    items: int = 0  # a list: at least this many values
    message: str = ""  # may say the refused value as {value}

    def check(self, where: str, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        values = value if isinstance(value, tuple) else (value,)
        message = self.message.format(value=value)
        if isinstance(value, tuple) and len(value) < self.items:
            return message or f"give at least {self.items} value(s)"
        for v in values:
            if not isinstance(v, int | float):
                continue
            if self.port and not 0 <= v <= 65535:
                return message or f"must be a TCP port 0..65535 (0 = off), is {v}"
            if self.above is not None and v <= self.above:
                return message or f"must be greater than {self.above:g}, is {v}"
            if self.minimum is not None and v < self.minimum:
                return message or f"must be at least {self.minimum:g}, is {v}"
            if self.maximum is not None and v > self.maximum:
                return message or f"must be at most {self.maximum:g}, is {v}"
        return None


def bounded(default: Any, **bound: Any) -> Any:
    """A setting with a default and bounds (see `Bound`)."""
    return field(default=default, metadata={"bound": Bound(**bound)})


POSITIVE: Final = {"above": 0}
PORT: Final = {"port": True}
ZERO_OFF: Final = "must be >= 0 (0 = off)"
NEVER_OR_DAYS: Final = "must be 0 (never) or a number of days, is {value}"


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""  # SNI / certificate host name check; default: the URL's host


@dataclass(frozen=True)
class BrokerSettings:
    urls: tuple[str, ...] = bounded(
        ("amqp://guest:guest@127.0.0.1:5672/%2F",),
        items=1,
        message="give at least one amqp:// or amqps:// URL",
    )
    prefix: str = "cti-journal"
    heartbeat_s: int = bounded(30, **POSITIVE)
    reconnect_max_s: float = 30.0
    retry_delays_ms: tuple[int, ...] = bounded(
        (1000, 5000, 30000), items=1, above=0, message="give one or more delays > 0 in ms"
    )
    # handler attempts (through the retry queues) before dead-lettering
    max_attempts: int = bounded(5, **POSITIVE)
    delivery_limit: int = 20  # broker-side limit for entries that crash their worker repeatedly
    # dead letters expire after this (per-message TTL); 0 = never
    dead_letter_days: int = bounded(30, minimum=0, message=NEVER_OR_DAYS)
    # false: the process does not declare the topology, it uses what exists (declared by the
    # admin role of deploy/rabbitmq/setup-user.sh): its broker user then needs no configure
    # permission, which would also let it delete queues
    declare_topology: bool = True
    tls: TlsSettings = field(default_factory=TlsSettings)


@dataclass(frozen=True)
class GatewaySettings:
    source: Literal["tcp", "listen", "file"] = "tcp"
    host: str = "127.0.0.1"  # tcp: the CTI server
    port: int = bounded(4711, **PORT)
    listen_address: str = "127.0.0.1"  # listen: where pushing clients connect
    listen_port: int = bounded(4712, **PORT)
    max_clients: int = bounded(16, **POSITIVE)
    # listen: connections from one client address at once
    max_clients_per_address: int = bounded(8, **POSITIVE)
    # listen: e.g. ("10.1.0.0/16",); empty = any, allowed only on a loopback listen_address or
    # with client certificates (tls_client_ca_file)
    allowed_networks: tuple[str, ...] = ()
    # listen: drop a client with no valid line (one that parses) by then
    handshake_timeout_s: float = bounded(10.0, minimum=0, message=ZERO_OFF)
    path: str = ""  # file: the server's Journal/day.log
    checkpoint: str = ""  # file: where the read position is kept (default: <path>.cti-journal)
    format: Literal["delimited", "json"] = "delimited"
    separator: str = ";"
    fields: tuple[str, ...] = FIELDS
    encoding: str = "utf-8"
    timezone: str = ""  # IANA zone of Zeitpunkt, e.g. "Europe/Berlin"; "" = this machine's
    source_id: str = "cti"  # part of every event id: keep it stable for one CTI server
    max_line_bytes: int = bounded(8192, **POSITIVE)
    max_dead_letter_bytes: int = 4096  # raw bytes kept with a dead-lettered line
    # listen: drop a client with no complete line this long; 0 = never
    idle_timeout_s: float = bounded(900.0, minimum=0, message=ZERO_OFF)
    # listen: a started line must end within this; 0 = never
    line_timeout_s: float = bounded(30.0, minimum=0, message=ZERO_OFF)
    window: int = bounded(1000, **POSITIVE)  # unconfirmed messages in flight
    # entries per message when they are waiting anyway; 1 = never bundle
    # 200 (the most a bundle may hold): a 1M backfill ran at 16,244 entries/s, RabbitMQ 12 µs CPU
    # per entry, against 12,239/s and 22 µs at 50 (bench.run --backfill, 2026-12-04; issue 18)
    bundle_max: int = bounded(200, above=0, maximum=MAX_BUNDLE_ENTRIES)
    # entries read but not yet published; full = stop reading the socket
    buffer: int = bounded(5000, **POSITIVE)
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
    metrics_port: int = bounded(9310, **PORT)
    name: str = ""  # this gateway in metrics and messages; "" = "<host name>/<source>"


SourceType = Literal["odbc", "ldap", "carddav", "file", "http"]


@dataclass(frozen=True)
class ContactSourceSettings:
    """One `[[lookup.sources]]` table. Keys apply by `type`; shared/validation.py says which
    (a key that does not apply to the type is an error, not silently ignored)."""

    name: str
    type: SourceType = "odbc"
    label: str = ""  # written to Journal_DatensatzTabelle; default: the table name, else the name
    priority: int = 100  # lower wins when several records share a number
    internal: bool = False  # an internal directory: matched against short extensions only
    max_age_s: float = bounded(
        3600.0, **POSITIVE
    )  # alert when the last complete load is older (metric + alert rule)
    # -- odbc
    dsn: str = ""
    table: str = ""
    query: str = ""  # instead of table: any SELECT returning the named columns
    id_column: str = "id"
    name_column: str = ""
    first_name_column: str = ""
    last_name_column: str = ""
    company_column: str = ""
    phone_columns: tuple[str, ...] = ()
    modified_column: str = ""  # enables incremental refresh
    # -- ldap, carddav, http: where and who
    url: str = ""
    username: str = ""  # carddav, http (basic auth)
    # give password_file: the file's content is the password (never in a repr, hence field)
    password: str = field(default="", repr=False)
    ca_file: str = ""  # a CA bundle (PEM) to verify the server's certificate; "" = system CAs
    timeout_s: float = bounded(10.0, **POSITIVE)  # per request / connection
    # -- ldap
    base_dn: str = ""
    bind_dn: str = ""
    filter: str = ""  # default: (objectClass=person)
    start_tls: bool = False  # ldap:// upgraded with StartTLS
    # ldap:// without StartTLS, carddav over http://: the password crosses the network in the
    # clear, so it takes this explicit opt-in
    allow_plain: bool = False
    # attribute mapping; the defaults read Active Directory and inetOrgPerson as they come
    phone_attributes: tuple[str, ...] = ()  # () = telephoneNumber mobile homePhone ipPhone …
    name_attribute: str = ""  # "" = displayName, else givenName + sn, else cn
    company_attribute: str = ""  # "" = company, else o
    id_attribute: str = ""  # "" = objectGUID (AD), else entryUUID, else the DN
    ldap_page_size: int = 500  # entries per page of the paged search (AD's limit is 1,000)
    # -- file
    path: str = ""  # a vCard file or folder, an Outlook or Google CSV export
    # -- http (a REST CRM); paths in the small syntax of lookup/sources/jsonpath.py
    token: str = field(default="", repr=False)  # bearer token; give token_file
    records_path: str = "data[*]"  # the records in one reply
    id_path: str = "id"
    name_path: str = ""  # or first_name_path + last_name_path
    first_name_path: str = ""
    last_name_path: str = ""
    company_path: str = ""
    phone_paths: tuple[str, ...] = ()  # each may end in [*] for a list of numbers
    updated_path: str = ""  # a record's change time: enables updated_since refresh
    updated_since_param: str = "updated_since"
    next_path: str = "links.next"  # the next page's URL in the reply ("" with page_param)
    page_param: str = ""  # instead of next_path: a page number parameter, 1, 2, … until empty
    page_size_param: str = ""
    page_size: int = bounded(100, **POSITIVE)
    max_pages: int = bounded(
        10000, **POSITIVE
    )  # a reply that always has a next page is an error, not a hang
    query_url: str = ""  # per-call query mode: a URL with {number} (E.164, e.g. +498912345)
    # the longest a message waits for query_url
    query_timeout_s: float = bounded(
        1.0,
        above=0,
        maximum=5,
        message="must be more than 0 and at most 5 s (a message waits this long at most)",
    )
    query_cache_size: int = bounded(1000, **POSITIVE)
    query_cache_s: float = bounded(300.0, **POSITIVE)


@dataclass(frozen=True)
class LookupSettings:
    # unacknowledged messages (a bundle of up to gateway.bundle_max entries is one): 50 × 200
    # entries, the writers' ~10,000. 200 took a look-up started on a standing backlog from
    # 77 to 102-105 MB resident, 50 to 92-94 MB, draining about as fast (bench/backlog.py)
    prefetch: int = bounded(50, **POSITIVE)
    region: str = "DE"
    area_code: str = ""  # the company's own area code, e.g. "89", for local numbers
    outside_prefix: str = "0"  # outgoing calls: the outside-line prefix when Amtsholung is empty
    max_extension_digits: int = 4  # internal numbers have at most this many digits
    own_number: str = ""  # the company's main number, e.g. "089 1234-0": its extensions' block
    refresh_s: float = bounded(300.0, **POSITIVE)
    relookup: bool = False  # look up entries that arrived enriched, too
    # "none": several persons on one number get no person (issue 16); the ids: the old coin
    tie_break: Literal["none", "lowest_id", "highest_id"] = "none"
    sources: tuple[ContactSourceSettings, ...] = ()
    # rows one source may return; more stop its load with an error naming this setting (each
    # contact costs ~200 bytes in the index, and a refresh builds the new index beside the old)
    max_contacts: int = bounded(1_000_000, **POSITIVE)
    # bytes of deliveries held unacknowledged; above it the worker pauses its consumer
    prefetch_bytes: int = bounded(64 * 1024 * 1024, **POSITIVE)
    metrics_port: int = bounded(9311, **PORT)


@dataclass(frozen=True)
class WriterSettings:
    dsn: str = ""
    table: str = "journal"
    columns: Mapping[str, str] = field(default_factory=dict)  # table column -> Journal_* / ID
    batch_size: int = bounded(500, **POSITIVE)
    batch_ms: int = bounded(200, **POSITIVE)
    # unacknowledged messages; a bundle of up to gateway.bundle_max entries is one, so fewer
    # than batch_size is normal. 0 = 4 × batch_size / 50, at least 8 (writer/worker.py)
    prefetch: int = bounded(
        0, minimum=0, message="must be 0 (4 × batch_size / 50) or a number of messages, is {value}"
    )
    strategy: Literal["auto", "json", "values", "executemany", "fast_executemany"] = "auto"
    ledger_table: str = ""  # "" = "<table>_ledger": one ledger per journal table
    # 0 = ledger rows live as long as the journal rows they guard (deleted with them by the
    # retention pass, retention_days); N > 0 = also pruned alone after N days (a re-import
    # after that doubles rows)
    ledger_retention_days: int = bounded(
        0, minimum=0, message="must be 0 (prune with the rows) or more"
    )
    # delete journal rows older than this (by the time column); 0 = never
    retention_days: int = bounded(0, minimum=0, message=NEVER_OR_DAYS)
    # how often a writer looks for rows past retention_days
    retention_every_s: float = bounded(3600.0, above=0, message="must be greater than 0")
    create_table: bool = False  # create the journal table (all 16 columns) when missing
    db_retry_max_s: float = 30.0
    # bytes of deliveries held unacknowledged; above it the worker pauses its consumer (what is
    # already on the wire still arrives: `prefetch` bounds that). 4 MiB is ~10,000 entries,
    # 20 batches (a 1M backfill with bundles of 200: writer 64 MB resident; issue 18)
    prefetch_bytes: int = bounded(4 * 1024 * 1024, **POSITIVE)
    # gateway names that get their own series in the per-gateway metrics; [] = the first
    # max_gateway_series names met. Every other name is counted as "other".
    gateways: tuple[str, ...] = ()
    max_gateway_series: int = bounded(8, **POSITIVE)
    metrics_port: int = bounded(9312, **PORT)


Action = Literal["keep", "shorten", "anonymise", "pseudonymise", "drop"]


@dataclass(frozen=True)
class PrivacyRule:
    """One `[[privacy.rules]]` table. Empty conditions hold for every call."""

    name: str = ""  # in logs and the metric label; default "rules[<index>]"
    stage: Literal["before", "after"] = "after"
    direction: Literal["any", "in", "out"] = "any"
    states: tuple[str, ...] = ()  # VerbZustand: CONN, RING, BUSY
    local: tuple[str, ...] = ()  # LokaleRufnummer: "200", "200-219" (range), "0891234*" (prefix)
    number: tuple[str, ...] = ()  # the other party: "089 1234567" (exact), "0800*" (prefix)
    contact_source: tuple[str, ...] = ()  # the contact's source label (Journal_DatensatzTabelle)
    lcr: tuple[str, ...] = ()  # the LCR field's values
    amtsholung: tuple[str, ...] = ()  # the Amtsholung field's values
    action: Action = "keep"
    digits: int = 3  # shorten: how many trailing digits are replaced


@dataclass(frozen=True)
class PrivacySettings:
    pseudonym_key: str = ""  # secret for action "pseudonymise": give pseudonym_key_file
    rules: tuple[PrivacyRule, ...] = ()  # [[privacy.rules]], first match wins (shared/privacy.py)


@dataclass(frozen=True)
class HealthSettings:
    # Work pending (entries not yet confirmed, deliveries not yet acknowledged) with no progress
    # for this long makes a process not ready (/readyz 503, cti_journal_ready 0).
    stall_s: float = bounded(60.0, **POSITIVE)


@dataclass(frozen=True)
class Settings:
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    lookup: LookupSettings = field(default_factory=LookupSettings)
    writer: WriterSettings = field(default_factory=WriterSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    # Loopback unless configured: the metrics/health port answers anyone who can reach it.
    # Containers and Kubernetes set "0.0.0.0" (their probes and Prometheus come from outside).
    metrics_address: str = "127.0.0.1"
    # open HTTP connections at once; more are closed at once
    metrics_max_connections: int = bounded(16, **POSITIVE)
    # an HTTP connection that sends nothing this long closes (3 x this in all)
    metrics_idle_timeout_s: float = bounded(10.0, **POSITIVE)
