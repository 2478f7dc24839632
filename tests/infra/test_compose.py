"""The local compose stack: valid Compose, real CLI commands and settings, and wiring that agrees.

`docker compose config` needs the Docker engine, which is absent here; Compose v1 (`docker-compose`,
Debian's package) validates the file against the Compose schema offline, so that is what runs.
Nothing here builds or starts the stack.
"""

from __future__ import annotations

import yaml

from tests.infra._cli import known_variables, parse_command
from tests.infra.conftest import INFRA, run, tool

COMPOSE_DIR = INFRA / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
RETOUCH_SERVICES = ("ingester", "worker")


def test_compose_schema_is_valid() -> None:
    run(tool("docker-compose"), "config", "--quiet", cwd=COMPOSE_DIR)


def test_stack_has_every_part() -> None:
    assert set(SERVICES) >= {"minio", "minio-setup", "redis", "ingester", "worker", "prometheus", "grafana"}


def test_retouch_services_run_real_commands() -> None:
    ingester = parse_command(SERVICES["ingester"]["command"])
    assert (ingester.command, ingester.source) == ("ingest", "webhook")
    assert parse_command(SERVICES["worker"]["command"]).command == "worker"


def test_retouch_services_set_only_real_settings() -> None:
    for name in RETOUCH_SERVICES:
        env = SERVICES[name]["environment"]
        unknown = {key for key in env if key.startswith("RETOUCH_")} - known_variables()
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"


def test_images_build_from_the_cpu_dockerfile() -> None:
    for name in RETOUCH_SERVICES:
        build = SERVICES[name]["build"]
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == INFRA / "docker" / "Dockerfile.cpu"


def test_minio_notifies_the_ingester_with_its_secret() -> None:
    minio = SERVICES["minio"]["environment"]
    ingester = parse_command(SERVICES["ingester"]["command"])
    env = SERVICES["ingester"]["environment"]
    assert minio["MINIO_NOTIFY_WEBHOOK_ENDPOINT_RETOUCH"] == f"http://ingester:{ingester.port}/"
    assert minio["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_RETOUCH"] == env["RETOUCH_WEBHOOK_SECRET"]
    assert minio["MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_RETOUCH"], "without a queue dir MinIO drops events while we are down"
    setup = " ".join(SERVICES["minio-setup"]["command"])
    # The bucket routes exactly the prefix the ingester enhances, so outputs (enhanced/) never re-trigger it.
    assert f"arn:minio:sqs::RETOUCH:webhook --event put --prefix {env['RETOUCH_INPUT_PREFIX']}" in setup
    assert not env["RETOUCH_OUTPUT_PREFIX"].startswith(env["RETOUCH_INPUT_PREFIX"])


def test_prometheus_targets_match_the_ports_served() -> None:
    targets = {}
    for path in (INFRA / "prometheus" / "targets").glob("*.yml"):
        targets[path.stem] = yaml.safe_load(path.read_text())[0]["targets"]
    worker_port = SERVICES["worker"]["environment"]["RETOUCH_METRICS_PORT"]
    ingester = parse_command(SERVICES["ingester"]["command"])
    assert targets["worker"] == [f"worker:{worker_port}"]
    assert targets["ingester"] == [f"ingester:{ingester.metrics_port}"]
    # The image's healthcheck probes RETOUCH_METRICS_PORT, so it must name the port actually served.
    assert SERVICES["ingester"]["environment"]["RETOUCH_METRICS_PORT"] == str(ingester.metrics_port)


def test_mounted_paths_exist() -> None:
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), volume


def test_worker_keeps_its_engine_cache_on_a_volume() -> None:
    dockerfile = (INFRA / "docker" / "Dockerfile.cpu").read_text()
    assert "RETOUCH_CACHE_DIR=/var/cache/retouch" in dockerfile
    assert "engine-cache:/var/cache/retouch" in SERVICES["worker"]["volumes"]
