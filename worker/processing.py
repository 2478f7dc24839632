"""One uploaded object version through the pipeline, with its metrics and failure record.

This is the hook layer between the pipeline and Prometheus: steps stay free of metrics code; the Celery
task maps the outcome to ack / retry / dead-letter and is the one place that counts outcomes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from worker import PIPELINE_VERSION
from worker.engine_pool import EnginePool
from worker.errors import RetouchError
from worker.events import ObjectCreated
from worker.metrics import Metrics, get_metrics
from worker.pipeline import Job, Request, object_steps, run_steps
from worker.pipeline.enhance import EngineLike
from worker.pipeline.objects import META_PIPELINE, META_SOURCE_ETAG, OutputLocation, is_finished, write_once
from worker.settings import Settings, load_settings
from worker.storage import ObjectStore, S3ObjectStore

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a worker process holds between tasks."""

    settings: Settings
    store: ObjectStore
    engines: EnginePool
    metrics: Metrics


def observe_engine_load(metrics: Metrics):
    def on_load(engine: EngineLike, seconds: float) -> None:
        engine_id = str(getattr(engine.spec, "id", "unknown"))
        metrics.model_load_seconds.labels(engine=engine_id, backend=engine.backend_name).observe(seconds)
        metrics.backend_info.labels(engine=engine_id, backend=engine.backend_name, device=engine.device).set(1)
        for cache_name, result in getattr(engine, "cache_lookups", {}).items():
            metrics.engine_cache.labels(cache=cache_name, result=result).inc()
        log.info("engine %s loaded on %s/%s in %.2fs", engine_id, engine.backend_name, engine.device, seconds)

    return on_load


@cache
def worker_context() -> WorkerContext:
    """Built once per pool process, on the first task (after fork)."""
    settings = load_settings()
    metrics = get_metrics()
    # The rates as gauges, so the dashboard prices the same seconds the manifests price.
    for resource, rate in (("cpu", settings.cost.price_cpu_hour), ("gpu", settings.cost.price_gpu_hour)):
        if rate is not None:
            metrics.price_per_hour.labels(resource=resource).set(rate)
    return WorkerContext(
        settings=settings,
        store=S3ObjectStore.from_settings(settings.storage),
        engines=EnginePool(on_load=observe_engine_load(metrics), s3_endpoint_url=settings.storage.s3_endpoint_url),
        metrics=metrics,
    )


def process_upload(record: ObjectCreated, ctx: WorkerContext, *, enqueued_at: float | None = None,
                   request: Request | None = None, replay: bool = False) -> Job:
    """Run the object pipeline; returns the finished Job (job.done set when skipped as a duplicate).

    Raises RetouchError subclasses for the task to map (which counts every outcome, `worker.tasks`).
    A replayed upload that now succeeds loses its failure record: at rest an upload has either an output
    with its manifest or a failure record.
    """
    metrics = ctx.metrics
    settings = ctx.settings
    if enqueued_at is not None:
        metrics.queue_wait_seconds.observe(max(0.0, time.time() - enqueued_at))
    job = Job(limits=settings.limits, policy=settings.policy_for(record.bucket), request=request or Request())
    steps = object_steps(record, ctx.store, settings.storage, ctx.engines, progress=_log_progress(record),
                         prices=settings.cost)
    started = time.perf_counter()
    metrics.tasks_in_progress.inc()
    try:
        run_steps(job, steps, deadline=time.monotonic() + settings.limits.task_deadline_seconds,
                  observe=lambda stage, seconds: metrics.stage_seconds.labels(stage=stage).observe(seconds))
    finally:
        metrics.tasks_in_progress.dec()
        metrics.task_seconds.observe(time.perf_counter() - started)
    if "skipped" in job.outputs:
        log.info("skipped %s/%s: %s", record.bucket, record.key, job.outputs["skipped"])
        return job
    for run in job.engine_runs:
        metrics.engine_seconds.labels(engine=run.engine, backend=run.backend).observe(run.seconds)
        metrics.tiles_per_image.labels(engine=run.engine).observe(run.tiles)
        metrics.engine_cpu_seconds.labels(engine=run.engine, backend=run.backend).inc(run.cpu_seconds)
        if run.gpu_seconds is not None:
            metrics.engine_gpu_seconds.labels(engine=run.engine, backend=run.backend).inc(run.gpu_seconds)
    for verdict in job.gate:
        metrics.gate.labels(step=verdict.step, verdict=verdict.verdict, reason=verdict.reason).inc()
    if job.analysis is not None:
        metrics.input_megapixels.inc(job.analysis.megapixels)
    if job.result is not None:
        metrics.output_megapixels.inc(job.result.width * job.result.height / 1e6)
    if record.event_time is not None:
        metrics.event_lag_seconds.observe(max(0.0, job.outputs["written_at"] - record.event_time.timestamp()))
    if replay:
        where = OutputLocation(record, settings.storage)
        ctx.store.delete(where.bucket, where.failure_key)
    log.info("enhanced %s/%s -> %s/%s", record.bucket, record.key, job.outputs["bucket"], job.outputs["key"])
    return job


def _log_progress(record: ObjectCreated):
    last = [0.0]

    def progress(model: str, done: int, total: int) -> None:
        # Long CPU upscales take minutes: a line every 10 s tells ops the task is alive.
        now = time.monotonic()
        if done == total or now - last[0] > 10:
            last[0] = now
            log.info("%s/%s: %s tile %d/%d", record.bucket, record.key, model, done, total)

    return progress


def upload_is_finished(record: ObjectCreated, ctx: WorkerContext) -> bool:
    """Whether this upload version already has its output and manifest (the `dedupe` step's test)."""
    return is_finished(ctx.store, record, OutputLocation(record, ctx.settings.storage))


def write_failure_record(store: ObjectStore, record: ObjectCreated, ctx: WorkerContext, error: RetouchError,
                         attempts: int) -> str:
    """Leave a JSON record next to where the output would be, so nothing accepted vanishes silently.

    Written once per upload version and pipeline version: a redelivered failure does not add another.
    """
    where = OutputLocation(record, ctx.settings.storage)
    body = {
        "pipeline_version": PIPELINE_VERSION,
        "source": record.to_message(),
        "reason": error.reason,
        "message": str(error),
        "retryable": error.retryable,
        "attempts": attempts,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    write_once(store, where.bucket, where.failure_key, json.dumps(body, indent=2).encode(),
               content_type="application/json", source_etag=record.etag or "",
               metadata={META_SOURCE_ETAG: record.etag or "", META_PIPELINE: PIPELINE_VERSION})
    return where.failure_key
