"""The files under deploy/ against the code they describe, so that they cannot rot: the example
config loads and names every setting; dashboards and alerts use only metrics the code registers;
the systemd units keep their safety settings."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from prometheus_client import CollectorRegistry

from cti_journal.shared import config
from cti_journal.shared.config import Settings
from cti_journal.shared.loader import load_settings
from cti_journal.shared.metrics import NS, make_metrics
from cti_journal.shared.validation import COMMON_SOURCE_KEYS, SOURCE_KEYS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXAMPLE = DEPLOY / "cti-journal.example.toml"
DASHBOARD = DEPLOY / "grafana" / "cti-journal.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RECORDING = DEPLOY / "prometheus" / "recording.yml"  # what alerts.yml builds on
UNITS = DEPLOY / "systemd"

# RabbitMQ's own metrics (rabbitmq_prometheus, /metrics/per-object) that the files may use.
RABBITMQ_METRICS = {
    "rabbitmq_queue_messages",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages_bytes",  # ready + unacknowledged, in bytes (the dead-letter bound)
}
_METRIC_RE = re.compile(rf"\b({NS}_[a-z0-9_]+|rabbitmq_[a-z0-9_]+)\b")


# -- the example config ---------------------------------------------------------------------------
def test_example_config_loads_and_validates() -> None:
    settings = load_settings(EXAMPLE, env={})
    assert [s.type for s in settings.lookup.sources] == ["odbc", "odbc", "file", "http"]
    crm, staff, _export, _web = settings.lookup.sources
    assert crm.first_name_column and crm.last_name_column and len(crm.phone_columns) >= 3
    assert staff.internal and not crm.internal
    assert settings.writer.columns["Journal_Gebühren"] == "Journal_Gebühren"
    assert settings.writer.columns["ID"] == "ID"


def _settings_tables(cls: type, path: str) -> Iterator[tuple[str, type]]:
    """(TOML path, dataclass) for Settings and every settings dataclass below it."""
    yield path, cls
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        inner = get_args(hint)[0] if get_origin(hint) is tuple else hint
        if dataclasses.is_dataclass(inner):
            yield from _settings_tables(inner, f"{path}.{f.name}" if path else f.name)  # type: ignore[arg-type]


def _toml_tables(data: dict[str, Any], path: str) -> dict[str, list[dict[str, Any]]]:
    """TOML path -> the tables found there (an array of tables gives several)."""
    found: dict[str, list[dict[str, Any]]] = {path: [data]}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else key
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and key != "columns":
                for where, tables in _toml_tables(item, sub).items():
                    found.setdefault(where, []).extend(tables)
    return found


def test_example_config_names_every_setting_with_its_default() -> None:
    """Every field of every settings dataclass is written out, in every example table, and the
    defaults shown are the code's defaults (where the example is not meant to differ)."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    tables = _toml_tables(data, "")
    meant_to_differ = {"writer.dsn"}
    for path, cls in _settings_tables(Settings, ""):
        assert path in tables, f"[{path}] is missing from {EXAMPLE.name}"
        for table in tables[path]:
            for f in dataclasses.fields(cls):
                key = f"{path}.{f.name}" if path else f.name
                if cls is config.ContactSourceSettings and f.name not in _source_keys(table):
                    continue
                assert f.name in table, f"{key} is missing from {EXAMPLE.name}"
                if (
                    cls in (config.ContactSourceSettings, config.PrivacyRule)
                    or key in meant_to_differ
                ):
                    continue
                value = table[f.name]
                if isinstance(value, dict) or (
                    isinstance(value, list) and value and isinstance(value[0], dict)
                ):
                    continue  # a nested table: checked as its own path
                default = (
                    f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                )
                shown = tuple(value) if isinstance(value, list) else value
                assert shown == default, (
                    f"{key}: example shows {shown!r}, the default is {default!r}"
                )


def _source_keys(table: dict[str, Any]) -> frozenset[str]:
    """The keys a [[lookup.sources]] block of its type takes (shared/validation.py)."""
    return COMMON_SOURCE_KEYS | SOURCE_KEYS[table.get("type", "odbc")]


