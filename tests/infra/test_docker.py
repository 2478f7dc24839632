"""Dockerfiles: hadolint, and the properties operators rely on (non-root, healthcheck, cache volume).

Images are not built here: there is no Docker engine on this machine or in CI.
"""

from __future__ import annotations

import re

import pytest

from tests.infra.conftest import INFRA, ROOT, run, tool

DOCKER = INFRA / "docker"
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.gpu"]


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in (DOCKER / name).read_text().splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def final_stage(name: str) -> list[tuple[str, str]]:
    steps = instructions(name)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_hadolint_is_clean() -> None:
    run(tool("hadolint"), *DOCKERFILES, cwd=DOCKER)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_non_root_uid(name: str) -> None:
    users = [args for op, args in final_stage(name) if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit(), "a numeric uid lets Kubernetes enforce runAsNonRoot"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_has_healthcheck_cache_volume_and_entrypoint(name: str) -> None:
    stage = dict(final_stage(name))
    assert "/metrics" in stage["HEALTHCHECK"]
    assert "/var/cache/retouch" in stage["VOLUME"]
    envs = " ".join(args for op, args in final_stage(name) if op == "ENV")
    assert "RETOUCH_CACHE_DIR=/var/cache/retouch" in envs
    assert stage["ENTRYPOINT"] == '["retouch"]'


def test_bases() -> None:
    assert instructions("Dockerfile.cpu")[0] == ("FROM", "python:3.11-slim AS build")
    assert final_stage("Dockerfile.cpu")[0] == ("FROM", "python:3.11-slim")
    assert dict(instructions("Dockerfile.gpu"))["FROM"] == "nvcr.io/nvidia/tensorrt:${TENSORRT_TAG}-py3"
    gpu_run = " ".join(args for op, args in instructions("Dockerfile.gpu") if op == "RUN")
    assert "[tensorrt]" in gpu_run


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copied_sources_exist_and_are_not_ignored(name: str) -> None:
    ignore = (DOCKER / f"{name}.dockerignore").read_text().splitlines()
    assert "*" in ignore, "the context is the repo root: ignore everything by default"
    for op, args in instructions(name):
        if op == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"{name} copies {source}, which the repository lacks"
                assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, f"{source} is ignored"
