"""deploy/kubernetes/ against the Kubernetes schemas, KEDA's CRDs and the code it runs.

kubectl is not installed here, so `render()` builds each overlay the way `kustomize build` does for
the little these files use (resources, files or folders, and `labels`); anything else in a
kustomization.yaml is an error here, so the files cannot use a feature this renderer ignores.
Kubernetes objects are checked with kubernetes-validate's schemas in strict mode (an unknown field
is an error, as with `kubectl apply --validate=strict`); KEDA's with tests/schemas/keda-*.json,
written by hand from KEDA's CRDs (see its $comment)."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cti_journal.shared.loader import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("keda", "hpa", "pair")
KEDA_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "keda-2.20.schema.json").read_text())
# The oldest Kubernetes these files are written for (strict server-side field validation is the
# kubectl default from 1.27) and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.27", kubernetes_validate.latest_version())
SECRET_OF = {"gateway": "cti-journal-gateway", "lookup": "cti-journal-lookup",
             "writer": "cti-journal-writer"}  # fmt: skip
KEDA_SECRET = "cti-journal-keda"
# What each role's Secret holds: only what its own process reads (least privilege).
KEYS_OF = {"gateway": {"amqp-urls"}, "lookup": {"amqp-urls", "crm-dsn"},
           "writer": {"amqp-urls", "writer-dsn"}}  # fmt: skip
SECRETS_DIR = "/etc/cti-journal/secrets"
CONFIG_DIR = "/etc/cti-journal/config"
CONFIG_PATH = f"{CONFIG_DIR}/cti-journal.toml"
DRAIN_S = 30  # the gateway's shutdown drain (gateway/main.py) and the systemd units' minimum
QUEUE_OF = {"lookup": "lookup", "writer": "write"}  # the queue each stage consumes (topology.py)
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "labels"}
Obj = dict[str, Any]


# -- rendering ---------------------------------------------------------------------------------
def _documents(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def render(folder: Path, seen: set[Path] | None = None) -> list[Obj]:
    """The objects `kustomize build folder` gives; `seen` collects every file read."""
    seen = seen if seen is not None else set()
    kfile = folder / "kustomization.yaml"
    seen.add(kfile)
    (kust,) = _documents(kfile)
    unknown = set(kust) - KUSTOMIZATION_KEYS
    assert not unknown, f"{kfile}: {unknown} is not supported by this test's renderer"
    objects: list[Obj] = []
    for entry in kust.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            objects.extend(render(target, seen))
        else:
            seen.add(target)
            objects.extend(_documents(target))
    for label in kust.get("labels", []):
        assert set(label) == {"pairs"}, f"{kfile}: only plain label pairs are rendered here"
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"{folder}: defined twice: {dupes}"
    return objects


def _by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _containers(deployment: Obj) -> list[Obj]:
    containers: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def _command(deployment: Obj) -> str:
    (container,) = _containers(deployment)
    command: str = container["args"][0]
    return command


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> list[Obj]:
    return render(K8S / request.param)


@pytest.fixture(scope="module")
def config_toml() -> str:
    (cm,) = [o for o in render(K8S / "base") if o["kind"] == "ConfigMap"]
    text: str = cm["data"]["cti-journal.toml"]
    return text


# -- schemas -----------------------------------------------------------------------------------
def _k8s_objects() -> Iterator[Any]:
    for name in OVERLAYS:
        for obj in render(K8S / name):
            if not obj["apiVersion"].startswith("keda.sh/"):
                yield pytest.param(obj, id=f"{name}:{obj['kind']}/{obj['metadata']['name']}")


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("obj", list(_k8s_objects()))
def test_objects_validate_against_the_kubernetes_schema(obj: Obj, version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def test_the_kubernetes_schema_check_catches_a_misspelt_field() -> None:
    deployment = copy.deepcopy(_by_kind(render(K8S / "base"), "Deployment")["cti-journal-writer"])
    pod = deployment["spec"]["template"]["spec"]
    pod["terminationGracePeriodSecond"] = pod.pop("terminationGracePeriodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def _keda_objects() -> list[Obj]:
    return [o for o in render(K8S / "keda") if o["apiVersion"].startswith("keda.sh/")]


def test_keda_objects_validate_against_the_crd_schema() -> None:
    objects = _keda_objects()
    assert {o["kind"] for o in objects} == {"ScaledObject", "TriggerAuthentication"}
    jsonschema.Draft202012Validator.check_schema(KEDA_SCHEMA)
    for obj in objects:
        jsonschema.validate(obj, KEDA_SCHEMA, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("where", "old", "new"),
    [
        ("spec", "minReplicaCount", "minReplicasCount"),
        ("spec", "cooldownPeriod", "coolDownPeriod"),
        ("trigger", "authenticationRef", "authRef"),
        ("metadata", "queueName", "queue"),
        ("metadata", "mode", "Mode"),
    ],
)
def test_the_keda_schema_catches_a_typo(where: str, old: str, new: str) -> None:
    (scaled, *_) = [o for o in _keda_objects() if o["kind"] == "ScaledObject"]
    scaled = copy.deepcopy(scaled)
    trigger = scaled["spec"]["triggers"][0]
    table = {"spec": scaled["spec"], "trigger": trigger, "metadata": trigger["metadata"]}[where]
    table[new] = table.pop(old)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, KEDA_SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_keda_schema_catches_a_wrong_value() -> None:
    (scaled, *_) = [o for o in _keda_objects() if o["kind"] == "ScaledObject"]
    for path, value in ((("minReplicaCount",), -1), (("triggers", 0, "metadata", "mode"), "Len")):
        broken = copy.deepcopy(scaled)
        table = broken["spec"]
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, KEDA_SCHEMA, cls=jsonschema.Draft202012Validator)


# -- the files as a whole ----------------------------------------------------------------------
def test_every_file_is_part_of_some_overlay() -> None:
    seen: set[Path] = set()
    for name in OVERLAYS:
        render(K8S / name, seen)
    files = {p.resolve() for p in K8S.rglob("*.yaml")}
    assert files - seen == set(), "files no kustomization lists"


def test_the_config_map_is_a_valid_config(config_toml: str, tmp_path: Path) -> None:
    """The TOML loads with the code's own loader, every secret comes from the mounted Secret."""
    data = tomllib.loads(config_toml)
    assert "urls" not in data["broker"] and "dsn" not in data["writer"], "a secret in a ConfigMap"
    for key in ("amqp-urls", "writer-dsn", "crm-dsn"):
        (tmp_path / key).write_text("Driver={x};" if "dsn" in key else "amqp://u:p@mq:5672/v")
        (tmp_path / key).chmod(0o600)  # secret files open to others are refused
    assert config_toml.count(f'"{SECRETS_DIR}/') == 3
    local = tmp_path / "cti-journal.toml"
    local.write_text(config_toml.replace(SECRETS_DIR, str(tmp_path)), encoding="utf-8")
    settings = load_settings(local, env={})
    assert settings.broker.urls == ("amqp://u:p@mq:5672/v",)
    assert settings.gateway.spool_dir.startswith("/var/lib/cti-journal/")
    assert settings.gateway.timezone == "Europe/Berlin"


