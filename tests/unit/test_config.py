"""Settings: TOML + environment, `_file` secrets, and a message naming the setting for every
mistake (shared/config.py, shared/validation.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cti_journal.shared.config import Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.loader import ENV_PREFIX, load_settings
from cti_journal.shared.record import FIELDS

SECRET = "S3cr3t-Pa55"
DSN = f"Driver={{PostgreSQL Unicode}};Server=db;Uid=writer;Pwd={SECRET};"
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "cti-journal.example.toml"


@pytest.fixture(autouse=True)
def _private_files() -> Iterator[None]:
    """Secret files are refused when others can read them: write them as a service would."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cti-journal.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(_toml(tmp_path, text), env or {})
    return info.value


# -- loading -----------------------------------------------------------------------------------
def test_defaults_without_a_file() -> None:
    s = load_settings(None, {})
    assert s == Settings()
    assert s.broker.urls == ("amqp://guest:guest@127.0.0.1:5672/%2F",)
    assert s.gateway.fields == FIELDS
    assert s.writer.batch_size == 500


def test_the_documented_example_is_valid() -> None:
    s = load_settings(EXAMPLE, {})
    assert [src.name for src in s.lookup.sources] == ["crm", "staff", "export", "crm-web"]


def test_toml_values(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
        metrics_address = "127.0.0.1"
        [broker]
        urls = ["amqp://a/%2F", "amqps://b:5671/cti"]
        retry_delays_ms = [100, 200]
        [broker.tls]
        ca_file = "/etc/ssl/ca.pem"
        [gateway]
        source = "listen"
        format = "json"
        timezone = "Europe/Berlin"
        fields = ["Zeitpunkt", "In_Out", "VerbZustand"]
        allowed_networks = ["10.1.0.0/16", "fd00::/8"]
        idle_timeout_s = 30
        [lookup]
        relookup = true
        [[lookup.sources]]
        name = "crm"
        dsn = "Driver=x"
        table = "contacts"
        name_column = "name"
        phone_columns = ["phone", "mobile"]
        [writer]
        batch_size = 50
        columns = { anruf_id = "ID", wer = "Journal_Name", kosten = "Gebuehren" }
        """,
    )
    s = load_settings(path, {})
    assert s.metrics_address == "127.0.0.1"
    assert s.broker.urls == ("amqp://a/%2F", "amqps://b:5671/cti")
    assert s.broker.retry_delays_ms == (100, 200)
    assert s.broker.tls.ca_file == "/etc/ssl/ca.pem"
    assert (s.gateway.source, s.gateway.format, s.gateway.timezone) == (
        "listen",
        "json",
        "Europe/Berlin",
    )
    assert s.gateway.fields == ("Zeitpunkt", "In_Out", "VerbZustand")
    assert s.gateway.allowed_networks == ("10.1.0.0/16", "fd00::/8")
    assert s.gateway.idle_timeout_s == 30.0
    assert isinstance(s.gateway.idle_timeout_s, float)
    assert s.lookup.relookup is True
    (src,) = s.lookup.sources
    assert (src.name, src.table, src.phone_columns, src.priority) == (
        "crm",
        "contacts",
        ("phone", "mobile"),
        100,
    )
    assert s.writer.batch_size == 50
    assert s.writer.columns == {"anruf_id": "ID", "wer": "Journal_Name", "kosten": "Gebuehren"}


# -- environment -------------------------------------------------------------------------------
def test_env_overrides_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[writer]\nbatch_size = 50\nbatch_ms = 100\n")
    s = load_settings(path, {f"{ENV_PREFIX}WRITER__BATCH_SIZE": "700", "OTHER": "x"})
    assert (s.writer.batch_size, s.writer.batch_ms) == (700, 100)


def test_env_types_lists_and_nested_sections() -> None:
    s = load_settings(
        None,
        {
            "CTI_JOURNAL_BROKER__URLS": "amqp://a/%2F, amqps://b/%2F ,",
            "CTI_JOURNAL_BROKER__RETRY_DELAYS_MS": "10,20,30",
            "CTI_JOURNAL_BROKER__TLS__CA_FILE": "/ca.pem",
            "CTI_JOURNAL_GATEWAY__FIELDS": "In_Out,Zeitpunkt,VerbZustand",
            "CTI_JOURNAL_GATEWAY__IDLE_TIMEOUT_S": "2.5",
            "CTI_JOURNAL_LOOKUP__RELOOKUP": "yes",
            "CTI_JOURNAL_METRICS_ADDRESS": "::1",
        },
    )
    assert s.broker.urls == ("amqp://a/%2F", "amqps://b/%2F")
    assert s.broker.retry_delays_ms == (10, 20, 30)
    assert s.broker.tls.ca_file == "/ca.pem"
    assert s.gateway.fields == ("In_Out", "Zeitpunkt", "VerbZustand")
    assert s.gateway.idle_timeout_s == 2.5
    assert s.lookup.relookup is True
    assert s.metrics_address == "::1"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("0", False), ("No", False)])
def test_env_booleans(text: str, value: bool) -> None:
    assert (
        load_settings(None, {"CTI_JOURNAL_WRITER__CREATE_TABLE": text}).writer.create_table is value
    )


@pytest.mark.parametrize(
    ("env", "setting", "problem"),
    [
        ({"CTI_JOURNAL_WRITER__BATCH_SIZE": "many"}, "writer.batch_size", "expected a number"),
        ({"CTI_JOURNAL_WRITER__BATCH_SIZE": "2.5"}, "writer.batch_size", "expected a number"),
        ({"CTI_JOURNAL_WRITER__CREATE_TABLE": "maybe"}, "writer.create_table", "expected true"),
        (
            {"CTI_JOURNAL_LOOKUP__SOURCES": "x"},
            "CTI_JOURNAL_LOOKUP__SOURCES",
            "lookup.sources can only be set in the TOML file",
        ),
        (
            {"CTI_JOURNAL_WRITER__COLUMNS": "a=ID"},
            "CTI_JOURNAL_WRITER__COLUMNS",
            "writer.columns can only be set in the TOML file",
        ),
    ],
)
def test_env_errors(env: dict[str, str], setting: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env)
    assert info.value.setting == setting
    assert info.value.problem.startswith(problem)


def test_env_reads_only_declared_settings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """CTI_JOURNAL_CONFIG names the file (the image sets it), Kubernetes adds
    CTI_JOURNAL_WRITER_SERVICE_HOST & co. for a Service named cti-journal-writer: neither is a
    setting, neither may stop the process. A typo inside a section is ignored with a warning."""
    path = _toml(tmp_path, "[writer]\nbatch_size = 50\n")
    env = {
        "CTI_JOURNAL_CONFIG": str(path),
        "CTI_JOURNAL_WRITER_SERVICE_HOST": "10.0.0.7",
        "CTI_JOURNAL_WRITER_PORT_9312_TCP": "tcp://10.0.0.7:9312",
        "CTI_JOURNAL_METRICS_ADDRESS__X": "1",
        "CTI_JOURNAL_WRITER__BATCH_SISE": "7",
        "CTI_JOURNAL_WRITER__BATCH_MS": "70",
    }
    with caplog.at_level(logging.WARNING, logger="cti_journal.shared.config"):
        s = load_settings(path, env)
    assert (s.writer.batch_size, s.writer.batch_ms) == (50, 70)
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring CTI_JOURNAL_WRITER__BATCH_SISE: not a setting; "
        "did you mean CTI_JOURNAL_WRITER__BATCH_SIZE?"
    ]


def test_env_wins_over_the_file_in_either_form(tmp_path: Path) -> None:
    urls = tmp_path / "urls"
    urls.write_text("amqp://from-file/%2F\n")
    path = _toml(tmp_path, '[broker]\nurls = ["amqp://from-toml/%2F"]\n')
    s = load_settings(path, {"CTI_JOURNAL_BROKER__URLS_FILE": str(urls)})
    assert s.broker.urls == ("amqp://from-file/%2F",)
    path = _toml(tmp_path, f'[broker]\nurls_file = "{urls}"\n')
    s = load_settings(path, {"CTI_JOURNAL_BROKER__URLS": "amqp://from-env/%2F"})
    assert s.broker.urls == ("amqp://from-env/%2F",)


# -- secrets from files ------------------------------------------------------------------------
def test_dsn_file(tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text(DSN + "\n")
    path = _toml(tmp_path, f'[writer]\ndsn_file = "{secret}"\n')
    assert load_settings(path, {}).writer.dsn == DSN


def test_file_secrets_from_env_and_nested(tmp_path: Path) -> None:
    urls = tmp_path / "urls"
    urls.write_text(f"amqps://cti:{SECRET}@a/%2F,amqps://cti:{SECRET}@b/%2F\n")
    dsn = tmp_path / "dsn"
    dsn.write_text(DSN)
    path = _toml(
        tmp_path,
        f"""
        [[lookup.sources]]
        name = "crm"
        dsn_file = "{dsn}"
        table = "contacts"
        name_column = "name"
        phone_columns = ["phone"]
        """,
    )
    s = load_settings(path, {"CTI_JOURNAL_BROKER__URLS_FILE": str(urls)})
    assert s.broker.urls == (f"amqps://cti:{SECRET}@a/%2F", f"amqps://cti:{SECRET}@b/%2F")
    assert s.lookup.sources[0].dsn == DSN


def test_missing_secret_file_names_the_setting(tmp_path: Path) -> None:
    error = _error(tmp_path, f'[writer]\ndsn_file = "{tmp_path}/nope"\n')
    assert error.setting == "writer.dsn_file"
    assert error.problem == f"cannot read {tmp_path}/nope: No such file or directory"


def test_secret_file_path_must_be_a_string(tmp_path: Path) -> None:
    error = _error(tmp_path, "[writer]\ndsn_file = 5\n")
    assert (error.setting, error.problem) == ("writer.dsn_file", "expected a file path")


def test_errors_never_contain_the_secret(tmp_path: Path) -> None:
    bad_url = tmp_path / "urls"
    bad_url.write_text(f"http://cti:{SECRET}@host/")
    error = _error(tmp_path, f'[broker]\nurls_file = "{bad_url}"\n')
    assert error.setting == "broker.urls[0]"
    assert SECRET not in str(error)
    dsn = tmp_path / "dsn"
    dsn.write_text(DSN)
    error = _error(tmp_path, f'[writer]\ndsn_file = "{dsn}"\nbatch_size = 0\n')
    assert error.setting == "writer.batch_size"
    assert SECRET not in str(error)


# -- validation: each error names its setting ----------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "setting", "problem"),
    [
        (
            "nope = 1",
            "nope",
            "unknown setting; known: broker, gateway, health, lookup, metrics_address",
        ),
        (
            "[writer]\nbatch_sise = 1",
            "writer.batch_sise",
            "unknown setting; known: batch_ms, batch_size, columns, create_table,",
        ),
        ("broker = 5", "broker", "must be a table"),
        ('[broker]\nurls = ["http://x/"]', "broker.urls[0]", "expected amqp://user:pass@"),
        ('[broker]\nurls = ["amqp://a/", "amqp:///x"]', "broker.urls[1]", "expected amqp://"),
        ("[broker]\nurls = []", "broker.urls", "give at least one amqp:// or amqps:// URL"),
        ('[broker]\nurls = "amqp://a/"', "broker.urls", None),  # a string is a 1-list: valid
        ("[broker]\nurls = 5", "broker.urls", "expected a list, got int"),
        ('[broker]\nprefix = "a b"', "broker.prefix", "must be a non-empty name"),
        ("[broker]\nretry_delays_ms = [10, 0]", "broker.retry_delays_ms", "give one or more"),
        ("[broker]\nmax_attempts = 0", "broker.max_attempts", "must be greater than 0, is 0"),
        ("[broker]\ndelivery_limit = 5", "broker.delivery_limit", "must be larger than broker."),
        ("[broker]\nheartbeat_s = 1.5", "broker.heartbeat_s", "expected a whole number, got 1.5"),
        ("[broker]\nheartbeat_s = true", "broker.heartbeat_s", "expected a number, got True"),
        ('[gateway]\ntimezone = "Europe/Bärlin"', "gateway.timezone", "unknown IANA zone"),
        ('[gateway]\ntimezone = "Europe"', "gateway.timezone", "unknown IANA zone 'Europe'"),
        ('[gateway]\ntimezone = "../../etc/passwd"', "gateway.timezone", "unknown IANA zone"),
        ('[gateway]\nencoding = "klingon"', "gateway.encoding", "unknown encoding 'klingon'"),
        ('[gateway]\nsource = "udp"', "gateway.source", "'udp' is not one of 'tcp', 'listen'"),
        ('[gateway]\nformat = "xml"', "gateway.format", "'xml' is not one of 'delimited'"),
        ('[gateway]\nseparator = ";;"', "gateway.fields/separator", "the separator must be"),
        ('[gateway]\nfields = ["In_Out", "Foo"]', "gateway.fields/separator", "unknown field"),
        ('[gateway]\nsource = "file"', "gateway.path", "source = 'file' needs the path"),
        ("[gateway]\nmax_line_bytes = 0", "gateway.max_line_bytes", "must be greater than 0"),
        ("[gateway]\nport = 70000", "gateway.port", "must be a TCP port 0..65535"),
        ('[gateway]\nallowed_networks = ["10.0.0/33"]', "gateway.allowed_networks[0]", ""),
        ('[gateway]\nport = "x"', "gateway.port", "expected a number, got 'x'"),
        ("[gateway]\nhost = 1", "gateway.host", "expected a string, got 1"),
        ('[lookup]\nregion = "DEU"', "lookup.region", "expected a two-letter region"),
        ('[lookup]\narea_code = "8x"', "lookup.area_code", "expected digits such as 89"),
        ('[lookup]\ntie_break = "random"', "lookup.tie_break", "'random' is not one of"),
        (
            '[[lookup.sources]]\nname = "a"\ndsn = "x"\ntable = "t"\nquery = "q"\n'
            'name_column = "n"\nphone_columns = ["p"]',
            "lookup.sources[a].table/query",
            "give exactly one of table or query",
        ),
        (
            '[[lookup.sources]]\nname = "a"\ndsn = "x"\ntable = "t"\nname_column = "n"',
            "lookup.sources[a].phone_columns",
            "name at least one column",
        ),
        (
            '[[lookup.sources]]\nname = "a"\ndsn = "x"\ntable = "t"\nphone_columns = ["p"]',
            "lookup.sources[a].name_column",
            "give name_column, first/last_name_column or company_column",
        ),
        (
            '[[lookup.sources]]\nname = "a"\ntable = "t"',
            "lookup.sources[a].dsn",
            "type 'odbc' needs an ODBC connection string",
        ),
        ('[[lookup.sources]]\ndsn = "x"', "lookup.sources[0]", "missing a required setting"),
        (
            '[[lookup.sources]]\nname = "a"\ndsn = "x"\ntable = "t"\nname_column = "n"\n'
            'phone_columns = ["p"]\n[[lookup.sources]]\nname = "a"\ndsn = "x"\ntable = "u"\n'
            'name_column = "n"\nphone_columns = ["p"]',
            "lookup.sources[a].name",
            "source names must be unique",
        ),
        (
            '[[lookup.sources]]\nname = "ad"\ntype = "ldap"\nurl = "ldaps://dc1"\n'
            'base_dn = "DC=x"\npath = "/srv/x.csv"',
            "lookup.sources[ad].path",
            "this key does not apply to type 'ldap'",
        ),
        (
            '[[lookup.sources]]\nname = "ad"\ntype = "ldap"\nurl = "https://dc1"',
            "lookup.sources[ad].url",
            "expected a ldap:// or ldaps:// URL",
        ),
        (
            '[[lookup.sources]]\nname = "export"\ntype = "file"',
            "lookup.sources[export].path",
            "type 'file' needs the path",
        ),
        (
            '[[lookup.sources]]\nname = "export"\ntype = "vcf"\npath = "x"',
            "lookup.sources[export].type",
            "'vcf' is not one of 'odbc', 'ldap', 'carddav', 'file', 'http'",
        ),
        (
            '[[lookup.sources]]\nname = "crm"\ntype = "http"\nurl = "https://u:pw@crm/api"\n'
            'name_path = "n"\nphone_paths = ["p"]',
            "lookup.sources[crm].url",
            "no password in the URL",
        ),
        (
            '[[lookup.sources]]\nname = "crm"\ntype = "http"\nurl = "https://crm/api"\n'
            'name_path = "n"\nphone_paths = ["phones[x]"]',
            "lookup.sources[crm].phone_paths[0]",
            "unexpected '[' at 6",
        ),
        (
            '[[lookup.sources]]\nname = "crm"\ntype = "http"\nurl = "https://crm/api"\n'
            'name_path = "n"\nphone_paths = ["p"]\nquery_timeout_s = 30',
            "lookup.sources[crm].query_timeout_s",
            "at most 5 s",
        ),
        (
            '[[lookup.sources]]\nname = "crm"\ntype = "http"\nurl = "https://crm/api"\n'
            'name_path = "n"\nphone_paths = ["p"]\nusername = "u"',
            "lookup.sources[crm].password",
            "basic auth needs username and password",
        ),
        (
            '[[lookup.sources]]\nname = "dav"\ntype = "carddav"\nurl = "https://d/"\n'
            'ca_file = "/nonexistent/ca.pem"',
            "lookup.sources[dav].ca_file",
            "cannot load the CA file",
        ),
        ("[writer]\nbatch_size = 0", "writer.batch_size", "must be greater than 0, is 0"),
        ("[writer]\nprefetch = -1", "writer.prefetch", "must be 0 (4 × batch_size / 50) or"),
        ('[writer]\nstrategy = "bulk"', "writer.strategy", "'bulk' is not one of"),
        ("[writer]\ncolumns = 5", "writer.columns", "expected a table of name = value"),
        (
            '[writer.columns]\nwer = "Journal_Wer"',
            "writer.columns.wer",
            "unknown column type 'Journal_Wer'; one of Journal_In_Out,",
        ),
        (
            '[writer.columns]\na = "Name"\nb = "journal_name"',
            "writer.columns.b",
            "Journal_Name is mapped to a too",
        ),
        ("[writer.columns]\na = 5", "writer.columns.a", "expected a string, got 5"),
        ("[writer\nx = 1", "--config", " is not valid TOML: "),
    ],
)
def test_each_error_names_its_setting(
    tmp_path: Path, toml: str, setting: str, problem: str | None
) -> None:
    if problem is None:
        assert load_settings(_toml(tmp_path, toml), {}).broker.urls == ("amqp://a/",)
        return
    error = _error(tmp_path, toml)
    assert error.setting == setting
    assert problem in error.problem
    assert str(error) == f"config: {setting}: {error.problem}"


def test_a_writer_prefetch_below_its_batch_size_is_accepted(tmp_path: Path) -> None:
    """Prefetch counts messages and a bundle carries up to 200 entries: 10 messages may fill a
    batch of 500 (the default, 40, is below it too). The check from before bundles refused it."""
    settings = load_settings(_toml(tmp_path, "[writer]\nprefetch = 10\nbatch_size = 500"), {})
    assert (settings.writer.prefetch, settings.writer.batch_size) == (10, 500)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml", {})
    assert info.value.setting == "--config"
    assert info.value.problem == f"file {tmp_path / 'nope.toml'} does not exist"


def test_a_config_path_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    """As podman kube play (4.3) made of a ConfigMap file mounted by subPath: exit 2 naming
    --config, not a traceback."""
    folder = tmp_path / "cti-journal.toml"
    folder.mkdir()
    with pytest.raises(ConfigError) as info:
        load_settings(folder, {})
    assert info.value.setting == "--config"
    assert info.value.problem == f"{folder} is a folder, not a file"


# -- the CLI: exit 2 before anything connects --------------------------------------------------
@pytest.fixture
def quiet_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`main` replaces the root logger's handlers; give them back afterwards."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _no_connect(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("connected although the config is bad")


@pytest.mark.usefixtures("quiet_cli")
def test_check_exits_2_on_bad_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cti_journal.cli import check
    from cti_journal.cli.main import main

    monkeypatch.setattr(check, "declare_topology_blocking", _no_connect)
    dsn = tmp_path / "dsn"
    dsn.write_text(DSN)
    bad = _toml(tmp_path, f'[writer]\ndsn_file = "{dsn}"\nbatch_size = -1\n')
    assert main(["check", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cti-journal: config: writer.batch_size: must be greater than 0, is -1" in err
    assert SECRET not in err


@pytest.mark.usefixtures("quiet_cli")
def test_check_exits_2_on_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cti_journal.cli import check
    from cti_journal.cli.main import main

    monkeypatch.setattr(check, "declare_topology_blocking", _no_connect)
    assert main(["check", "-c", str(tmp_path / "missing.toml")]) == 2
    assert "config: --config: file " in capsys.readouterr().err


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.1.2.3", "cti-gw.example"])
def test_a_listener_on_a_public_address_needs_networks_or_client_certificates(
    tmp_path: Path, address: str
) -> None:
    text = f'[gateway]\nsource = "listen"\nlisten_address = "{address}"\n'
    error = _error(tmp_path, text)
    assert error.setting == "gateway.allowed_networks / gateway.tls_client_ca_file"
    assert "reachable from other hosts" in str(error)
    ok = text + 'allowed_networks = ["10.1.0.0/16"]\n'
    (tmp_path / "ok.toml").write_text(ok, encoding="utf-8")
    # Read as another process would: only the gateway's own host must have the address.
    load_settings(tmp_path / "ok.toml", env={}, secrets=frozenset({"broker", "privacy"}))


@pytest.mark.parametrize(
    ("address", "why"),
    [("10.1.2.3", "not an address of this host"), ("cti-gw.invalid", "not an address or host")],
)
def test_the_gateway_refuses_a_listen_address_it_cannot_bind(
    tmp_path: Path, address: str, why: str
) -> None:
    """Issue 20 finding 16: the address is tried (port 0) when the gateway loads its settings."""
    text = f'[gateway]\nsource = "listen"\nlisten_address = "{address}"\n'
    error = _error(tmp_path, text + 'allowed_networks = ["10.1.0.0/16"]\n')
    assert error.setting == "gateway.listen_address"
    assert why in error.problem


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_listener_needs_no_networks(tmp_path: Path, address: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[gateway]\nsource = "listen"\nlisten_address = "{address}"\n', "utf-8")
    assert load_settings(path, env={}).gateway.spool  # and the spool is on by default