def test_example_config_shows_every_source_key() -> None:
    """Each source key appears in some example block, active or commented out (ldap, carddav
    need files that exist to load)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for f in dataclasses.fields(config.ContactSourceSettings):
        key = {"password": "password(_file)?", "token": "token(_file)?"}.get(f.name, f.name)
        assert re.search(rf"^#? ?{key} = ", text, re.MULTILINE), f"{f.name} is not shown"


def test_compose_config_loads_with_the_environment_compose_sets(tmp_path: Path) -> None:
    secrets = {
        "amqp-urls": "amqp://cti-journal-lookup:pw@rabbitmq:5672/cti-journal",
        "writer-dsn": "Driver={PostgreSQL Unicode};Server=postgres;",
        "crm-dsn": "Driver={PostgreSQL Unicode};Server=postgres;Uid=cti_reader;",
    }
    for name, value in secrets.items():
        (tmp_path / name).write_text(value, encoding="utf-8")
        (tmp_path / name).chmod(0o600)
    toml = (DEPLOY / "compose" / "cti-journal.toml").read_text(encoding="utf-8")
    config = tmp_path / "cti-journal.toml"
    config.write_text(toml.replace("/run/secrets/", f"{tmp_path}/"), encoding="utf-8")
    settings = load_settings(
        config,
        env={
            "CTI_JOURNAL_BROKER__URLS_FILE": str(tmp_path / "amqp-urls"),
            "CTI_JOURNAL_WRITER__DSN_FILE": str(tmp_path / "writer-dsn"),
            "CTI_JOURNAL_GATEWAY__HOST": "simulator",
        },
    )
    assert settings.gateway.host == "simulator"
    assert settings.lookup.sources and settings.writer.create_table
    assert not settings.broker.declare_topology  # the role users may not
    compose = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    ports = (
        settings.gateway.metrics_port,
        settings.lookup.metrics_port,
        settings.writer.metrics_port,
    )
    prometheus = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    for port in ports:
        assert str(port) in prometheus, f"prometheus.yml does not scrape port {port}"
    assert "CTI_JOURNAL_WRITER__DSN_FILE" in compose and "CTI_JOURNAL_BROKER__URLS_FILE" in compose


def test_compose_ships_no_password_and_runs_each_app_with_its_own_secrets_only() -> None:
    """Issue 20, finding 15: before, compose shipped `change-me` and `cti_reader` passwords, ran
    every app as the broker's administrator with the DSN password in the environment, and set
    no read_only or cap_drop."""
    yaml = pytest.importorskip("yaml")
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for shipped in (DEPLOY / "compose.yaml", *(DEPLOY / "compose").iterdir()):
        body = shipped.read_text(encoding="utf-8")
        assert "change-me" not in body and "PASSWORD 'cti_reader'" not in body, shipped
        assert not re.search(r"(?i)\b(pwd|password)=[^;.\s]", body), shipped
    assert not re.search(r"(?m)^\s+[A-Z_]*PASS(WORD)?:\s*\S", text), "a password in the environment"
    compose = yaml.safe_load(text)
    wanted = {
        "gateway": {"amqp-url-gateway"},
        "lookup": {"amqp-url-lookup", "crm-dsn"},
        "writer": {"amqp-url-writer", "writer-dsn"},
        "topology": {"amqp-url-admin"},
        "gateway-b": {"amqp-url-gateway"},
    }
    for service, secrets in wanted.items():
        spec = compose["services"][service]
        got = {s if isinstance(s, str) else s["source"] for s in spec["secrets"]}
        assert got == secrets, service
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"], service
        assert "no-new-privileges:true" in spec["security_opt"], service
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), name
    assert "RABBITMQ_DEFAULT_PASS" not in text


def test_compose_broker_lets_guest_in_from_its_own_container_only() -> None:
    """The official RabbitMQ image ships conf.d/10-defaults.conf with `loopback_users.guest =
    false`: without a default user, guest/guest would log in from every container of the stack.
    A later conf.d file takes that back (the container tier tries guest from the network)."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    mounts = compose["services"]["rabbitmq"]["volumes"]
    conf = "./rabbitmq/90-cti-journal.conf:/etc/rabbitmq/conf.d/90-cti-journal.conf:ro"
    assert conf in mounts
    text = (DEPLOY / "rabbitmq" / "90-cti-journal.conf").read_text(encoding="utf-8")
    assert re.search(r"(?m)^loopback_users\.guest = true$", text)


