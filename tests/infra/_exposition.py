"""A real exposition of every metric the code exports, with realistic label values.

Used by the catalogue test (promtool check metrics) and by the stand-in process that Prometheus scrapes.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from worker.gpu_metrics import NAMES as GPU_NAMES
from worker.gpu_metrics import GpuCollector
from worker.metrics import FAILED, RETRIED, SKIPPED, SUCCEEDED, Metrics, get_metrics

STAGES = ("fetch", "check_limits", "decode", "analyse", "plan", "enhance", "encode", "put")
# Prometheus's own series that dashboards and alerts may use beside ours.
PROMETHEUS_OWN = {"up"}


def exercise(metrics: Metrics, scale: float = 1.0) -> None:
    """Touch every metric once as one successful task, one failure, one retry and one skip would."""
    metrics.tasks.labels(outcome=SUCCEEDED, reason="none").inc()
    metrics.tasks.labels(outcome=FAILED, reason="corrupt_image").inc()
    metrics.tasks.labels(outcome=RETRIED, reason="storage_unavailable").inc()
    metrics.tasks.labels(outcome=SKIPPED, reason="none").inc()
    metrics.tasks_in_progress.set(0)
    metrics.task_seconds.observe(2.4 * scale)
    for index, stage in enumerate(STAGES):
        metrics.stage_seconds.labels(stage=stage).observe((0.01 + 0.05 * index) * scale)
    metrics.engine_seconds.labels(engine="compact_sr_x4", backend="torch").observe(1.7 * scale)
    metrics.engine_seconds.labels(engine="compact_denoiser", backend="onnxruntime").observe(0.4 * scale)
    metrics.model_load_seconds.labels(engine="compact_sr_x4", backend="torch").observe(0.8)
    metrics.input_megapixels.inc(0.48)
    metrics.output_megapixels.inc(7.68)
    metrics.event_lag_seconds.observe(3.1 * scale)
    metrics.queue_wait_seconds.observe(0.2 * scale)
    metrics.tiles_per_image.labels(engine="compact_sr_x4").observe(4)
    metrics.engine_cpu_seconds.labels(engine="compact_sr_x4", backend="torch").inc(3.2 * scale)
    metrics.engine_gpu_seconds.labels(engine="compact_sr_x4", backend="tensorrt").inc(0.05 * scale)
    metrics.price_per_hour.labels(resource="cpu").set(0.04)
    metrics.engine_cache.labels(cache="onnx", result="miss").inc()
    metrics.engine_cache.labels(cache="onnx", result="hit").inc()
    metrics.backend_info.labels(engine="compact_sr_x4", backend="torch", device="cpu").set(1)
    metrics.events.labels(source="webhook", outcome="enqueued").inc()
    metrics.events.labels(source="sqs", outcome="ignored").inc()
    metrics.source_queue_messages.set(3)
    metrics.worker_info.labels(role="worker", version="0.1.0", pipeline_version="2026.11.1").set(1)
    metrics.enqueue_failures.labels(source="sqs", reason="broker_unavailable").inc()
    metrics.storage_retries.labels(operation="PutObject", reason="http_503").inc()
    metrics.storage_retry_budget_exhausted.labels(operation="HeadObject").inc()
    metrics.redeliveries.labels(outcome="resumed").inc()
    metrics.lease_renewals.labels(result="renewed").inc(2)


def fake_nvml(used: int = 6 << 30, total: int = 16 << 30, percent: int = 87) -> SimpleNamespace:
    """A stand-in for pynvml with one GPU."""
    memory = SimpleNamespace(used=used, total=total, free=total - used)
    return SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda index: ("gpu", index),
        nvmlDeviceGetMemoryInfo=lambda handle: memory,
        nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu=percent, memory=40),
    )


def full_exposition() -> bytes:
    """Every metric of `get_metrics()` exercised, plus the GPU collector on a fake NVML, as text."""
    from prometheus_client import REGISTRY

    exercise(get_metrics())
    registry = CollectorRegistry()
    registry.register(GpuCollector(nvml=fake_nvml()))  # type: ignore[arg-type]
    return generate_latest(REGISTRY) + generate_latest(registry)


def exported_series_names() -> set[str]:
    """Every series name the code can export: counters' `_total`, histograms' `_bucket|_sum|_count`, GPU gauges."""
    names: set[str] = set(GPU_NAMES) | PROMETHEUS_OWN
    for collector in vars(get_metrics()).values():
        for family in collector.describe():
            base = family.name
            if family.type == "counter":
                names.add(base + "_total")
            elif family.type == "histogram":
                names.update(base + suffix for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(base)
    return names


def family_names(text: str) -> set[str]:
    """The `# TYPE` names in an exposition."""
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
