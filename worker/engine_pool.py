"""Engines opened once per worker process and reused across tasks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from worker.pipeline.enhance import EngineLike

LoadObserver = Callable[[EngineLike, float], None]


class EnginePool:
    """Lazily opens `engines.session.open_engine(model, backend=...)` and keeps it for later tasks.

    Loading happens in the pool process on first use, never in the parent before fork, so CUDA is
    initialised only in the process that uses it.
    """

    def __init__(self, on_load: LoadObserver | None = None, s3_endpoint_url: str | None = None) -> None:
        self._s3_endpoint_url = s3_endpoint_url  # operator weights given as s3:// come from the same storage
        self._engines: dict[tuple[str, str], EngineLike] = {}
        self._lock = threading.Lock()
        self._on_load = on_load

    def get(self, model: str, backend: str) -> EngineLike:
        key = (model, backend)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                from engines.session import open_engine

                started = time.perf_counter()
                engine = open_engine(model, backend=backend, s3_endpoint_url=self._s3_endpoint_url)
                if self._on_load is not None:
                    self._on_load(engine, time.perf_counter() - started)
                self._engines[key] = engine
        return engine

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                close = getattr(engine, "close", None)
                if close is not None:
                    close()
            self._engines.clear()