def test_example_config_explains_env_and_file_rules() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "CTI_JOURNAL_<SECTION>__<KEY>" in text
    assert "_file" in text and "dsn_file" in text


def test_example_config_env_override_rule_as_documented() -> None:
    settings = load_settings(
        EXAMPLE,
        env={"CTI_JOURNAL_LOOKUP__METRICS_PORT": "9321", "CTI_JOURNAL_METRICS_ADDRESS": "::"},
    )
    assert settings.lookup.metrics_port == 9321
    assert settings.metrics_address == "::"


# -- metric names in dashboards and alerts --------------------------------------------------------
def _exposed_names() -> set[str]:
    """Every sample name the processes can expose: prometheus_client adds `_total` (and
    `_created`) to counters and `_bucket`/`_sum`/`_count` to histograms."""
    registry = CollectorRegistry()
    make_metrics(registry)
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in suffixes[family.type])
    return names


def test_exposed_names_follow_prometheus_client_rules() -> None:
    names = _exposed_names()
    assert f"{NS}_rows_written_total" in names
    assert f"{NS}_end_to_end_seconds_bucket" in names
    assert f"{NS}_rows_written" not in names


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"])


def _alert_exprs(text: str) -> list[str]:
    """The `expr:` values of a rules file, plain or folded (`>-`) - no YAML parser needed."""
    exprs: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2)
        if value in (">-", ">", "|", "|-"):
            block = []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                block.append(nxt.strip())
            value = " ".join(block)
        exprs.append(value)
    return exprs


def _unknown(text: str) -> set[str]:
    return {m for m in _METRIC_RE.findall(text)} - _exposed_names() - RABBITMQ_METRICS


def test_dashboard_uses_only_registered_metrics() -> None:
    exprs = list(_dashboard_exprs())
    assert exprs
    for title, expr in exprs:
        uses_up = expr.startswith("up{")
        assert uses_up or _METRIC_RE.search(expr), f"panel {title!r}: {expr!r} names no metric"
        assert not _unknown(expr), f"panel {title!r} uses unknown metrics {_unknown(expr)}"


def test_dashboard_covers_what_admins_watch() -> None:
    used = {m for _, expr in _dashboard_exprs() for m in _METRIC_RE.findall(expr)}
    wanted = {
        f"{NS}_entries_received_total", f"{NS}_published_total", f"{NS}_confirmed_total",
        f"{NS}_lookups_total", f"{NS}_rows_written_total", f"{NS}_batch_size_bucket",
        f"{NS}_insert_seconds_bucket", f"{NS}_end_to_end_seconds_bucket", f"{NS}_retried_total",
        f"{NS}_dead_lettered_total", f"{NS}_truncated_total", f"{NS}_contacts",
        f"{NS}_broker_connected", f"{NS}_db_connected", "rabbitmq_queue_messages_ready",
    }  # fmt: skip
    assert wanted <= used, f"dashboard lacks {wanted - used}"


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_alerts_use_only_registered_metrics_and_cover_the_failures() -> None:
    text = ALERTS.read_text(encoding="utf-8")
    exprs = _alert_exprs(text)
    assert len(exprs) == len(re.findall(r"^\s+- alert: CtiJournal\w+$", text, re.M)) >= 7
    used: set[str] = set()
    for expr in exprs:
        assert not _unknown(expr), f"alerts.yml: {expr!r} uses unknown metrics {_unknown(expr)}"
        used.update(_METRIC_RE.findall(expr))
    for expr in _alert_exprs(RECORDING.read_text(encoding="utf-8")):
        assert not _unknown(expr), f"recording.yml: {expr!r} uses unknown metrics"
        used.update(_METRIC_RE.findall(expr))
    wanted = {
        f"{NS}_dead_lettered_total", f"{NS}_broker_connected", f"{NS}_db_connected",
        f"{NS}_rows_written_total", f"{NS}_entries_received_total",
        f"{NS}_contact_refresh_failures_total", f"{NS}_end_to_end_seconds_bucket",
        "rabbitmq_queue_messages_ready",
    }  # fmt: skip
    assert wanted <= used, f"alerts.yml and recording.yml lack {wanted - used}"


