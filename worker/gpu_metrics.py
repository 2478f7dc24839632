"""GPU gauges read from NVML at scrape time: memory used and total, utilisation.

A prometheus_client custom collector, so the numbers are read when Prometheus asks rather than
sampled by a thread. `pynvml` (PyPI `nvidia-ml-py`) is optional: without it, or without a driver,
the collector yields nothing and /metrics stays valid on CPU-only machines.

Register it on the registry that serves /metrics (in multiprocess mode that is the registry built by
`worker.metrics.exposition_registry()`, not the default one):

    registry.register(GpuCollector())

Names are used verbatim by infra/ dashboards and alert rules (a test checks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from types import ModuleType

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MEMORY_USED = "retouch_gpu_memory_used_bytes"
MEMORY_TOTAL = "retouch_gpu_memory_total_bytes"
UTILIZATION = "retouch_gpu_utilization_ratio"
NAMES = (MEMORY_USED, MEMORY_TOTAL, UTILIZATION)


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


class GpuCollector(Collector):
    """Yield one sample per visible GPU and gauge, labelled by the GPU's index as NVML sees it.

    Inside a container NVML sees only the GPUs handed to it, so `gpu="0"` is the pod's first GPU.
    The index keeps the label low-cardinality; UUIDs would change with every node.
    """

    def __init__(self, nvml: ModuleType | None = None) -> None:
        # `nvml` is for tests (a fake module); None means import pynvml on first scrape.
        self._nvml = nvml
        self._state: bool | None = None  # None: not tried yet; False: no NVML here, stop trying.
        self._lock = threading.Lock()

    def _ready(self) -> ModuleType | None:
        with self._lock:
            if self._state is None:
                nvml = self._nvml or _import_nvml()
                try:
                    if nvml is None:
                        raise RuntimeError("pynvml is not installed")
                    nvml.nvmlInit()
                except Exception as error:  # NVMLError has no stable import path across versions.
                    log.info("GPU metrics disabled: %s", error)
                    self._state = False
                else:
                    self._nvml, self._state = nvml, True
            return self._nvml if self._state else None

    def describe(self) -> Iterator[Metric]:
        """Announce the names without touching NVML, so registering is cheap and catches duplicates."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        nvml = self._ready()
        if nvml is None:
            return
        used, total, utilization = self._families()
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as error:
            # A scrape must not fail because the driver hiccuped; the gauges are simply absent this time.
            log.warning("NVML device count failed: %s", error)
            return
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            except Exception as error:  # One lost GPU (Xid error) must not hide the others.
                log.warning("NVML read of GPU %d failed: %s", index, error)
                continue
            label = [str(index)]
            used.add_metric(label, float(memory.used))
            total.add_metric(label, float(memory.total))
            utilization.add_metric(label, rates.gpu / 100.0)  # NVML reports percent; we export a 0-1 ratio.
        yield used
        yield total
        yield utilization

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(MEMORY_USED, "GPU memory in use, all processes (NVML).", labels=["gpu"]),
            GaugeMetricFamily(MEMORY_TOTAL, "GPU memory installed (NVML).", labels=["gpu"]),
            GaugeMetricFamily(
                UTILIZATION, "Fraction of the last sample period in which a kernel ran (NVML).", labels=["gpu"]
            ),
        )
