"""A whole deployment in processes the fault tests can hurt: their own broker, moto's S3+SQS server, a
fault-injecting proxy in front of S3 for the workers, a real `retouch ingest sqs` and real `retouch worker`s.

Uploads go straight to moto (the seller's side is not under test); the workers reach S3 through the proxy.
Every bucket is versioned, so "exactly one output" is countable as exactly one object version.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import numpy as np
from PIL import Image

from tests.faults.harness import FaultProxy, free_port
from worker.demo import wire_bucket

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
REPO = Path(__file__).resolve().parents[2]


def photo(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small textured PNG, different for every seed (so every upload has its own eTag)."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * rng.uniform(0.3, 1.0, 3)
    pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@dataclass
class Process:
    """A `retouch` process in its own session, so the whole tree can be killed like a lost container."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    metrics_port: int

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def sample(self, name: str, **labels: str) -> float:
        try:
            return metric(self.metrics(), name, **labels)
        except OSError:
            return 0.0

    def children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_pool_child(self) -> int:
        """SIGKILL the pool process running the task (what the kernel's OOM killer picks: the biggest)."""
        children = self.children()
        assert children, f"{self.name} has no pool process"
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def kill_whole(self) -> None:
        """SIGKILL the main process and its pool at once: a container's OOM kill, a lost node."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


@dataclass
class Upload:
    key: str
    data: bytes
    uploaded_at: float
    good: bool = True


@dataclass
class FaultStack:
    broker_url: str
    moto_url: str
    proxy: FaultProxy
    tmp: Path
    cache_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.bucket = f"faults-{suffix}"
        self.queue_url = wire_bucket(self.moto_url, self.bucket, f"events-{suffix}")
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.celery_queue = f"retouch-faults-{suffix}"

    @property
    def s3(self):
        return boto3.client("s3", endpoint_url=self.moto_url, region_name="us-east-1")

    @property
    def sqs(self):
        return boto3.client("sqs", endpoint_url=self.moto_url, region_name="us-east-1")

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ, **AWS,
            "CI": os.environ.get("CI", ""),
            "OMP_NUM_THREADS": "1",  # two workers share two cores
            "RETOUCH_BROKER_URL": self.broker_url,
            "RETOUCH_QUEUE": self.celery_queue,
            "RETOUCH_DEAD_LETTER_QUEUE": f"{self.celery_queue}.dead-letter",
            "RETOUCH_S3_ENDPOINT_URL": self.proxy.url,  # workers see S3 through the faulty proxy
            "RETOUCH_CACHE_DIR": str(self.cache_dir),
            "RETOUCH_TARGET_SHORT_SIDE": "96",
            "RETOUCH_SQS_WAIT_SECONDS": "1",
            "PYTHONPATH": str(REPO),
            **self.settings,
            **extra,
        }

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        port = free_port()
        log_path = self.tmp / f"{name}.log"
        popen = subprocess.Popen([sys.executable, "-m", "worker.cli", *argv], cwd=REPO,
                                 env={**env, "RETOUCH_METRICS_PORT": str(port)},
                                 stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(name, popen, log_path, port)
        self.processes.append(process)
        return process

    def start_worker(self, name: str, **extra: str) -> Process:
        env = self.env(PROMETHEUS_MULTIPROC_DIR=str(self.tmp / f"metrics-{name}"), **extra)
        worker = self._spawn(name, ["worker", "--loglevel", "INFO", "--concurrency", "1"], env)
        self.wait_for(lambda: "ready." in worker.log(), 90, f"{name} to be ready", watch=[worker])
        return worker

    def start_ingester(self, name: str = "ingester", **extra: str) -> Process:
        env = self.env(RETOUCH_S3_ENDPOINT_URL=self.moto_url, **extra)  # SQS straight to moto
        port = free_port()
        ingester = self._spawn(name, ["ingest", "sqs", "--queue-url", self.queue_url, "--metrics-port", str(port)], env)
        ingester.metrics_port = port
        self.wait_for(lambda: "consuming S3 notifications" in ingester.log(), 60, "the ingester", watch=[ingester])
        return ingester

    def upload(self, key: str, data: bytes, *, good: bool = True, metadata: dict[str, str] | None = None) -> Upload:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=metadata or {})
        item = Upload(key, data, time.time(), good)
        self.uploads.append(item)
        return item

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str,
                 watch: list[Process] | None = None) -> float:
        """Seconds until `condition()` held; fails with the logs' tails when it does not in time."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            for process in watch or []:
                if not process.alive:
                    tail = process.log()[-4000:]
                    raise AssertionError(f"{process.name} exited ({process.popen.returncode}):\n{tail}")
            if condition():
                return time.monotonic() - started
            time.sleep(0.25)
        tails = "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in self.processes)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self._missing_story()}{tails}")

    def _missing_story(self) -> str:
        """The uploads still without an output, and every log line that names the first few: where each one
        stopped (never enqueued, enqueue failed, received but not finished...), which the tails alone miss."""
        missing = self.unfinished()
        if not missing:
            return ""
        lines = [f"uploads without an output or failure record: {missing}"]
        for key in missing[:3]:
            for process in self.processes:
                lines += [f"  {process.name}: {line}" for line in process.log().splitlines() if key in line][-12:]
        return "\n".join(lines) + "\n"

    # What is in the bucket, as object versions (delete markers excluded).
    def versions(self, prefix: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                counts[version["Key"]] = counts.get(version["Key"], 0) + 1
        return counts

    def live_keys(self, prefix: str) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def finished(self) -> int:
        """Uploads with a manifest or a failure record."""
        return len(self.uploads) - len(self.unfinished())

    def unfinished(self) -> list[str]:
        """Keys of the uploads with neither a manifest nor a failure record yet."""
        keys = self.live_keys("enhanced/")
        return [u.key for u in self.uploads
                if f"enhanced/{u.key}.manifest.json" not in keys and f"enhanced/failed/{u.key}.json" not in keys]

    def manifest(self, key: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"enhanced/{key}.manifest.json")["Body"].read())

    def check_exactly_once(self) -> dict[str, int]:
        """Every good upload: one output version and one manifest version; every bad one: one failure record.

        Returns per-upload counts of lost and duplicated outputs, for the figures the closing note reports.
        """
        versions = self.versions("enhanced/")
        lost, duplicated, problems = 0, 0, []
        for item in self.uploads:
            stem = item.key.rsplit(".", 1)[0]
            if item.good:
                images = sum(n for k, n in versions.items()
                             if k.startswith(f"enhanced/{stem}.") and not k.endswith(".manifest.json"))
                manifests = versions.get(f"enhanced/{item.key}.manifest.json", 0)
                failures = versions.get(f"enhanced/failed/{item.key}.json", 0)
                if images == 0 or manifests == 0:
                    lost += 1
                if images > 1 or manifests > 1:
                    duplicated += 1
                if (images, manifests, failures) != (1, 1, 0):
                    problems.append(f"{item.key}: {images} image versions, {manifests} manifests, {failures} failures")
            else:
                failures = versions.get(f"enhanced/failed/{item.key}.json", 0)
                outputs = sum(n for k, n in versions.items() if k.startswith(f"enhanced/{stem}."))
                if (failures, outputs) != (1, 0):
                    problems.append(f"{item.key} (bad): {failures} failure records, {outputs} outputs")
        assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} uploads wrong)"
        return {"uploaded": len(self.uploads), "lost": lost, "duplicated": duplicated}

    def close(self) -> None:
        for process in self.processes:
            process.stop()