def test_unknown_metric_names_are_caught() -> None:
    assert _alert_exprs("  - alert: X\n    expr: >-\n      a_total\n      > 0\n    for: 1m\n") == [
        "a_total > 0"
    ]
    assert _unknown("rate(cti_journal_rows_writen_total[5m])") == {"cti_journal_rows_writen_total"}
    assert _unknown("cti_journal_rows_written") == {"cti_journal_rows_written"}


# -- systemd units --------------------------------------------------------------------------------
def _unit(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("cti-journal-gateway.service", "gateway"),
        ("cti-journal-lookup@.service", "lookup"),
        ("cti-journal-writer@.service", "writer"),
    ],
)
def test_systemd_units_are_hardened_and_drain_gracefully(name: str, command: str) -> None:
    unit = _unit(name)
    (exec_start,) = unit["ExecStart"]
    assert f" {command} " in exec_start and "/etc/cti-journal/cti-journal.toml" in exec_start
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "RestartPreventExitStatus": "2",
    }.items():
        assert unit.get(key) == [value], f"{name}: {key}"
    assert unit.get("DynamicUser") == ["yes"] or "User" in unit
    stop_s = int(unit["TimeoutStopSec"][0].removesuffix("s"))
    assert stop_s >= 30, "shorter than the processes' own drain time"
    if "@" in name:
        port_env = [v for v in unit["Environment"] if "__METRICS_PORT=" in v]
        assert port_env and port_env[0].endswith("%i"), "each instance needs its own metrics port"


@pytest.mark.parametrize(
    "name",
    ["cti-journal-gateway.service", "cti-journal-lookup@.service", "cti-journal-writer@.service"],
)
def test_systemd_units_notify_watchdog_and_restart_on_debian_12(name: str) -> None:
    """Type=notify + WatchdogSec (the process sends READY=1 / WATCHDOG=1, shared/health.py);
    restarts that systemd 252 understands: no RestartSteps/RestartMaxDelaySec, which it ignores
    (the old 2 s restart loop hit the CRM database every 2 s), exit 2 never restarted."""
    unit = _unit(name)
    assert unit["Type"] == ["notify"]
    watchdog_s = int(unit["WatchdogSec"][0].removesuffix("s"))
    assert watchdog_s >= 10  # the process beats once a second; slack for a busy machine
    assert "RestartSteps" not in unit and "RestartMaxDelaySec" not in unit
    assert int(unit["RestartSec"][0].removesuffix("s")) >= 10
    assert unit["RestartPreventExitStatus"] == ["2"]


