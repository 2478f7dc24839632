"""Find, verify and load weights: built-in safetensors (never unpickled) and operator-supplied files.

- Built-in engines: `engines/weights/<id>.safetensors`, whose metadata names the architecture (`arch`) and
  its constructor arguments (`arch_params`, JSON). The file must hash to the spec's sha256.
- Our own format by path (weights an operator trained with `retouch train`): the metadata's `arch` names
  the family (`engines.families`), whose `spec_for_weights` gives task, scale, size rules and tiling.
- Anything else, `.pth` / `.safetensors` (local path or `s3://bucket/key`): verified against a given
  sha256, then loaded through spandrel, which detects the architecture from the state dict and unpickles
  `.pth` with an allow-list unpickler. A ModelSpec is derived from spandrel's descriptor.

`read_safetensors` and `build_network` are the one reader and the one builder of our format (training
and evaluation use them too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from engines.errors import WeightsError
from engines.loaded import CallAdapter, LoadedModel
from engines.spec import ModelSpec, Task, WeightsRef
from engines.tiling import default_feather

__all__ = [
    "WEIGHTS_DIR",
    "default_cache_dir",
    "load_builtin",
    "load_external",
    "build_network",
    "load_network",
    "read_safetensors",
    "resolve_weights",
    "s3_client",
    "sha256_file",
    "spec_from_descriptor",
    "verify_sha256",
]

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def default_cache_dir() -> Path:
    """`RETOUCH_CACHE_DIR`, else `~/.cache/retouch` (ONNX exports, TensorRT engines, downloaded weights)."""
    from engines.settings import engine_settings

    return engine_settings().cache_root


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (weights can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> str:
    """Return the file's sha256; raise WeightsError if `expected` is given and differs."""
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"cannot read weights {path}: {exc}") from exc
    if expected is not None and actual != expected.lower():
        raise WeightsError(f"sha256 mismatch for {path}: expected {expected.lower()}, got {actual}")
    return actual


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client for `endpoint_url` (MinIO, Ceph, moto; the worker passes RETOUCH_S3_ENDPOINT_URL);
    without one, boto3's own configuration decides (AWS, or AWS_ENDPOINT_URL)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _download_s3(uri: str, expected_sha256: str | None, cache_dir: Path, endpoint_url: str | None) -> Path:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise WeightsError(f"malformed S3 URI {uri!r}; expected s3://bucket/key")
    folder = Path(cache_dir) / "weights" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = folder / Path(key).name
    # A cached copy is reused only when its hash is pinned and matches: an unpinned URI may change upstream.
    if expected_sha256 and target.exists() and sha256_file(target) == expected_sha256.lower():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    os.close(fd)
    try:
        s3_client(endpoint_url).download_file(bucket, key, tmp)
        verify_sha256(Path(tmp), expected_sha256)
        os.replace(tmp, target)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore raises many types; all mean "could not fetch"
        raise WeightsError(f"cannot download {uri}: {type(exc).__name__}: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def resolve_weights(ref: WeightsRef, cache_dir: Path | None = None, s3_endpoint_url: str | None = None) -> Path:
    """Local path of the weights `ref` names (downloading from S3 into cache_dir/weights), sha256-verified."""
    if ref.is_s3:
        return _download_s3(ref.file, ref.sha256, cache_dir or default_cache_dir(), s3_endpoint_url)
    path = Path(ref.file)
    if not path.is_absolute():
        path = WEIGHTS_DIR / ref.file
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    verify_sha256(path, ref.sha256)
    return path


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors (float32) and its string metadata; WeightsError when unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            state = {k: fh.get_tensor(k).float() for k in fh.keys()}  # noqa: SIM118 - not a mapping
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"unreadable safetensors {path}: {exc}") from exc
    return state, meta


