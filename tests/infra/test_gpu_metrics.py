"""worker.gpu_metrics.GpuCollector against a fake NVML: values, units, and failing quietly."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from tests.infra._exposition import fake_nvml
from worker.gpu_metrics import GpuCollector


def samples(collector: GpuCollector) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {(s.name, s.labels.get("gpu", "")): s.value for m in registry.collect() for s in m.samples}


def test_reports_memory_in_bytes_and_utilisation_as_ratio() -> None:
    got = samples(GpuCollector(nvml=fake_nvml(used=6 << 30, total=16 << 30, percent=87)))
    assert got == {
        ("retouch_gpu_memory_used_bytes", "0"): float(6 << 30),
        ("retouch_gpu_memory_total_bytes", "0"): float(16 << 30),
        ("retouch_gpu_utilization_ratio", "0"): 0.87,
    }


def test_without_nvml_it_collects_nothing_and_stops_trying() -> None:
    calls = []

    def init() -> None:
        calls.append(1)
        raise RuntimeError("NVML Shared Library Not Found")

    collector = GpuCollector(nvml=SimpleNamespace(nvmlInit=init))  # type: ignore[arg-type]
    assert samples(collector) == {}
    assert samples(collector) == {}
    assert calls == [1]  # a CPU host does not pay for a failed init on every scrape


def test_without_pynvml_installed_the_exposition_is_still_valid(monkeypatch) -> None:
    import worker.gpu_metrics as gpu_metrics

    monkeypatch.setattr(gpu_metrics, "_import_nvml", lambda: None)
    registry = CollectorRegistry()
    registry.register(GpuCollector())
    assert b"retouch_gpu" not in generate_latest(registry)


def test_one_broken_gpu_does_not_hide_the_others() -> None:
    nvml = fake_nvml()
    healthy = nvml.nvmlDeviceGetMemoryInfo

    def memory(handle):
        if handle[1] == 0:
            raise RuntimeError("GPU is lost")  # an Xid error on GPU 0
        return healthy(handle)

    nvml.nvmlDeviceGetCount = lambda: 2
    nvml.nvmlDeviceGetMemoryInfo = memory
    got = samples(GpuCollector(nvml=nvml))
    assert {gpu for _, gpu in got} == {"1"}


def test_registering_does_not_touch_nvml() -> None:
    # describe() names the gauges without calling NVML, so registration at start-up is free.
    nvml = SimpleNamespace(nvmlInit=lambda: (_ for _ in ()).throw(AssertionError("NVML touched")))
    CollectorRegistry().register(GpuCollector(nvml=nvml))  # type: ignore[arg-type]