def test_systemd_analyze_verify_accepts_the_units_without_a_warning(tmp_path: Path) -> None:
    """The installed systemd (Debian 12: 252) reads every line of every unit."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (deploy/setup.sh installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    executable = Path(sys.executable).with_name("cti-journal")
    for unit in UNITS.glob("*.service"):
        text = unit.read_text(encoding="utf-8").replace(
            "/opt/cti-journal/bin/cti-journal", str(executable)
        )
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    names = sorted(str(p) for p in tmp_path.glob("*.service"))
    result = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def test_gateway_unit_has_a_state_directory_for_its_checkpoint() -> None:
    assert _unit("cti-journal-gateway.service")["StateDirectory"] == ["cti-journal"]


# -- YAML (only where a parser happens to be installed) ------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "prometheus/alerts.test.yml",
        "compose.yaml",
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/cti-journal.yml",
    ],
)
def test_yaml_files_parse(path: str) -> None:
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load((DEPLOY / path).read_text(encoding="utf-8"))


# -- the container image ---------------------------------------------------------------------
DOCKERFILE = DEPLOY / "Dockerfile"


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, rest = (pending + line).partition(" ")
        out.append((instruction.upper(), rest.strip()))
        pending = ""
    return out


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in _dockerfile():
        if instruction == "ENV":
            parts = shlex.split(rest)
            if "=" not in parts[0]:  # the legacy form ENV KEY value
                env[parts[0]] = " ".join(parts[1:])
                continue
            env.update(part.split("=", 1) for part in parts)  # type: ignore[misc]
    return env


def _exec_form(instruction: str) -> list[str]:
    (rest,) = [r for i, r in _dockerfile() if i == instruction]
    if instruction == "HEALTHCHECK":
        rest = rest[rest.index("CMD ") + 4 :]
    value = json.loads(rest)
    assert isinstance(value, list), f"{instruction} must use the exec form (JSON)"
    return value


def _compose_env(service: str) -> dict[str, str]:
    """The environment compose.yaml gives a service, `${VAR:-default}` taken as the default."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    env = compose["services"][service].get("environment", {})
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def _run_image_command(argv: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """argv (the image's ENTRYPOINT + a command) with the image's ENV, compose's environment and
    `extra`, and nothing else of ours; the config path the image names is the file compose
    mounts there."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/nonexistent"}
    env |= _image_env() | _compose_env("lookup") | extra
    mounted = env["CTI_JOURNAL_CONFIG"]
    assert mounted == "/etc/cti-journal/cti-journal.toml"
    compose = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert f"./compose/cti-journal.toml:{mounted}:ro" in compose
    env["CTI_JOURNAL_CONFIG"] = str(DEPLOY / "compose" / "cti-journal.toml")
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_image_environment_runs_the_cli() -> None:
    """What `docker run cti-journal …` does: the image sets CTI_JOURNAL_CONFIG, which the loader
    used to take for a setting ("config: unknown setting", exit 2, even with -c)."""
    entrypoint, cmd = _exec_form("ENTRYPOINT"), _exec_form("CMD")
    assert entrypoint == ["cti-journal"]
    closed = f"amqp://cti-journal:pw@127.0.0.1:{_closed_port()}/cti-journal"
    extra = {"CTI_JOURNAL_BROKER__URLS": closed}  # compose's host "rabbitmq" does not exist here
    check = _run_image_command([*entrypoint, "check", "--only", "broker"], extra)
    assert check.stdout.startswith("config: valid\n"), check.stdout + check.stderr
    assert "broker: FAILED: " in check.stdout
    assert "amqp://cti-journal:***@127.0.0.1:" in check.stdout
    assert check.returncode == 2
    default = _run_image_command(entrypoint + cmd, extra)
    assert default.returncode == 0 and "usage: cti-journal" in default.stdout
    version = _run_image_command([*entrypoint, "--version"], extra)
    assert version.returncode == 0 and version.stdout.startswith("cti-journal ")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_health_checks_are_on_the_long_running_services_not_in_the_image() -> None:
    """The image has no HEALTHCHECK: one-off containers (simulate, check, schema) inherited it and
    turned unhealthy. compose gives gateway, lookup and writer `cti-journal probe` (no curl)."""
    assert "HEALTHCHECK" not in {instruction for instruction, _ in _dockerfile()}
    from cti_journal.cli.main import COMMANDS

    assert "probe" in COMMANDS
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    for service in ("gateway", "gateway-b", "lookup", "writer"):
        assert compose["services"][service]["healthcheck"]["test"] == [
            "CMD", "cti-journal", "probe"
        ]  # fmt: skip
    assert "healthcheck" not in compose["services"]["simulator"]


def test_compose_publishes_no_broker_or_database_port_and_spells_out_replicas() -> None:
    """A broker or database already on the host must not clash with the stack's; podman-compose
    starts `deploy.replicas` only with `mode: replicated` (Docker's default) spelt out."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:${") for p in published), published
    assert not [p for p in published if p.endswith((":5672", ":5432"))]
    for service in ("lookup", "writer"):
        assert compose["services"][service]["deploy"]["mode"] == "replicated"


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = (DEPLOY.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for entry in (".git", ".venv", "var", "bench", "**/__pycache__"):
        assert entry in ignored
    copied = [rest.split()[0] for i, rest in _dockerfile() if i == "COPY"]
    assert not set(copied) & set(ignored), "the Dockerfile copies something .dockerignore drops"
