"""Open an engine by id, path or S3 URI, and run images through it: the one call contract of `engines`.

    with open_engine("retouch-sr-x4-real") as engine:
        out = engine.process(image)            # HxWx3|4 float32 [0, 1] -> (4H)x(4W)x3|4 float32 [0, 1]
    with open_engine("retouch-inpaint") as engine:
        out = engine.fill(image, mask)         # masked engines: holes (mask 1) filled, the rest kept
    with open_engine("retouch-matte") as engine:
        out = engine.process(image)            # matting engines: HxWx3|4 -> HxWx4, the product's matte as alpha

Shared code here and in `engines.tiling` pads, tiles, blends, clamps and crops; backends only run batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from engines.backends.base import Backend
from engines.errors import BackendUnavailable, DeviceOutOfMemory, InvalidInput, UnknownEngine, WeightsError
from engines.loaded import LoadedModel
from engines.matting import Matte
from engines.precision import choose_precision
from engines.registry import Registry, builtin_registry
from engines.spec import ModelSpec, Task
from engines.tiling import TilePlan, blend_tiles, extract_tiles, min_tile_size, pad_image, plan_tiles
from engines.tone import ToneTransform
from engines.weights_io import default_cache_dir, load_builtin, load_external

__all__ = ["BACKENDS", "Engine", "Progress", "open_engine"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(done_tiles, total_tiles), called after each batch of tiles."""

BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _make_backend(name: str, model: LoadedModel, device: str, precision: str, cache_dir: Path,
                  max_batch: int, s3_endpoint_url: str | None = None) -> Backend:
    if name == "torch":
        from engines.backends.torch_backend import TorchBackend

        return TorchBackend(model, device, precision)
    if name == "onnxruntime":
        from engines.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model, device, cache_dir, "int8" if precision == "int8" else "fp32")
    if name == "openvino":
        from engines.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(model, device, cache_dir, precision)
    if name == "tensorrt":
        from engines.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model, device, cache_dir, precision, max_batch=max_batch,
                               s3_endpoint_url=s3_endpoint_url)
    raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _candidates(backend: str, device: str, precision: str) -> list[str]:
    if backend != "auto":
        return [backend]
    if device.startswith("cuda"):
        from engines.backends.tensorrt_backend import tensorrt_available

        return (["tensorrt"] if tensorrt_available() else []) + ["torch"]
    if precision == "int8":
        return ["onnxruntime"]  # the quantised graphs are ONNX Runtime's
    if precision == "bf16":
        # ONNX Runtime's CPU provider has no bf16 convolutions; torch's oneDNN runs them on AMX.
        return ["torch", "onnxruntime"]
    # ONNX Runtime first on CPU in fp32 (see `retouch bench` for the measured ratio); torch if the export fails.
    return ["onnxruntime", "torch"]


def _probe_enabled() -> bool:
    from engines.settings import engine_settings

    return engine_settings().backend_probe


