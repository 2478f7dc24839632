"""Export a model to ONNX once, with dynamic batch/height/width, cached under cache_dir by weights sha256.

The same file feeds ONNX Runtime and the TensorRT builder. Graph I/O names are fixed here and relied on
by both: input "input" (N, C, H, W) [+ "mask" (N, 1, H, W) for inpainting], output "output".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from engines.errors import BackendUnavailable
from engines.loaded import LoadedModel

__all__ = ["EXPORT_VERSION", "INPUT_NAME", "MASK_NAME", "OPSET", "OUTPUT_NAME", "export_key", "export_onnx",
           "input_feeds"]

log = logging.getLogger(__name__)

INPUT_NAME = "input"
MASK_NAME = "mask"
OUTPUT_NAME = "output"


def input_feeds(tiles: np.ndarray, masks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The export's inputs by name, as contiguous float32: what every runtime that reads it is fed."""
    feeds = {INPUT_NAME: np.ascontiguousarray(tiles, dtype=np.float32)}
    if masks is not None:
        feeds[MASK_NAME] = np.ascontiguousarray(masks, dtype=np.float32)
    return feeds
OPSET = 18
# Bump when the export procedure changes in a way that changes the graph, so stale caches are not reused.
EXPORT_VERSION = 1
# An export is accepted only if it reproduces torch on shapes it was not traced with, within this bound.
_VERIFY_ATOL = 1e-3


def export_key(model: LoadedModel) -> str:
    """Cache key: weights hash + architecture + params + exporter settings + torch version (major.minor)."""
    spec = model.spec
    torch_mm = ".".join(torch.__version__.split(".")[:2])
    material = json.dumps(
        [model.weights_sha256, spec.architecture, dict(spec.arch_params), spec.task.value, spec.scale,
         spec.size_multiple, OPSET, EXPORT_VERSION, torch_mm],
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def _example_hw(model: LoadedModel) -> tuple[int, int]:
    spec = model.spec
    m = spec.size_multiple
    # At least two multiples: a network that downsamples by its multiple would see a 1-pixel side, which
    # the exporter specialises (sizes 0 and 1 are constants to it) and the dynamic shape is lost.
    base = max(spec.min_size, 32, 2 * m)
    h = -(-base // m) * m
    # Distinct H and W so the tracer cannot conflate them.
    return h, h + m


def _inputs(model: LoadedModel, n: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, model.spec.in_channels, h, w, generator=g)
    if model.takes_mask:
        mask = (torch.rand(n, 1, h, w, generator=g) > 0.7).float()
        return x, mask
    return (x,)


def _export_dynamo(model: LoadedModel, path: Path) -> None:
    m = model.spec.size_multiple
    batch = torch.export.Dim("batch", min=1, max=1024)
    if m > 1:
        # Derived dims state "H is a multiple of m", which networks with strided convs check in forward.
        height, width = m * torch.export.Dim("height_div", min=1), m * torch.export.Dim("width_div", min=1)
    else:
        height, width = torch.export.Dim("height", min=2), torch.export.Dim("width", min=2)
    h, w = _example_hw(model)
    args = _inputs(model, 2, h, w, seed=0)
    dyn = {0: batch, 2: height, 3: width}
    dynamic_shapes = {"image": dyn, "mask": dyn if model.takes_mask else None}
    names = [INPUT_NAME, MASK_NAME] if model.takes_mask else [INPUT_NAME]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is chatty about internals we do not control
        program = torch.onnx.export(
            model.module.eval(),
            args if model.takes_mask else (args[0],),
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes if model.takes_mask else {"image": dyn},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)


def _export_legacy(model: LoadedModel, path: Path) -> None:
    # The TorchScript exporter copes with some Python control flow the dynamo exporter rejects.
    h, w = _example_hw(model)
    args = _inputs(model, 1, h, w, seed=0)
    names = [INPUT_NAME, MASK_NAME] if model.takes_mask else [INPUT_NAME]
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in names}
    axes[OUTPUT_NAME] = {0: "batch", 2: "out_height", 3: "out_width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.module.eval(), args, str(path), input_names=names, output_names=[OUTPUT_NAME],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )


def verify_export(model: LoadedModel, path: Path) -> float:
    """Run the ONNX file and torch on two untraced shapes; return the max abs difference."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    m = model.spec.size_multiple
    h, w = _example_hw(model)
    worst = 0.0
    for n, hh, ww in ((1, h + 2 * m, w + m), (3, h + m, h + 3 * m)):
        args = _inputs(model, n, hh, ww, seed=1)
        with torch.inference_mode():
            ref = model.module(*args).float().numpy()
        feeds = {INPUT_NAME: args[0].numpy()}
        if model.takes_mask:
            feeds[MASK_NAME] = args[1].numpy()
        out = session.run([OUTPUT_NAME], feeds)[0]
        if out.shape != ref.shape:
            raise ValueError(f"ONNX output shape {out.shape} != torch {ref.shape}")
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def onnx_cache_path(model: LoadedModel, cache_dir: Path) -> Path:
    """Where the model's exported graph lives in the cache (it may not exist yet)."""
    return Path(cache_dir) / "onnx" / f"{model.spec.id.replace('/', '_')}-{export_key(model)}.onnx"


def export_onnx(model: LoadedModel, cache_dir: Path) -> Path:
    """Return the path of the model's ONNX file, exporting and verifying it first if not cached.

    Raises BackendUnavailable when neither exporter produces a graph that matches torch.
    """
    path = onnx_cache_path(model, cache_dir)
    out_dir = path.parent
    if path.exists():
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for exporter in (_export_dynamo, _export_legacy):
        # Write beside the target and rename: concurrent workers never see half a file.
        fd, tmp_name = tempfile.mkstemp(suffix=".onnx.tmp", dir=out_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            exporter(model, tmp)
            diff = verify_export(model, tmp)
            if not diff <= _VERIFY_ATOL:
                raise ValueError(f"exported graph differs from torch by {diff:.2e} > {_VERIFY_ATOL}")
            os.replace(tmp, path)
            log.info("exported %s to %s (%s, max diff %.1e)", model.spec.id, path, exporter.__name__, diff)
            return path
        except Exception as exc:  # noqa: BLE001 - any exporter failure means "try the next, then give up"
            errors.append(f"{exporter.__name__}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            tmp.unlink(missing_ok=True)
    raise BackendUnavailable(f"cannot export {model.spec.id} to ONNX: " + " | ".join(errors))
