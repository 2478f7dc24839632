"""TensorRT backend: ONNX -> serialized engine (optimisation profile, FP16, timing cache), cached, run.

`tensorrt` is imported only inside this backend's methods: the package cannot be installed on machines
without an NVIDIA driver, and nothing else in `engines` may depend on it. The pure parts (profile shapes,
cache keys, S3 cache location) are plain functions so they can be tested anywhere; the build/run path is
exercised only by the `gpu`-marked test. See TENSORRT.md in this folder for what is unverified.

Device memory is held as torch CUDA tensors (torch is always present), so no cuda-python is needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.backends.base import Backend
from engines.backends.onnx_export import INPUT_NAME, MASK_NAME, OUTPUT_NAME, export_key, export_onnx
from engines.errors import BackendUnavailable, DeviceOutOfMemory
from engines.loaded import LoadedModel
from engines.settings import engine_settings
from engines.spec import ModelSpec
from engines.tiling import DEFAULT_BORDER

__all__ = [
    "OptimizationProfile",
    "TensorRTBackend",
    "engine_cache_key",
    "engine_file_name",
    "profile_for",
    "tensorrt_available",
]

log = logging.getLogger(__name__)

# Where serialized engines are shared between machines, e.g. s3://models-cache/retouch/trt (optional).
_WORKSPACE_BYTES = 4 << 30


@dataclass(frozen=True)
class OptimizationProfile:
    """min/opt/max NCHW shapes for the "input" tensor (and "mask", with 1 channel, when inpainting).

    Every tile the shared tiler can produce must fall inside [min, max]: H and W from the smallest padded
    image (1 pixel + 2 * border, rounded up to size_multiple) up to tile_size; batch from 1 to max_batch.
    opt is the shape big images mostly use.
    """

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def describe(self) -> str:
        return "x".join(map(str, self.min)) + "_" + "x".join(map(str, self.opt)) + "_" + "x".join(map(str, self.max))

    def for_channels(self, channels: int) -> OptimizationProfile:
        """The same profile for a tensor with a different channel count (the inpainting mask)."""
        return OptimizationProfile(*((s[0], channels, s[2], s[3]) for s in (self.min, self.opt, self.max)))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def profile_for(spec: ModelSpec, max_batch: int = 4, opt_batch: int | None = None) -> OptimizationProfile:
    """The optimisation profile covering every tile shape `engines.tiling.plan_tiles` makes for `spec`."""
    m = spec.size_multiple
    border = min(spec.tile_overlap, DEFAULT_BORDER)
    # The smallest tile is a 1-pixel image plus its border: every balanced or OOM-halved tile is larger
    # (they keep 2 * margin + feather >= 2 * border + 1 of overlap).
    low = max(m, _round_up(max(1 + 2 * border, spec.min_size), m))
    top = spec.tile_size // m * m
    opt_batch = max_batch if opt_batch is None else opt_batch
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"opt_batch {opt_batch} outside [1, {max_batch}]")
    c = spec.in_channels
    return OptimizationProfile(min=(1, c, low, low), opt=(opt_batch, c, top, top), max=(max_batch, c, top, top))


def engine_cache_key(
    *, model_sha256: str, onnx_key: str, trt_version: str, compute_capability: tuple[int, int], precision: str,
    profile: OptimizationProfile,
) -> str:
    """Hex key of one serialized engine: any change in weights, export, TensorRT, GPU, precision or profile
    gives a different engine, so a cached file is only ever loaded where it was built for."""
    material = json.dumps(
        {"model": model_sha256, "onnx": onnx_key, "trt": trt_version, "sm": list(compute_capability),
         "precision": precision, "profile": profile.describe()},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def engine_file_name(spec_id: str, key: str, trt_version: str, compute_capability: tuple[int, int],
                     precision: str) -> str:
    """Human-readable and unique: the key decides, the rest helps an operator browsing the cache."""
    sm = f"sm{compute_capability[0]}{compute_capability[1]}"
    return f"{spec_id}-trt{trt_version}-{sm}-{precision}-{key[:16]}.engine"


def tensorrt_available() -> bool:
    """True when the tensorrt package imports and torch sees a CUDA device."""
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


class TensorRTBackend(Backend):
    """Runs a TensorRT engine built from the model's ONNX export. CUDA only."""

    name = "tensorrt"

    def __init__(self, model: LoadedModel, device: str, cache_dir: Path, precision: str = "fp16",
                 max_batch: int = 4, s3_endpoint_url: str | None = None) -> None:
        if precision not in model.spec.precisions:
            precision = "fp32"  # fp16 is the default ask; a spec that forbids it gets fp32, said in the key
        super().__init__(model, device, precision)
        if not device.startswith("cuda"):
            raise BackendUnavailable("tensorrt backend needs a CUDA device")
        if not tensorrt_available():
            raise BackendUnavailable("tensorrt backend: the tensorrt package or CUDA is not available here")
        self._cache_dir = Path(cache_dir)
        self._s3_endpoint_url = s3_endpoint_url  # the shared engine cache (RETOUCH_TRT_CACHE_S3) lives there
        self.profile = profile_for(model.spec, max_batch=max_batch)
        self._engine = None
        self._context = None

    # -- build and cache -------------------------------------------------------------------------------

    def _identity(self) -> tuple[str, str, tuple[int, int]]:
        import tensorrt as trt
        import torch

        cc = torch.cuda.get_device_capability(torch.device(self.device))
        key = engine_cache_key(
            model_sha256=self.model.weights_sha256, onnx_key=export_key(self.model), trt_version=trt.__version__,
            compute_capability=cc, precision=self.precision, profile=self.profile,
        )
        return key, trt.__version__, cc

    def _build(self, onnx_path: Path, timing_cache_path: Path) -> bytes:
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendUnavailable(f"TensorRT cannot parse {onnx_path.name}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, _WORKSPACE_BYTES)
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT_NAME, self.profile.min, self.profile.opt, self.profile.max)
        if self.model.takes_mask:
            p = self.profile.for_channels(1)
            profile.set_shape(MASK_NAME, p.min, p.opt, p.max)
        config.add_optimization_profile(profile)
        # The timing cache keeps kernel timings between builds (minutes saved per rebuild on the same GPU).
        timing_bytes = timing_cache_path.read_bytes() if timing_cache_path.exists() else b""
        timing_cache = config.create_timing_cache(timing_bytes)
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendUnavailable(f"TensorRT failed to build an engine for {self.model.spec.id}")
        _atomic_write(timing_cache_path, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def _engine_bytes(self) -> bytes:
        key, trt_version, cc = self._identity()
        name = engine_file_name(self.model.spec.id, key, trt_version, cc, self.precision)
        local = self._cache_dir / "tensorrt" / name
        if local.exists():
            self.cache_lookups["tensorrt"] = "hit"
            return local.read_bytes()
        s3_uri = engine_settings().trt_cache_s3
        if s3_uri and _s3_download(s3_uri, name, local, self._s3_endpoint_url):
            self.cache_lookups["tensorrt"] = "hit"
            return local.read_bytes()
        self.cache_lookups["tensorrt"] = "miss"
        onnx_path = export_onnx(self.model, self._cache_dir)
        timing = self._cache_dir / "tensorrt" / f"timing-trt{trt_version}-sm{cc[0]}{cc[1]}.cache"
        local.parent.mkdir(parents=True, exist_ok=True)
        data = self._build(onnx_path, timing)
        _atomic_write(local, data)
        if s3_uri:
            _s3_upload(s3_uri, name, local, self._s3_endpoint_url)
        return data

    # -- lifecycle -------------------------------------------------------------------------------------

    def load(self) -> None:
        import tensorrt as trt

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(self._engine_bytes())
        if self._engine is None:
            raise BackendUnavailable("TensorRT could not deserialize the cached engine")
        self._context = self._engine.create_execution_context()

    def run(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        import torch

        if self._context is None:
            raise RuntimeError("TensorRTBackend.run before load()")
        n, _, h, w = tiles.shape
        lo, hi = self.profile.min, self.profile.max
        if not (lo[0] <= n <= hi[0] and lo[2] <= h <= hi[2] and lo[3] <= w <= hi[3]):
            raise ValueError(f"tile batch {tiles.shape} outside the engine's profile {self.profile.describe()}")
        try:
            device = torch.device(self.device)
            # The engine's I/O stays fp32 (FP16 applies inside), so the contract does not change with precision.
            x = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)).to(device)
            self._context.set_input_shape(INPUT_NAME, tuple(x.shape))
            self._context.set_tensor_address(INPUT_NAME, x.data_ptr())
            if masks is not None:
                mk = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)).to(device)
                self._context.set_input_shape(MASK_NAME, tuple(mk.shape))
                self._context.set_tensor_address(MASK_NAME, mk.data_ptr())
            out = torch.empty(tuple(self._context.get_tensor_shape(OUTPUT_NAME)), dtype=torch.float32, device=device)
            self._context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
            stream = torch.cuda.current_stream(device)
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            stream.synchronize()
            return out.cpu().numpy()
        except torch.cuda.OutOfMemoryError as exc:
            raise DeviceOutOfMemory(f"tensorrt {self.device}: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self._context = None
        self._engine = None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _s3_download(uri: str, name: str, local: Path, endpoint_url: str | None) -> bool:
    from botocore.exceptions import ClientError

    from engines.weights_io import s3_client

    bucket, prefix = _split_s3(uri)
    key = f"{prefix}/{name}" if prefix else name
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_suffix(".download")
    try:
        s3_client(endpoint_url).download_file(bucket, key, str(tmp))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    os.replace(tmp, local)
    log.info("TensorRT engine %s fetched from %s", name, uri)
    return True


def _s3_upload(uri: str, name: str, local: Path, endpoint_url: str | None) -> None:
    from engines.weights_io import s3_client

    bucket, prefix = _split_s3(uri)
    s3_client(endpoint_url).upload_file(str(local), bucket, f"{prefix}/{name}" if prefix else name)