def test_deployments_probe_drain_and_run_unprivileged(overlay: list[Obj], config_toml: str) -> None:
    ports = {
        s: tomllib.loads(config_toml)[s]["metrics_port"] for s in ("gateway", "lookup", "writer")
    }
    deployments = _by_kind(overlay, "Deployment")
    assert {_command(d) for d in deployments.values()} == {"gateway", "lookup", "writer"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > DRAIN_S, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        (container,) = pod["containers"]
        assert container["args"][1:] == ["--config", CONFIG_PATH], name
        port = ports[_command(deployment)]
        assert container["ports"] == [{"name": "metrics", "containerPort": port}], name
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert "memory" in container["resources"]["limits"], name
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"], name
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts[CONFIG_DIR]["name"]]["configMap"]["name"] == "cti-journal-config"
        secret = volumes[mounts[SECRETS_DIR]["name"]]["secret"]["secretName"]
        assert secret == SECRET_OF[_command(deployment)], name
        assert all(m.get("readOnly") for p, m in mounts.items() if p.startswith("/etc/")), name


def test_the_gateway_is_never_scaled_and_keeps_its_spool(overlay: list[Obj]) -> None:
    deployments = _by_kind(overlay, "Deployment")
    gateways = {n: d for n, d in deployments.items() if _command(d) == "gateway"}
    claims: set[str] = set()
    for name, gateway in gateways.items():
        assert gateway["spec"]["replicas"] == 1, name
        assert gateway["spec"]["strategy"] == {"type": "Recreate"}, name
        pod = gateway["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        (state,) = [
            m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/cti-journal"
        ]
        (volume,) = [v for v in pod["volumes"] if v["name"] == state["name"]]
        claim = volume["persistentVolumeClaim"]["claimName"]
        assert claim in _by_kind(overlay, "PersistentVolumeClaim"), name
        claims.add(claim)
    assert len(claims) == len(gateways), "two gateways share one spool volume"
    scaled = [
        o["spec"]["scaleTargetRef"]["name"]
        for o in overlay
        if "scaleTargetRef" in o.get("spec", {})
    ]
    assert scaled, "no autoscaler"
    assert not set(scaled) & set(gateways), "an autoscaler scales a gateway"
    assert {_command(deployments[n]) for n in scaled} == {"lookup", "writer"}
    for name in scaled:  # kubectl apply would reset the autoscaler's number to a fixed one
        assert "replicas" not in deployments[name]["spec"], name


