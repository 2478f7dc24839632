"""The manifest of one enhanced image, whatever stored it: the object pipeline and `retouch enhance` share it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from worker import PIPELINE_VERSION
from worker.pipeline.cost import price
from worker.pipeline.job import EngineRun, Job
from worker.settings import CostSettings


def cost_summary(runs: Sequence[EngineRun], prices: CostSettings | None) -> dict:
    """CPU and GPU seconds summed over the image's engine runs, and their price when a rate is set."""
    cpu_seconds = sum(run.cpu_seconds for run in runs)
    gpu_seconds = sum(run.gpu_seconds or 0.0 for run in runs)
    rates = prices or CostSettings.model_construct(price_cpu_hour=None, price_gpu_hour=None)
    return {
        "cpu_seconds": round(cpu_seconds, 4),
        "gpu_seconds": round(gpu_seconds, 4),
        "price": price(cpu_seconds, gpu_seconds, cpu_hour=rates.price_cpu_hour, gpu_hour=rates.price_gpu_hour),
    }


def job_manifest(job: Job, *, source: dict, output: dict, prices: CostSettings | None) -> dict:
    """What the pipeline decided and did for `job`. `source` and `output` name where the bytes live
    (bucket/key/etag, or a path); sizes, analysis, decisions, engines, cost and timings come from the job."""
    assert job.analysis is not None and job.plan is not None and job.result is not None
    return {
        "pipeline_version": PIPELINE_VERSION,
        "source": {**source, "bytes": len(job.data or b""),
                   "width": job.analysis.width, "height": job.analysis.height},
        "output": {**output, "content_type": job.content_type,
                   "bytes": len(job.encoded or b""), "width": job.result.width, "height": job.result.height},
        "analysis": {"noise_sigma": job.analysis.noise_sigma, "sharpness": job.analysis.sharpness,
                     "jpeg_quality": job.analysis.jpeg_quality, "tone": job.tone},
        "decisions": list(job.plan.decisions),
        "gate": [verdict.as_dict() for verdict in job.gate],
        "background": job.background,  # null: no background step (keep)
        "engines": [run.__dict__ for run in job.engine_runs],
        "cost": cost_summary(job.engine_runs, prices),
        "timings_seconds": {name: round(seconds, 4) for name, seconds in job.timings.items()},
        "written_at": datetime.now(UTC).isoformat(),
    }
