"""The engines' own settings, read from `RETOUCH_*` variables in one place.

`worker.settings` lists this class among its areas, so `load_settings()` validates these with the rest and
the README's table is checked against every field; engines code reads them only through `engine_settings()`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    """Where engines keep their exports and how their runtimes are sized."""

    model_config = SettingsConfigDict(env_prefix="RETOUCH_", extra="ignore", frozen=True)

    cache_dir: Path | None = Field(
        default=None, description="ONNX exports, TensorRT engines, downloaded weights, the embedded broker; "
        "unset: ~/.cache/retouch.")
    ort_threads: int = Field(
        default=0, ge=0, description="ONNX Runtime and OpenVINO threads per engine; 0: one per core.")
    trt_cache_s3: str | None = Field(
        default=None, description="s3://bucket/prefix where built TensorRT engines are shared between workers.")
    precision: Literal["auto", "fp32", "fp16", "bf16", "int8"] = Field(
        default="auto", description="Engine precision: auto picks bf16 on CPUs with AMX-BF16/AVX512-BF16, fp16 "
        "on CUDA, fp32 elsewhere (`engines/precision.py`); int8 only when asked, for specs that allow it.")
    backend_probe: bool = Field(
        default=True, description="On CPUs, `auto` times the backends that can run the engine's precision once per "
        "engine and machine and keeps the fastest (`engines/backend_probe.py`); false: the fixed order.")
    eval_data: Path | None = Field(
        default=None, description="Folder of the training and evaluation sets for `retouch train` / `eval`.")

    @field_validator("cache_dir", "eval_data", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        return None if value in ("", None) else value

    @property
    def cache_root(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else Path.home() / ".cache" / "retouch"


@cache
def engine_settings() -> EngineSettings:
    """Read once per process."""
    return EngineSettings()
