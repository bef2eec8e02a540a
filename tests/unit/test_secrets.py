"""Secrets (issue 20, findings 14 and 15): redaction of connection strings and AMQP URLs against
the drivers' documented keywords, secret files closed to others, keys long enough to be secret,
and each process reading only its own sections' secret files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cti_journal.shared.errors import ConfigError
from cti_journal.shared.loader import UNREAD, load_settings
from cti_journal.shared.odbc import redact_dsn
from cti_journal.shared.secrets import check_key_strength, check_secret_file, redact_url

VALUE = "Zq7-s3cr3t"

# The connection-string keywords each driver documents, split into those that carry a secret
# (must never be shown) and those that say where the connection goes (must stay readable, so
# that `check` and error messages still help). Keywords that merely *name* a key file (SSLKEY,
# ClientKey's path, KeystorePrincipalId) are redacted too: harmless, and the rule stays simple.
#
# psqlODBC, "Configuration Options" https://odbc.postgresql.org/docs/config-opt.html (and
# https://odbc.postgresql.org/docs/config.html): Servername, Port, Database, Username/UID,
# Password/PWD, sslmode, pqopt (libpq options such as `password=`, `sslpassword=`,
# https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
PSQLODBC = (
    {"Password", "PWD", "pqopt", "sslpassword"},
    {"Servername", "Server", "Port", "Database", "Username", "UID", "sslmode", "ReadOnly"},
)
# MariaDB Connector/ODBC, "Connection parameters" in the driver's README
# (https://mariadb.com/kb/en/about-mariadb-connector-odbc/) and sample_odbc.ini: Password
# (alias PWD), TLSKEYPWD (the TLS key's passphrase; also in libmaodbc.so's keyword table),
# SslKey/ServerKey (paths).
MARIADB = (
    {"Password", "PWD", "TLSKEYPWD", "SslKey", "ServerKey"},
    {"DSN", "Driver", "Server", "User", "UID", "Database", "DB", "Port", "Option", "Socket",
     "SslCert", "SslCa", "SslVerify", "TlsVersion", "ForceTls"},
)  # fmt: skip
# SQLite ODBC (Christian Werner), README at http://www.ch-werner.de/sqliteodbc/: no keyword
# carries a secret; none may be redacted.
SQLITE = (
    set(),
    {"Database", "Timeout", "StepAPI", "SyncPragma", "NoTXN", "ShortNames", "LongNames",
     "NoCreat", "NoWCHAR", "FKSupport", "JournalMode", "LoadExt", "OEMCP", "BigInt", "JDConv"},
)  # fmt: skip
# Microsoft ODBC Driver for SQL Server, "DSN and Connection String Keywords and Attributes"
# https://learn.microsoft.com/en-us/sql/connect/odbc/dsn-connection-string-attribute : PWD,
# KeystoreSecret, ClientKey (`file:path,password`), KeystorePrincipalId; AccessToken (the
# SQL_COPT_SS_ACCESS_TOKEN attribute, which people also write into strings).
MSSQL = (
    {"PWD", "KeystoreSecret", "ClientKey", "KeystorePrincipalId", "AccessToken"},
    {"Driver", "Server", "Addr", "Address", "Database", "UID", "APP", "Encrypt", "WSID",
     "TrustServerCertificate", "HostnameInCertificate", "Authentication", "ServerSPN",
     "ApplicationIntent", "MultiSubnetFailover", "Trusted_Connection"},
)  # fmt: skip
DRIVERS = {"psqlODBC": PSQLODBC, "MariaDB": MARIADB, "SQLite ODBC": SQLITE, "MS SQL": MSSQL}


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_documented_secret_keyword_is_redacted_and_nothing_else(driver: str) -> None:
    secret, visible = DRIVERS[driver]
    for keyword in sorted(secret | visible):
        for spelling in (keyword, keyword.upper(), keyword.lower()):
            shown = redact_dsn(f"Driver={{x}};{spelling}={VALUE};Server=db")
            if keyword in secret:
                assert VALUE not in shown, f"{driver}: {spelling} shown: {shown}"
            else:
                assert shown == f"Driver={{x}};{spelling}={VALUE};Server=db", driver


@pytest.mark.parametrize(
    "dsn",
    [
        f"Driver=x;Pwd = {VALUE};Server=db",  # spaces around `=`
        f"Driver=x; PWD={VALUE} ;Server=db",
        f"Driver=x;Password={{a;{VALUE};b}};Server=db",  # a braced value with `;`
        f"Driver=x;Password={{a}}}};{VALUE}}};Server=db",  # `}}` inside braces
        f"Driver=x;pqopt={{sslpassword={VALUE} password={VALUE}}};Server=db",
        f"Driver=x;PASSWD={VALUE}",
        f"Driver=x;sslpassword={VALUE}",
        f"Driver=x;AccessToken={VALUE}",
        f"Driver=x;Client_Secret={VALUE}",
        f"Driver=x;Pwd={{{VALUE}",  # an unclosed brace: everything after it is the value
    ],
)
def test_awkward_spellings_are_redacted(dsn: str) -> None:
    shown = redact_dsn(dsn)
    assert VALUE not in shown
    assert shown.startswith("Driver=x;")


def test_amqp_urls_lose_the_password_and_secret_options() -> None:
    url = f"amqps://cti:{VALUE}@mq1:5671/%2F?heartbeat=30&ssl_options=%7B%27password%27%3A%27{VALUE}%27%7D"
    shown = redact_url(url)
    assert VALUE not in shown
    assert shown.startswith("amqps://cti:***@mq1:5671/%2F?heartbeat=30")
    assert VALUE not in redact_url(f"amqp://u:{VALUE}@[::1]:5672/v?auth_token={VALUE}")
    assert redact_url("amqp://mq1/v") == "amqp://mq1/v"


# -- secret files and keys --------------------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pseudonym.key"
    path.write_text("A9f3kQ2mX7pL0vB8nC4zR6tY1wE5uI3oP\n", encoding="utf-8")
    yield path


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o622, 0o666])
def test_a_secret_file_open_to_others_is_refused(secret_file: Path, mode: int) -> None:
    secret_file.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        check_secret_file("privacy.pseudonym_key_file", secret_file)


def test_a_secret_file_of_the_services_own_group_may_be_group_readable(secret_file: Path) -> None:
    secret_file.chmod(0o440)  # Kubernetes: root:fsGroup 0440; systemd: root:cti-journal 0640
    if secret_file.stat().st_gid in {os.getegid(), *os.getgroups()}:
        check_secret_file("x", secret_file)
    secret_file.chmod(0o600)
    check_secret_file("x", secret_file)


def test_the_loader_refuses_a_world_readable_key_file(tmp_path: Path, secret_file: Path) -> None:
    secret_file.chmod(0o644)
    config = tmp_path / "c.toml"
    config.write_text(f'[privacy]\npseudonym_key_file = "{secret_file}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert info.value.setting == "privacy.pseudonym_key_file"
    assert "0644" in info.value.problem


@pytest.mark.parametrize(
    "key", ["a" * 16, "a" * 64, "abcabcabcabcabcabcabcabcabcabcabc", "short-Key-1"]
)
def test_keys_too_short_or_too_uniform_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="not secret enough"):
        check_key_strength("privacy.pseudonym_key_file", key)


def test_a_key_of_random_text_is_accepted(tmp_path: Path, secret_file: Path) -> None:
    secret_file.chmod(0o600)
    config = tmp_path / "c.toml"
    config.write_text(f'[privacy]\npseudonym_key_file = "{secret_file}"\n', encoding="utf-8")
    assert load_settings(config, env={}).privacy.pseudonym_key.startswith("A9f3")


def test_a_sixteen_a_key_in_the_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[privacy]\npseudonym_key = "{"a" * 16}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not secret enough"):
        load_settings(config, env={})


# -- least privilege: each process reads only its own secrets ---------------------------------


def test_a_process_opens_only_the_secret_files_of_its_own_sections(tmp_path: Path) -> None:
    """The writer's DSN file does not exist where the gateway runs (it is not mounted there):
    the gateway loads all the same; the writer does not."""
    missing = tmp_path / "not-mounted" / "writer-dsn"
    urls = tmp_path / "amqp-urls"
    urls.write_text("amqp://gw:pw@mq1:5672/v\n", encoding="utf-8")
    urls.chmod(0o600)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[broker]\nurls_file = "{urls}"\n[writer]\ndsn_file = "{missing}"\n'
        f'[[lookup.sources]]\nname = "crm"\ndsn_file = "{missing}"\ntable = "t"\n'
        'name_column = "n"\nphone_columns = ["p"]\n',
        encoding="utf-8",
    )
    gateway = load_settings(config, env={}, secrets=frozenset({"broker", "gateway", "privacy"}))
    assert gateway.broker.urls == ("amqp://gw:pw@mq1:5672/v",)
    assert gateway.writer.dsn.startswith(UNREAD)
    assert gateway.lookup.sources[0].dsn.startswith(UNREAD)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={}, secrets=frozenset({"broker", "writer", "privacy"}))
    assert info.value.setting == "writer.dsn_file"
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={}, secrets=frozenset({"broker", "lookup", "privacy"}))
    assert info.value.setting == "lookup.sources[crm].dsn_file"
