"""What an image costs: CPU (and GPU) seconds per engine call, summed and priced in the manifest."""

from __future__ import annotations

import json

import pytest

from tests.worker.fakes import FakeEngines
from tests.worker.test_objects import STORAGE, upload
from worker.pipeline import Job, object_steps, run_steps
from worker.pipeline.cost import CostMeter, price
from worker.pipeline.job import EngineRun
from worker.pipeline.manifest import cost_summary
from worker.settings import CostSettings, LimitSettings, PolicySettings
from worker.storage import MemoryObjectStore


def test_meter_counts_process_cpu_time_and_no_gpu_off_cuda():
    meter = CostMeter("cpu")
    total = sum(i * i for i in range(300_000))  # some CPU work to measure
    cost = meter.stop()
    assert total > 0 and cost.cpu_seconds > 0 and cost.gpu_seconds is None


def test_price_needs_a_rate_and_counts_an_unset_one_as_zero():
    assert price(3600.0, 0.0, cpu_hour=None, gpu_hour=None) is None
    assert price(1800.0, 360.0, cpu_hour=0.04, gpu_hour=None)["total"] == pytest.approx(0.02)
    assert price(1800.0, 360.0, cpu_hour=0.04, gpu_hour=2.5)["total"] == pytest.approx(0.02 + 0.25)


def test_summary_sums_runs_with_and_without_gpu():
    runs = [EngineRun("a", "torch", "cuda:0", 1.0, 1, cpu_seconds=0.5, gpu_seconds=0.25),
            EngineRun("b", "torch", "cpu", 2.0, 4, cpu_seconds=3.0, gpu_seconds=None)]
    summary = cost_summary(runs, CostSettings(price_cpu_hour=0.04, price_gpu_hour=3.6))
    assert summary["cpu_seconds"] == 3.5 and summary["gpu_seconds"] == 0.25
    assert summary["price"]["total"] == pytest.approx(3.5 / 3600 * 0.04 + 0.25 / 3600 * 3.6, abs=1e-8)
    assert cost_summary(runs, None)["price"] is None


def test_object_manifest_carries_each_runs_seconds_and_the_priced_sum():
    # Given an upload enhanced by the object pipeline with a CPU-hour rate set
    store = MemoryObjectStore()
    record = upload(store)
    job = Job(limits=LimitSettings(), policy=PolicySettings(target_short_side=64))
    run_steps(job, object_steps(record, store, STORAGE, FakeEngines(), prices=CostSettings(price_cpu_hour=0.04)),
              deadline=float("inf"))
    # Then the stored manifest has per-run CPU seconds, their sum and its price
    manifest = json.loads(store.get(record.bucket, job.outputs["manifest_key"], max_bytes=10**6).data)
    runs = manifest["engines"]
    assert runs and all(run["cpu_seconds"] >= 0 and run["gpu_seconds"] is None for run in runs)
    assert manifest["cost"]["cpu_seconds"] == pytest.approx(sum(run["cpu_seconds"] for run in runs), abs=1e-4)
    assert manifest["cost"]["price"]["cpu_hour"] == 0.04
    assert manifest["cost"]["price"]["total"] == pytest.approx(manifest["cost"]["cpu_seconds"] / 3600 * 0.04,
                                                               abs=1e-8)
