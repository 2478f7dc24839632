"""The pipeline: ordered named steps over a `Job`, each timed, the deadline checked between them.

Object flow:  dedupe -> fetch -> check_limits -> decode -> mask -> analyse -> plan -> enhance -> encode -> put
Local files:  check_limits -> decode -> mask -> analyse -> plan -> enhance -> encode (the CLI reads and writes)
"""

from __future__ import annotations

from worker.events import ObjectCreated
from worker.pipeline.analyse import analyse
from worker.pipeline.decode import decode
from worker.pipeline.encode import encode
from worker.pipeline.enhance import EngineProvider, Progress, enhance_step
from worker.pipeline.job import Job, Request
from worker.pipeline.limits import check_limits
from worker.pipeline.masks import build_mask
from worker.pipeline.objects import OutputLocation, dedupe_step, fetch_step, put_step
from worker.pipeline.plan import plan
from worker.pipeline.runner import Step, StepObserver, run_steps
from worker.settings import CostSettings, StorageSettings
from worker.storage import ObjectStore

__all__ = ["Job", "Request", "Step", "StepObserver", "run_steps", "image_steps", "object_steps"]


def image_steps(engines: EngineProvider, progress: Progress | None = None) -> list[Step]:
    """The storage-independent middle: bytes in `job.data` to bytes in `job.encoded`."""
    return [
        Step("check_limits", check_limits),
        Step("decode", decode),
        Step("mask", build_mask),
        Step("analyse", analyse),
        Step("plan", plan),
        enhance_step(engines, progress),
        Step("encode", encode),
    ]


def object_steps(record: ObjectCreated, store: ObjectStore, storage: StorageSettings,
                 engines: EngineProvider, progress: Progress | None = None,
                 prices: CostSettings | None = None) -> list[Step]:
    """The whole flow for one uploaded object version; `prices` put a price on the manifest's cost."""
    where = OutputLocation(record, storage)
    return [
        dedupe_step(store, record, where),
        fetch_step(store, record),
        *image_steps(engines, progress),
        put_step(store, record, where, prices),
    ]
