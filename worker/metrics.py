"""Prometheus metrics: the one place that names them.

Names, labels and units here are used verbatim by infra/ dashboards and alert rules (a test checks).
Durations are in seconds; labels are low-cardinality (no keys, buckets or file names).

Several worker processes (Celery's prefork pool) write to one exposition through prometheus_client's
multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` must be set before `prometheus_client` is imported,
which `worker.cli` does first thing. Without it (tests, `retouch enhance`) metrics live in-process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

# From 5 ms to 10 min: a header read at the bottom, a 4x upscale of a large photo on a CPU at the top.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LAG_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

# Outcomes of `retouch_tasks_total`; reason is "none" unless the task failed or retried.
SUCCEEDED, FAILED, RETRIED, SKIPPED = "succeeded", "failed", "retried", "skipped"


@dataclass(frozen=True)
class Metrics:
    tasks: Counter
    tasks_in_progress: Gauge
    task_seconds: Histogram
    stage_seconds: Histogram
    engine_seconds: Histogram
    model_load_seconds: Histogram
    input_megapixels: Counter
    output_megapixels: Counter
    event_lag_seconds: Histogram
    queue_wait_seconds: Histogram
    tiles_per_image: Histogram
    engine_cpu_seconds: Counter
    engine_gpu_seconds: Counter
    price_per_hour: Gauge
    engine_cache: Counter
    backend_info: Gauge
    events: Counter
    source_queue_messages: Gauge
    worker_info: Gauge
    enqueue_failures: Counter
    storage_retries: Counter
    storage_retry_budget_exhausted: Counter
    redeliveries: Counter
    lease_renewals: Counter
    gate: Counter


@cache
def get_metrics() -> Metrics:
    """Create the metrics once per process, on first use (never at import)."""
    return Metrics(
        tasks=Counter("retouch_tasks", "Enhance tasks finished, by outcome and failure reason.",
                      ["outcome", "reason"]),
        tasks_in_progress=Gauge("retouch_tasks_in_progress", "Enhance tasks running now.",
                                multiprocess_mode="livesum"),
        task_seconds=Histogram("retouch_task_seconds", "Wall time of one enhance task, all steps.",
                               buckets=SECONDS_BUCKETS),
        stage_seconds=Histogram("retouch_stage_seconds", "Wall time of one pipeline step.", ["stage"],
                                buckets=SECONDS_BUCKETS),
        engine_seconds=Histogram("retouch_engine_seconds", "Wall time of one engine over one image.",
                                 ["engine", "backend"], buckets=SECONDS_BUCKETS),
        model_load_seconds=Histogram("retouch_model_load_seconds", "Time to load and warm up an engine.",
                                     ["engine", "backend"], buckets=SECONDS_BUCKETS),
        input_megapixels=Counter("retouch_input_megapixels", "Megapixels decoded from uploads."),
        output_megapixels=Counter("retouch_output_megapixels", "Megapixels written as enhanced images."),
        event_lag_seconds=Histogram("retouch_event_lag_seconds",
                                    "From the upload's event time to its enhanced output written.",
                                    buckets=LAG_BUCKETS),
        queue_wait_seconds=Histogram("retouch_queue_wait_seconds",
                                     "From a task being enqueued to a worker starting it.", buckets=LAG_BUCKETS),
        tiles_per_image=Histogram("retouch_tiles_per_image", "Tiles one engine split one image into.",
                                  ["engine"], buckets=COUNT_BUCKETS),
        engine_cpu_seconds=Counter("retouch_engine_cpu_seconds",
                                   "Process CPU seconds (every thread) spent in engine calls.",
                                   ["engine", "backend"]),
        engine_gpu_seconds=Counter("retouch_engine_gpu_seconds",
                                   "GPU seconds (CUDA events around the call) spent in engine calls.",
                                   ["engine", "backend"]),
        price_per_hour=Gauge("retouch_price_per_hour_usd",
                             "The worker's configured price of one CPU-hour or GPU-hour (RETOUCH_PRICE_*_HOUR).",
                             ["resource"], multiprocess_mode="max"),
        engine_cache=Counter("retouch_engine_cache", "Engine build cache look-ups (ONNX export, TensorRT plan).",
                             ["cache", "result"]),
        backend_info=Gauge("retouch_backend_info", "1 for each engine loaded, with its backend and device.",
                           ["engine", "backend", "device"], multiprocess_mode="max"),
        events=Counter("retouch_events", "Object-store events received by the ingester.", ["source", "outcome"]),
        source_queue_messages=Gauge("retouch_source_queue_messages",
                                    "Messages waiting in the source SQS queue (approximate).",
                                    multiprocess_mode="max"),
        worker_info=Gauge("retouch_worker_info", "1 per running process, with its role and versions.",
                          ["role", "version", "pipeline_version"], multiprocess_mode="max"),
        enqueue_failures=Counter("retouch_enqueue_failures",
                                 "Events the ingester could not enqueue (left to be redelivered), by reason.",
                                 ["source", "reason"]),
        storage_retries=Counter("retouch_storage_retries",
                                "Object-store calls retried by the S3 client itself, by operation and fault.",
                                ["operation", "reason"]),
        storage_retry_budget_exhausted=Counter(
            "retouch_storage_retry_budget_exhausted",
            "Client retries refused because the retry budget was spent (the task-level retry takes over).",
            ["operation"]),
        redeliveries=Counter("retouch_redeliveries",
                             "Tasks started again after their worker died, by what happened next.", ["outcome"]),
        lease_renewals=Counter("retouch_lease_renewals",
                               "Renewals of in-flight broker messages (Redis / SQS visibility), by result.",
                               ["result"]),
        gate=Counter("retouch_gate", "Quality-gate verdicts on the engines auto considered: applied or kept "
                     "as it was, by reason.", ["step", "verdict", "reason"]),
    )


def exposition_registry() -> CollectorRegistry:
    """The registry to serve: every process's samples in multiprocess mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def serve_metrics(port: int, addr: str = "0.0.0.0", role: str = "worker") -> None:
    """Start the /metrics HTTP server in a daemon thread and announce this process."""
    from worker import PIPELINE_VERSION, __version__

    if port:
        registry = exposition_registry()
        if role == "worker":
            from worker.gpu_metrics import GpuCollector

            registry.register(GpuCollector())  # reads NVML at scrape time; yields nothing without a GPU
        start_http_server(port, addr=addr, registry=registry)
    get_metrics().worker_info.labels(role=role, version=__version__, pipeline_version=PIPELINE_VERSION).set(1)


def mark_process_dead(pid: int) -> None:
    """Drop a dead pool process's live gauges (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
