"""Integration tier: real Redis and RabbitMQ brokers, moto's S3+SQS server, a real `retouch worker` process.

When a broker is not reachable the test is skipped locally but FAILS under CI (CI=true), so a missing
service can never turn the suite silently green.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from worker.demo import free_port, wire_bucket

BROKERS = {
    "redis": ("127.0.0.1", 6379, "redis://127.0.0.1:6379/0"),
    "rabbitmq": ("127.0.0.1", 5672, "amqp://guest:guest@127.0.0.1:5672//"),
}
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def broker_url(name: str) -> str:
    host, port, url = BROKERS[name]
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        message = f"{name} is not reachable at {host}:{port} ({error})"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run must start it")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for name, value in AWS.items():
        os.environ.setdefault(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def engine_cache_dir(tmp_path_factory) -> Path:
    """Shared by every worker of the session so ONNX exports are made once."""
    return tmp_path_factory.mktemp("engine-cache")


@dataclass
class Stack:
    """One isolated deployment: its own bucket, SQS queue, Celery queue and worker process."""

    endpoint: str
    broker_url: str
    bucket: str
    queue_url: str
    celery_queue: str
    metrics_port: int
    env: dict[str, str]
    worker: subprocess.Popen | None = None
    log_path: Path | None = None
    threads: list = field(default_factory=list)

    @property
    def s3(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    @property
    def sqs(self):
        return boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1")

    def start_worker(self, concurrency: int = 1) -> None:
        log = open(self.log_path, "wb")
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def sample(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels` (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker is not None and self.worker.poll() is not None:
                raise AssertionError(f"worker exited ({self.worker.returncode}):\n{self.log_path.read_text()[-4000:]}")
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; worker log:\n{self.log_path.read_text()[-4000:]}")

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture
def make_stack(moto_endpoint, engine_cache_dir, tmp_path, monkeypatch):
    stacks: list[Stack] = []

    def make(broker: str, **settings: str) -> Stack:
        url = broker_url(broker)
        suffix = uuid.uuid4().hex[:8]
        bucket = f"listings-{suffix}"
        queue_url = wire_bucket(moto_endpoint, bucket, f"uploads-{suffix}")
        # Versioning makes every PUT a new version: "written exactly once" becomes countable.
        boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        metrics_port = free_port()
        env = {
            **os.environ, **AWS,
            "RETOUCH_BROKER_URL": url,
            "RETOUCH_QUEUE": f"retouch-test-{suffix}",
            "RETOUCH_DEAD_LETTER_QUEUE": f"retouch-test-{suffix}.dead-letter",
            "RETOUCH_S3_ENDPOINT_URL": moto_endpoint,
            "RETOUCH_METRICS_PORT": str(metrics_port),
            "RETOUCH_CACHE_DIR": str(engine_cache_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{suffix}"),
            "RETOUCH_TARGET_SHORT_SIDE": "96",
            **settings,
        }
        for name, value in env.items():
            if name.startswith("RETOUCH_") or name.startswith("AWS_"):
                monkeypatch.setenv(name, value)
        stack = Stack(endpoint=moto_endpoint, broker_url=url, bucket=bucket, queue_url=queue_url,
                      celery_queue=env["RETOUCH_QUEUE"], metrics_port=metrics_port, env=env,
                      log_path=tmp_path / f"worker-{suffix}.log")
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        for stopper in stack.threads:
            stopper()
        if stack.worker is not None and stack.worker.poll() is None:
            stack.worker.terminate()
            try:
                stack.worker.wait(30)
            except subprocess.TimeoutExpired:
                stack.worker.kill()
