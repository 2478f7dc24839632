"""Kubernetes manifests: core kinds against Kubernetes' JSON schemas (kubernetes-validate, offline,
strict), CRDs (KEDA, Prometheus Operator) against the fields their controllers read, and the wiring
between them. No cluster is used: nothing here is applied.
"""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from tests.infra._cli import known_variables, parse_command
from tests.infra.conftest import INFRA

K8S = INFRA / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest minor the manifests promise to work on


def documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def resources() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in documents(name)]


def by_kind(kind: str, docs: list[dict] | None = None) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in (docs or resources()) if doc["kind"] == kind}


ALL_FILES = sorted(path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
CORE_KINDS = {"Namespace", "ServiceAccount", "ConfigMap", "Secret", "Deployment"}


@pytest.mark.parametrize("name", ALL_FILES)
def test_core_kinds_match_kubernetes_schemas(name: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed; run infra/ci/install-tools.sh")
    for doc in documents(name):
        if doc["kind"] in CORE_KINDS:
            # strict: an unknown (misspelt) field is an error, not silently dropped by the API server.
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# The fields KEDA 2.x and the Prometheus Operator read, with their types, from their CRDs.
NAME_REF = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
METADATA = {"type": "object", "required": ["name", "namespace"]}
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object", "required": ["metadata", "spec"],
        "properties": {"metadata": METADATA, "spec": {
            "type": "object", "required": ["scaleTargetRef", "triggers"], "additionalProperties": False,
            "properties": {
                "scaleTargetRef": NAME_REF,
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer"}, "cooldownPeriod": {"type": "integer"},
                "advanced": {"type": "object", "properties": {"horizontalPodAutoscalerConfig": {
                    "type": "object", "properties": {"behavior": {"type": "object"}}}}},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                    "properties": {
                        "type": {"enum": ["redis", "rabbitmq"]},
                        # KEDA reads every metadata value as a string.
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        "authenticationRef": NAME_REF,
                    }}},
            }}},
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object", "required": ["metadata", "spec"],
        "properties": {"metadata": METADATA, "spec": {
            "type": "object", "required": ["secretTargetRef"],
            "properties": {"secretTargetRef": {"type": "array", "items": {
                "type": "object", "required": ["parameter", "name", "key"], "additionalProperties": False,
                "properties": {k: {"type": "string"} for k in ("parameter", "name", "key")}}}}}},
    },
    ("monitoring.coreos.com/v1", "PodMonitor"): {
        "type": "object", "required": ["metadata", "spec"],
        "properties": {"metadata": METADATA, "spec": {
            "type": "object", "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "podMetricsEndpoints": {"type": "array", "items": {
                    "type": "object", "required": ["port"], "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"}, "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                        "path": {"type": "string"},
                        "relabelings": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False,
                            "properties": {
                                "sourceLabels": {"type": "array", "items": {"type": "string"}},
                                "regex": {"type": "string"}, "targetLabel": {"type": "string"},
                                "replacement": {"type": "string"}, "action": {"type": "string"}}}},
                    }}},
            }}},
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object", "required": ["metadata", "spec"],
        "properties": {"metadata": METADATA, "spec": {
            "type": "object", "required": ["groups"], "additionalProperties": False,
            "properties": {"groups": {"type": "array", "items": {
                "type": "object", "required": ["name", "rules"]}}}}},
    },
}


@pytest.mark.parametrize("name", ALL_FILES)
def test_custom_resources_are_well_formed(name: str) -> None:
    for doc in documents(name):
        if doc["kind"] not in CORE_KINDS:
            schema = CRD_SCHEMAS[(doc["apiVersion"], doc["kind"])]
            jsonschema.validate(doc, schema)


def test_kustomization_lists_every_manifest_but_the_alternative() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert set(ALL_FILES) - listed == {"keda-rabbitmq.yaml"}
    assert all(doc["metadata"].get("namespace", "retouch") == "retouch" for doc in resources())


def test_containers_run_real_commands_with_real_settings() -> None:
    config = by_kind("ConfigMap")["retouch-config"]["data"]
    secret = by_kind("Secret")["retouch-secrets"]["stringData"]
    for deployment in by_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            parse_command(container["args"])  # the image's ENTRYPOINT is `retouch`
            names = {e["name"] for e in container.get("env", [])} | set(config) | set(secret)
            unknown = {n for n in names if n.startswith("RETOUCH_")} - known_variables()
            assert not unknown, f"{deployment['metadata']['name']} sets unknown variables {unknown}"
            assert all(n.startswith("RETOUCH_") for n in set(config) | set(secret)), "envFrom loads keys whole"


def test_gpu_worker_is_one_process_per_gpu() -> None:
    pod = by_kind("Deployment")["retouch-worker"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = parse_command(container["args"])
    assert (args.pool, args.concurrency) == ("solo", 1)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert by_kind("ConfigMap")["retouch-config"]["data"]["RETOUCH_CACHE_DIR"] in mounts
    # Long enough for the running task to reach its deadline after SIGTERM.
    deadline = float(by_kind("ConfigMap")["retouch-config"]["data"]["RETOUCH_TASK_DEADLINE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > deadline


def test_pods_run_as_the_images_non_root_user() -> None:
    for deployment in by_kind("Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"]
            # readOnlyRootFilesystem: prometheus_client's multiprocess files need a writable /tmp.
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


@pytest.mark.parametrize("name", ["keda-redis.yaml", "keda-rabbitmq.yaml"])
def test_autoscaler_watches_the_celery_queue_of_the_worker(name: str) -> None:
    from worker.settings import BrokerSettings

    docs = documents(name)
    scaled = next(iter(by_kind("ScaledObject", docs).values()))
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind("Deployment")
    trigger = scaled["spec"]["triggers"][0]
    queue = trigger["metadata"].get("listName") or trigger["metadata"].get("queueName")
    assert queue == BrokerSettings().queue
    auth = by_kind("TriggerAuthentication", docs)[trigger["authenticationRef"]["name"]]
    if name == "keda-redis.yaml":  # its Secret is part of the kustomization; RabbitMQ's is the operator's
        secrets = by_kind("Secret")
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_pod_monitor_selects_the_pods_and_their_metrics_port() -> None:
    monitor = by_kind("PodMonitor")["retouch"]["spec"]
    for deployment in by_kind("Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert monitor["selector"]["matchLabels"].items() <= labels.items()
        ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert monitor["podMetricsEndpoints"][0]["port"] in ports
        component = labels["app.kubernetes.io/component"]
        relabel = monitor["podMetricsEndpoints"][0]["relabelings"][0]
        assert relabel["replacement"].replace("$1", component) in {"retouch-worker", "retouch-ingester"}


def test_prometheus_rule_is_the_rules_file() -> None:
    rules = yaml.safe_load((INFRA / "prometheus" / "rules" / "retouch-alerts.yml").read_text())
    assert by_kind("PrometheusRule")["retouch"]["spec"] == rules, "run infra/kubernetes/sync-prometheusrule.sh"


def test_each_process_runs_under_the_account_terraform_trusts() -> None:
    accounts = by_kind("ServiceAccount")
    main_tf = (INFRA / "terraform" / "main.tf").read_text()
    assert 'system:serviceaccount:${var.namespace}:retouch-${each.key}' in main_tf
    for component in ("ingester", "worker"):
        pod = by_kind("Deployment")[f"retouch-{component}"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"retouch-{component}" and pod["serviceAccountName"] in accounts
        role = accounts[f"retouch-{component}"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert role.endswith(f":role/retouch-{component}")