class Engine:
    """A loaded model on one backend. Re-entrant: nothing about an image is stored on `self`.

    Attributes: spec (ModelSpec), backend_name ("torch" | "onnxruntime" | "tensorrt"), device ("cpu" |
    "cuda[:n]"), precision ("fp32" | "fp16" | "bf16"), max_batch (tiles per backend call).
    """

    def __init__(self, model: LoadedModel, *, backend: str = "auto", device: str | None = None,
                 precision: str | None = None, cache_dir: Path | None = None, max_batch: int = 4,
                 warm_up: bool = True, s3_endpoint_url: str | None = None) -> None:
        if backend not in BACKENDS:
            raise BackendUnavailable(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.model = model
        self.spec: ModelSpec = model.spec
        self.device = device or ("cuda" if _cuda_available() else "cpu")
        on_cuda = self.device.startswith("cuda")
        if precision is None:
            from engines.settings import engine_settings

            precision = engine_settings().precision
        self.precision, why = choose_precision(precision, self.device, tuple(self.spec.precisions))
        log.info("engine %s: precision %s (%s)", self.spec.id, self.precision, why)
        self.max_batch = max(1, max_batch)
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        failures: list[str] = []
        self._backend: Backend | None = None
        candidates = _candidates(backend, self.device, self.precision)
        if backend == "auto" and not on_cuda and self.precision != "int8" and _probe_enabled():
            from engines.backend_probe import fastest_cpu_backends

            candidates, why = fastest_cpu_backends(model, self.precision, cache_dir, lambda name: _make_backend(
                name, model, self.device, self.precision, cache_dir, self.max_batch, s3_endpoint_url))
            log.info("engine %s: CPU backends in order %s (%s)", self.spec.id, ", ".join(candidates), why)
        for name in candidates:
            try:
                candidate = _make_backend(name, model, self.device, self.precision, cache_dir, self.max_batch,
                                          s3_endpoint_url)
                candidate.load()
            except BackendUnavailable as exc:
                failures.append(f"{name}: {exc}")
                log.warning("engine %s: backend %s unavailable (%s)", self.spec.id, name, exc)
                continue
            self._backend = candidate
            break
        if self._backend is None:
            raise BackendUnavailable(f"no backend can run {self.spec.id} on {self.device}: " + "; ".join(failures))
        self.backend_name: str = self._backend.name
        # What really runs: a backend may refuse a precision (ONNX Runtime here is fp32 only, TensorRT falls
        # back to fp32 for specs without fp16), so the engine reports the backend's, not the request.
        self.precision = self._backend.precision
        self.cache_lookups: dict[str, str] = dict(self._backend.cache_lookups)
        if warm_up:
            # Small on CPU (start-up cost matters, kernels there need no tuning); the full tile on GPUs.
            side = self.spec.tile_size if on_cuda else min(self.spec.tile_size, 64)
            side = max(side // self.spec.size_multiple * self.spec.size_multiple, self.spec.min_size)
            self._backend.warm_up(side, side)

    # -- batching hook --------------------------------------------------------------------------------

    def run_batch(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """Run tiles (N, in_channels, h, w) float32 in [0, 1] -> (N, out_channels, h*scale, w*scale) in [0, 1].

        Tiles may come from one image or several; h and w must already satisfy the spec (multiple of
        size_multiple, >= min_size, <= tile_size). Calls the backend in chunks of `max_batch`.
        masks: (N, 1, h, w) in {0, 1} (1 = fill), required for inpainting engines only.
        """
        backend = self._require_open()
        spec = self.spec
        if tiles.ndim != 4 or tiles.shape[1] != spec.in_channels:
            raise InvalidInput(f"tiles must be (N, {spec.in_channels}, h, w), got {tiles.shape}")
        n, _, h, w = tiles.shape
        if h % spec.size_multiple or w % spec.size_multiple or min(h, w) < spec.min_size:
            raise InvalidInput(f"tile {h}x{w} breaks {spec.id}'s size rules (multiple {spec.size_multiple}, "
                               f"min {spec.min_size})")
        if max(h, w) > spec.tile_size:
            raise InvalidInput(f"tile {h}x{w} exceeds {spec.id}'s tile budget {spec.tile_size}")
        if (spec.task is Task.INPAINT) != (masks is not None):
            raise InvalidInput("masks are required for inpainting engines and only for them")
        outputs = []
        for start in range(0, n, self.max_batch):
            chunk = np.ascontiguousarray(tiles[start : start + self.max_batch], dtype=np.float32)
            mchunk = None if masks is None else np.ascontiguousarray(masks[start : start + self.max_batch], np.float32)
            outputs.append(np.clip(backend.run(chunk, mchunk), 0.0, 1.0))
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]

    # -- images ---------------------------------------------------------------------------------------

    def _plan(self, height: int, width: int, tile_size: int) -> TilePlan:
        spec = self.spec
        return plan_tiles(height, width, tile_size=tile_size, margin=spec.tile_overlap, scale=spec.scale,
                          multiple=spec.size_multiple, min_size=spec.min_size, square=spec.square)

    def _tile_floor(self) -> int:
        spec = self.spec
        return min(spec.tile_size, min_tile_size(spec.tile_overlap, spec.size_multiple, min_size=spec.min_size))

    def _check_image(self, image: np.ndarray, mask: np.ndarray | None,
                     clip: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise InvalidInput(f"image must be an HxWx3 or HxWx4 array, got {getattr(image, 'shape', type(image))}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise InvalidInput(f"empty image {image.shape}")
        if not np.issubdtype(image.dtype, np.floating):
            raise InvalidInput(f"image must be float in [0, 1], got {image.dtype}")
        image = image.astype(np.float32, copy=False)
        if not np.isfinite(image).all():
            raise InvalidInput("image contains NaN or infinity")
        if self.spec.task is Task.INPAINT:
            if mask is None or mask.shape[:2] != image.shape[:2]:
                raise InvalidInput(f"inpainting needs an HxW mask matching the image {image.shape[:2]}")
            mask = (np.asarray(mask).reshape(image.shape[:2]) > 0.5).astype(np.float32)
        elif mask is not None:
            raise InvalidInput(f"{self.spec.id} is a {self.spec.task} engine and takes no mask")
        return (np.clip(image, 0.0, 1.0) if clip else image), mask

    def _resize_alpha(self, alpha: np.ndarray) -> np.ndarray:
        if self.spec.scale == 1:
            return alpha  # denoise/inpaint: alpha is not the network's business
        import torch
        import torch.nn.functional as F

        # Bicubic: smooth edges without the ringing-free but blocky look of nearest; clamped after.
        t = torch.from_numpy(np.ascontiguousarray(alpha))[None, None]
        up = F.interpolate(t, scale_factor=self.spec.scale, mode="bicubic", align_corners=False)
        return up[0, 0].clamp_(0.0, 1.0).numpy()

    def _tiles_for(
        self, rgb: np.ndarray, mask: np.ndarray | None, plan: TilePlan
    ) -> tuple[np.ndarray, np.ndarray | None]:
        tiles = extract_tiles(pad_image(rgb, plan), plan)
        mtiles = None if mask is None else extract_tiles(pad_image(mask[..., None], plan), plan)
        return tiles, mtiles

    def _finish(self, image: np.ndarray, mask: np.ndarray | None, result: np.ndarray) -> np.ndarray:
        if mask is not None:
            # Inpainting keeps every pixel outside the mask exactly as it was.
            m = mask[..., None]
            result = m * result + (1.0 - m) * image[..., :3]
        if image.shape[2] == 4:
            result = np.concatenate([result, self._resize_alpha(image[..., 3])[..., None]], axis=2)
        return result.astype(np.float32, copy=False)

    def process(self, image: np.ndarray, progress: Progress | None = None, *,
                mask: np.ndarray | None = None) -> np.ndarray:
        """Enhance one image.

        image: HxWx3 (RGB) or HxWx4 (RGBA) float in [0, 1]; any size (tiled within the engine's budget).
        mask: HxW, 1 = inpaint, for inpainting engines only.
        progress: called as progress(done_tiles, total_tiles) after each backend batch.
        Returns (H*scale)x(W*scale)xC float32 in [0, 1]. Alpha never goes through the network: bicubic-
        resized for super-resolution, passed through otherwise. On device out-of-memory the image is
        retried with halved tiles down to a floor, then DeviceOutOfMemory (retryable) is raised.
        """
        # A tone engine reads the photo only through `to_uint8`, which clips: no clipped copy needed.
        image, mask = self._check_image(image, mask, clip=self.spec.task is not Task.TONE)
        if self.spec.task is Task.TONE:
            from engines.tone import to_uint8

            quantised = to_uint8(image)  # read twice (thumbnail, lookup), converted once
            result = self.tone(quantised).apply(image, quantised)
            if progress is not None:
                progress(1, 1)
            return self._finish(image, None, result)
        if self.spec.task is Task.MATTING:
            alpha = self._matte_checked(image).full(image)
            if image.shape[2] == 4:
                alpha = alpha * image[..., 3]  # a cut-out stays at most as opaque as it was
            if progress is not None:
                progress(1, 1)
            return np.concatenate([image[..., :3], alpha[..., None]], axis=2).astype(np.float32, copy=False)
        rgb = np.ascontiguousarray(image[..., :3])
        tile_size = self.spec.tile_size
        floor = self._tile_floor()
        while True:
            plan = self._plan(rgb.shape[0], rgb.shape[1], tile_size)
            try:
                tiles, mtiles = self._tiles_for(rgb, mask, plan)
                outputs = self._run_with_progress(tiles, mtiles, progress, 0, len(plan))
                break
            except DeviceOutOfMemory:
                if tile_size <= floor:
                    raise
                smaller = max(floor, tile_size // 2 // self.spec.size_multiple * self.spec.size_multiple)
                log.warning("engine %s: out of memory at tile %d, retrying at %d", self.spec.id, tile_size, smaller)
                tile_size = smaller
        return self._finish(image, mask, blend_tiles(outputs, plan))

    def tone(self, image: np.ndarray) -> ToneTransform:
        """Tone engines: predict this photo's transform from a thumbnail of the whole of it (no tiles), to
        apply at any resolution or to preview first on that thumbnail; `process` applies it."""
        from engines import tone

        if self.spec.task is not Task.TONE:
            raise InvalidInput(f"{self.spec.id} is a {self.spec.task} engine, not a tone engine")
        if image.dtype != np.uint8:  # a `to_uint8` photo is already checked and in range
            image, _ = self._check_image(image, None)
        # The backend directly, not run_batch: the parameters are not pixels and must not be clamped.
        seen = tone.thumbnail(image[..., :3], self.spec.tile_size)
        return tone.ToneTransform.from_params(self._require_open().run(seen), seen)

    def matte(self, image: np.ndarray) -> Matte:
        """Matting engines: the product's matte, predicted from the whole photo shrunk to the working side
        (`spec.tile_size`, no tiles); `.full(image)` brings it to the photo's resolution, `.report()` says
        what it found. `process` returns the photo with that matte as its alpha."""
        if self.spec.task is not Task.MATTING:
            raise InvalidInput(f"{self.spec.id} is a {self.spec.task} engine, not a matting engine")
        image, _ = self._check_image(image, None)
        return self._matte_checked(image)

    def _matte_checked(self, image: np.ndarray) -> Matte:
        """`matte` of a photo `_check_image` already passed (`process` checks it once, not twice)."""
        from engines import matting

        batch, inside = matting.work_input(image, self.spec.tile_size, self.spec.size_multiple)
        # The backend directly, not run_batch: logits are not pixels and must not be clamped.
        return Matte.from_logits(self._require_open().run(batch), inside)

    def fill(self, image: np.ndarray, mask: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Masked engines: fill the holes (`mask` HxW, 1 = generate) of an HxWx3|4 image; same shape out.

        The engine owns its working resolution: with `spec.work_side` the canvas is shrunk to it (the whole
        hole in view), filled, and the fill composited into the full-resolution image (`engines.masked_fill`;
        thin side bands on strips where `spec.strips`, holes on windows around them where `spec.crop_side`);
        without, it is filled at full resolution, tiled.
        Pixels outside the mask keep their values; alpha passes through untouched (a generated band of a
        cut-out stays transparent).
        """
        if self.spec.task is not Task.INPAINT:
            raise InvalidInput(f"{self.spec.id} is a {self.spec.task} engine: call process(), not fill()")
        image, mask = self._check_image(image, mask)
        if self.spec.work_side is None:
            return self.process(image, progress, mask=mask)
        from engines.masked_fill import fill

        rgb = fill(lambda canvas, hole: self.process(canvas, progress, mask=hole), image[..., :3], mask,
                   work_side=self.spec.work_side, strips=self.spec.strips, crop_side=self.spec.crop_side)
        return rgb if image.shape[2] == 3 else np.concatenate([rgb, image[..., 3:]], axis=2)

    def _run_with_progress(self, tiles: np.ndarray, masks: np.ndarray | None, progress: Progress | None,
                           done: int, total: int) -> np.ndarray:
        outputs = []
        for start in range(0, len(tiles), self.max_batch):
            stop = start + self.max_batch
            outputs.append(self.run_batch(tiles[start:stop], None if masks is None else masks[start:stop]))
            if progress is not None:
                progress(done + min(stop, len(tiles)), total)
        return np.concatenate(outputs)

    def process_many(self, images: Sequence[np.ndarray], progress: Progress | None = None, *,
                     masks: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Enhance several images, batching same-shaped tiles across images into shared backend calls.

        Same per-image contract as `process`; results are in input order. On out-of-memory it falls back
        to `process` one image at a time, which shrinks tiles.
        """
        masks = list(masks) if masks is not None else [None] * len(images)
        if len(masks) != len(images):
            raise InvalidInput("masks must match images one to one")
        checked = [self._check_image(img, m) for img, m in zip(images, masks, strict=True)]
        plans = [self._plan(img.shape[0], img.shape[1], self.spec.tile_size) for img, _ in checked]
        total = sum(len(p) for p in plans)
        per_image = [self._tiles_for(np.ascontiguousarray(img[..., :3]), m, p)
                     for (img, m), p in zip(checked, plans, strict=True)]
        # Group tile indices by tile shape: only same-shaped tiles can share a batch.
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i, plan in enumerate(plans):
            groups.setdefault((plan.tile_h, plan.tile_w), []).extend((i, j) for j in range(len(plan)))
        results: list[list[np.ndarray | None]] = [[None] * len(p) for p in plans]
        done = 0
        try:
            for members in groups.values():
                tiles = np.stack([per_image[i][0][j] for i, j in members])
                mtiles = None
                if self.spec.task is Task.INPAINT:
                    mtiles = np.stack([per_image[i][1][j] for i, j in members])  # type: ignore[index]
                out = self._run_with_progress(tiles, mtiles, progress, done, total)
                done += len(members)
                for (i, j), o in zip(members, out, strict=True):
                    results[i][j] = o
        except DeviceOutOfMemory:
            log.warning("engine %s: out of memory batching %d images; processing one by one", self.spec.id, len(images))
            return [self.process(img, progress, mask=m) for img, m in checked]
        return [self._finish(img, m, blend_tiles(np.stack(res), plan))  # type: ignore[arg-type]
                for (img, m), res, plan in zip(checked, results, plans, strict=True)]

    # -- lifecycle ------------------------------------------------------------------------------------

    def _require_open(self) -> Backend:
        if self._backend is None:
            raise RuntimeError(f"engine {self.spec.id} is closed")
        return self._backend

    def close(self) -> None:
        """Release the backend (device memory, sessions). Idempotent."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.spec.id!r}, backend={self.backend_name!r}, device={self.device!r}, {self.precision})"


def _looks_like_weights(model: str) -> bool:
    return model.startswith("s3://") or model.lower().endswith(_WEIGHT_SUFFIXES) or Path(model).is_file()


def load_model(model: str, *, registry: Registry | None = None, sha256: str | None = None,
               cache_dir: Path | None = None, s3_endpoint_url: str | None = None) -> LoadedModel:
    """Resolve `model` (registry id, local path, or s3://bucket/key) to a LoadedModel; see `open_engine`."""
    registry = registry if registry is not None else builtin_registry()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if model in registry:
        spec = registry.get(model)
        if sha256 is not None and spec.weights.sha256 is not None and sha256.lower() != spec.weights.sha256:
            raise WeightsError(f"{model}: requested sha256 {sha256} but the registry pins {spec.weights.sha256}")
        from engines.families import FAMILIES

        if any(family.architecture == spec.architecture for family in FAMILIES):
            return load_builtin(spec, cache_dir)
        # A registered community model: spandrel builds it, the registry's spec (tiles, ids) wins.
        loaded = load_external(spec.weights.file, spec.weights.sha256, cache_dir, model_id=spec.id,
                               s3_endpoint_url=s3_endpoint_url)
        return LoadedModel(spec=spec, module=loaded.module, weights_sha256=loaded.weights_sha256)
    if _looks_like_weights(model):
        return load_external(model, sha256, cache_dir, s3_endpoint_url=s3_endpoint_url)
    raise UnknownEngine(f"{model!r} is neither a registered engine id nor a weights path/S3 URI")


def open_engine(model: str, *, backend: str = "auto", device: str | None = None, registry: Registry | None = None,
                sha256: str | None = None, cache_dir: Path | None = None, precision: str | None = None,
                max_batch: int = 4, s3_endpoint_url: str | None = None) -> Engine:
    """Open an engine.

    model: a registry id (e.g. "retouch-sr-x4-real"), a local `.pth`/`.safetensors` path, or an
        `s3://bucket/key` URI, fetched from `s3_endpoint_url` (else boto3's own configuration).
    backend: "auto" (TensorRT if importable and CUDA present > torch CUDA > ONNX Runtime CPU), "torch",
        "onnxruntime" or "tensorrt". `Engine.backend_name` says which one runs.
    device: "cpu", "cuda" or "cuda:N"; default CUDA when available.
    sha256: expected hash of operator-supplied weights (WeightsError on mismatch).
    cache_dir: ONNX exports, TensorRT engines and downloads; default $RETOUCH_CACHE_DIR or ~/.cache/retouch.
    Raises UnknownEngine, WeightsError, BackendUnavailable (all permanent).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    loaded = load_model(model, registry=registry, sha256=sha256, cache_dir=cache_dir, s3_endpoint_url=s3_endpoint_url)
    return Engine(loaded, backend=backend, device=device, precision=precision, cache_dir=cache_dir,
                  max_batch=max_batch, s3_endpoint_url=s3_endpoint_url)