def arch_params(meta: dict[str, str], where: str) -> dict[str, Any]:
    try:
        return json.loads(meta.get("arch_params", "{}"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{where}: arch_params metadata is not JSON") from exc


def build_network(arch: str, params: dict[str, Any], state: dict[str, torch.Tensor], where: str) -> torch.nn.Module:
    """One of our families' networks from its metadata and tensors (eval mode, CPU, float32)."""
    from engines.families import family_for_architecture

    try:
        net = family_for_architecture(arch).network()(**params)
    except WeightsError as exc:
        raise WeightsError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise WeightsError(f"{where}: {arch} takes no parameters {params}: {exc}") from exc
    try:
        net.load_state_dict(state, strict=True)
    except (TypeError, RuntimeError) as exc:  # bad params / missing or misshapen tensors
        raise WeightsError(f"{where}: weights do not fit {arch}({params}): {str(exc).splitlines()[0]}") from exc
    return net.eval()


def load_builtin(spec: ModelSpec, cache_dir: Path | None = None) -> LoadedModel:
    """Load one of the project's own engines. Raises WeightsError when the file is missing, unpinned,
    fails its sha256, or its metadata disagrees with the spec's architecture."""
    if spec.weights.sha256 is None:
        raise WeightsError(f"{spec.id}: weights not shipped yet (no sha256 pinned in its spec)")
    path = resolve_weights(spec.weights, cache_dir)
    state, meta = read_safetensors(path)
    arch = meta.get("arch", spec.architecture)
    params = arch_params(meta, str(path)) if "arch_params" in meta else dict(spec.arch_params)
    if arch != spec.architecture or params != dict(spec.arch_params):
        raise WeightsError(
            f"{path}: metadata says {arch}({params}) but spec {spec.id} expects "
            f"{spec.architecture}({dict(spec.arch_params)})"
        )
    net = build_network(arch, params, state, str(path))
    return LoadedModel(spec=spec, module=CallAdapter(net), weights_sha256=spec.weights.sha256)


def load_network(path: Path) -> tuple[torch.nn.Module, dict[str, str]]:
    """The network a file of our format holds, and its metadata (training, evaluation, cards)."""
    state, meta = read_safetensors(path)
    if "arch" not in meta:
        raise WeightsError(f"{path}: no 'arch' in its metadata; not a retouch weights file")
    return build_network(meta["arch"], arch_params(meta, str(path)), state, str(path)), meta


# Tile budget and overlap (input pixels) per spandrel architecture id. Convnets get big tiles; attention
# models get smaller ones (memory grows faster than area). Overlap is a practical margin, not always the
# full receptive field: RRDBNet's is hundreds of pixels and measurably wide (replacing everything >= 40 px
# from a pixel moves it by 2.7/255 on noise input, 1.5/255 at 48 px), so its seams are hidden by the
# feather rather than exact; Real-ESRGAN's own tiler uses 10.
_TILE_HINTS: dict[str, tuple[int, int]] = {
    "ESRGAN": (512, 32),
    "Compact": (512, 0),  # computed from the depth below
    "SPAN": (512, 16),
    "DRUNet": (512, 64),
    "DnCNN": (512, 24),
    "SwinIR": (256, 32),
    "HAT": (256, 32),
    "SCUNet": (256, 64),
    "NAFNet": (512, 64),
    "LaMa": (1024, 128),
}
_DEFAULT_TILE_HINT = (256, 32)
_INPAINT_WORK_SIDE = 512


def spec_from_descriptor(descriptor: Any, model_id: str, weights: WeightsRef) -> ModelSpec:
    """Derive a ModelSpec from a spandrel ModelDescriptor (purpose, scale, channels, size rules, tiling)."""
    from spandrel import ModelTiling

    purpose = descriptor.purpose
    scale = int(descriptor.scale)
    if purpose == "Inpainting":
        task = Task.INPAINT
    elif purpose in ("SR", "FaceSR", "Restoration"):
        task = Task.SUPER_RESOLUTION if scale > 1 else Task.DENOISE
    else:
        raise WeightsError(f"{model_id}: unsupported spandrel purpose {purpose!r}")
    req = descriptor.size_requirements
    multiple = max(1, int(req.multiple_of))
    arch_id = str(descriptor.architecture.id)
    tile, overlap = _TILE_HINTS.get(arch_id, _DEFAULT_TILE_HINT)
    if arch_id == "Compact":
        overlap = int(getattr(descriptor.model, "num_conv", 16)) + 2
    if descriptor.tiling is ModelTiling.INTERNAL:
        tile, overlap = 4096, 0  # the model tiles itself; outer tiling would only add seams
    elif descriptor.tiling is ModelTiling.DISCOURAGED:
        tile = max(tile, 1024)  # global context models: as few tiles as memory allows
    overlap = -(-overlap // multiple) * multiple
    min_tile = 2 * overlap + default_feather(overlap) + 16
    tile = max(tile, -(-min_tile // multiple) * multiple, req.minimum)
    tile = -(-tile // multiple) * multiple
    precisions = ("fp32",) + (("fp16",) if descriptor.supports_half else ()) + (
        ("bf16",) if descriptor.supports_bfloat16 else ())
    return ModelSpec(
        id=model_id,
        task=task,
        scale=scale,
        in_channels=int(descriptor.input_channels),
        out_channels=int(descriptor.output_channels),
        size_multiple=multiple,
        min_size=max(1, int(req.minimum)),
        precisions=precisions,
        tile_size=tile,
        tile_overlap=overlap,
        weights=weights,
        architecture=arch_id,
        arch_params={"tags": list(descriptor.tags)},
        description=f"operator-supplied {arch_id} ({', '.join(descriptor.tags) or 'no tags'}) via spandrel",
        license="unknown (operator-supplied)",
        square=bool(req.square),
        # Inpainters trained on 256-512 px crops (LaMa, MI-GAN) fill best there, the whole hole in view.
        work_side=_INPAINT_WORK_SIDE if task is Task.INPAINT else None,
    )


def load_external(source: str, sha256: str | None = None, cache_dir: Path | None = None,
                  model_id: str | None = None, s3_endpoint_url: str | None = None) -> LoadedModel:
    """Load operator-supplied weights from a local path or `s3://bucket/key`.

    A `.safetensors` whose metadata names one of our own architectures is built directly; anything else
    goes through spandrel's architecture detection. Raises WeightsError on a sha256 mismatch, an unreadable
    file, or an architecture spandrel does not know.
    """
    import spandrel

    local = source if source.startswith("s3://") else str(Path(source).expanduser().resolve())
    path = resolve_weights(WeightsRef(file=local, sha256=sha256), cache_dir, s3_endpoint_url)
    actual_sha = sha256_file(path)
    model_id = model_id or f"external:{Path(source).stem}"
    ref = WeightsRef(file=source, sha256=sha256 or actual_sha)
    if path.suffix.lower() == ".safetensors":
        state, meta = read_safetensors(path)
        if "arch" in meta:
            return _load_own_format(model_id, ref, path, state, meta, actual_sha)
    if path.suffix.lower() not in (".pth", ".pt", ".ckpt", ".safetensors"):
        raise WeightsError(f"{source}: unsupported weights extension {path.suffix!r}")
    try:
        descriptor = spandrel.ModelLoader(device="cpu").load_from_file(path)
    except spandrel.UnsupportedModelError as exc:
        raise WeightsError(f"{source}: spandrel does not recognise this architecture") from exc
    except Exception as exc:  # noqa: BLE001 - corrupt zip, refused pickle global, bad tensors...
        raise WeightsError(f"{source}: cannot load weights: {type(exc).__name__}: {exc}") from exc
    spec = spec_from_descriptor(descriptor, model_id, ref)
    if spec.in_channels != 3 or spec.out_channels != 3:
        raise WeightsError(f"{source}: only RGB models are supported, this one maps "
                           f"{spec.in_channels} -> {spec.out_channels} channels")
    net = descriptor.model.float().eval()
    # spandrel wraps some architectures' forward (extra noise-level input, tuple outputs); its call
    # function is the only place that knowledge lives, so we reuse it rather than copy it.
    call = getattr(descriptor, "_call_fn", None)
    return LoadedModel(spec=spec, module=CallAdapter(net, call), weights_sha256=actual_sha)


def _load_own_format(model_id: str, ref: WeightsRef, path: Path, state: dict[str, torch.Tensor],
                     meta: dict[str, str], sha: str) -> LoadedModel:
    """Our format by path: the family named by the metadata says what the network is and how it runs."""
    from engines.families import family_for_architecture

    params = arch_params(meta, str(path))
    net = build_network(meta["arch"], params, state, str(path))
    spec = family_for_architecture(meta["arch"]).spec_for_weights(model_id, ref, params)
    return LoadedModel(spec=spec, module=CallAdapter(net), weights_sha256=sha)