def test_pair_runs_two_gateways_on_one_config() -> None:
    """One ConfigMap, so one gateway.source_id: both give a call the same event id."""
    deployments = _by_kind(render(K8S / "pair"), "Deployment").values()
    gateways = [d for d in deployments if _command(d) == "gateway"]
    assert len(gateways) == 2
    configs = {
        v["configMap"]["name"]
        for g in gateways
        for v in g["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    }
    assert configs == {"cti-journal-config"}


def test_scaled_objects_watch_the_configured_queues(config_toml: str) -> None:
    prefix = tomllib.loads(config_toml)["broker"]["prefix"]
    objects = render(K8S / "keda")
    deployments = _by_kind(objects, "Deployment")
    auths = _by_kind(objects, "TriggerAuthentication")
    for name, scaled in _by_kind(objects, "ScaledObject").items():
        stage = _command(deployments[scaled["spec"]["scaleTargetRef"]["name"]])
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq", name
        assert trigger["metadata"]["queueName"] == f"{prefix}.{QUEUE_OF[stage]}", name
        assert scaled["spec"]["minReplicaCount"] >= 1, "a scaled-to-zero stage starts cold"
        auth = auths[trigger["authenticationRef"]["name"]]
        assert {r["name"] for r in auth["spec"]["secretTargetRef"]} == {KEDA_SECRET}
        assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"host"}


def test_budgets_and_services_select_the_pods(overlay: list[Obj]) -> None:
    pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in _by_kind(overlay, "Deployment").values()
    ]

    def selects(selector: dict[str, str]) -> int:
        return sum(selector.items() <= labels.items() for labels in pods)

    for name, pdb in _by_kind(overlay, "PodDisruptionBudget").items():
        assert selects(pdb["spec"]["selector"]["matchLabels"]), f"PDB {name} selects no pod"
    budgets = [
        p["spec"]["selector"]["matchLabels"]
        for p in _by_kind(overlay, "PodDisruptionBudget").values()
    ]
    assert all(any(b.items() <= labels.items() for b in budgets) for labels in pods), (
        "a pod without a PDB"
    )
    for name, service in _by_kind(overlay, "Service").items():
        assert selects(service["spec"]["selector"]), f"Service {name} selects no pod"
    for deployment in _by_kind(overlay, "Deployment").values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert selects(selector) == 1, "two Deployments select the same pods"


@pytest.mark.parametrize("role", ["gateway", "lookup", "writer"])
def test_each_role_starts_with_only_its_own_secrets(
    config_toml: str, tmp_path: Path, role: str
) -> None:
    """Issue 20, finding 15: a pod mounts only its role's Secret; its process must load with the
    other roles' files absent (before, every process read every `_file` setting)."""
    from cti_journal.shared import arguments

    for key in KEYS_OF[role]:
        (tmp_path / key).write_text("Driver={x};" if "dsn" in key else "amqp://u:p@mq:5672/v")
        (tmp_path / key).chmod(0o600)
    local = tmp_path / "cti-journal.toml"
    local.write_text(config_toml.replace(SECRETS_DIR, str(tmp_path)), encoding="utf-8")
    sections = {"gateway": arguments.GATEWAY, "lookup": arguments.LOOKUP,
                "writer": arguments.WRITER}[role]  # fmt: skip
    settings = load_settings(local, env={}, secrets=sections)
    assert settings.broker.urls == ("amqp://u:p@mq:5672/v",)
    from cti_journal.shared.loader import UNREAD

    assert settings.writer.dsn.startswith(UNREAD) == (role != "writer")
    assert all(s.dsn.startswith(UNREAD) == (role != "lookup") for s in settings.lookup.sources)


def test_the_docs_create_every_secret_key_the_files_use(config_toml: str) -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    created = set(re.findall(r"--from-file=([a-z0-9-]+)=", operations))
    used = set(re.findall(rf'"{SECRETS_DIR}/([a-z0-9-]+)"', config_toml))
    for auth in _by_kind(render(K8S / "keda"), "TriggerAuthentication").values():
        used |= {ref["key"] for ref in auth["spec"]["secretTargetRef"]}
    assert created == used
