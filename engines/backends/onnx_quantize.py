"""int8 graphs for ONNX Runtime on the CPU: the fp32 export, statically quantised once and cached.

Why: on CPUs with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI, AMX-INT8) ONNX Runtime's int8
convolutions run several times faster than fp32. Measured on a 2-core AMD EPYC (Zen 4, AVX512-VNNI) with
`retouch bench`, 256 px input, whole engine call, output MP/s int8 / fp32 (and the best bf16, OpenVINO's):

| engine | int8 | fp32 | bf16 |
| --- | --- | --- | --- |
| retouch-sr-x4-perceptual | 2.85 | 0.87 | 1.74 |
| retouch-sr-x2-perceptual | 1.75 | 0.48 | 1.07 |
| retouch-sr-x2-real | 1.02 | 0.73 | 2.19 |
| retouch-sr-x4-real | 2.12 | 1.73 | 5.09 |

Agreement with fp32 over 25 held-aside catalogue crops (minimum over the crops that are not flat):
x4-perceptual 46.2 dB (mean 56.7), x2-perceptual 49.9, x2-real 47.8, x4-real 47.6. Against the truth
(RGB PSNR / GMSD, fp32 -> int8): x4-perceptual Set5 25.973 -> 25.977 / 0.1109 -> 0.1109, Set14 24.253 ->
24.231 / 0.1428 -> 0.1437; x2-perceptual Set5 29.745 -> 29.721, Set14 27.694 -> 27.660.

How: QDQ format, weights int8 per output channel, activations uint8 per tensor. Ranges are calibrated
at the 99.99th percentile of each activation's histogram (plain min-max left retouch-sr-x4-perceptual
44.9 dB from fp32 on a portrait crop, the percentile 49.2), on `CALIBRATION_TILES` crops of
scikit-image's bundled photographs (public domain / CC0 / Middlebury; installed with the package, so no
data set is needed at run time), halved as an SR input would be. The result is cached beside the fp32
export, keyed by it and by `QUANTIZE_VERSION`. Only specs that list "int8" among their precisions get it,
each with a measured agreement bound (tests/engines/test_precision.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from engines.backends.onnx_export import INPUT_NAME, MASK_NAME, export_onnx, onnx_cache_path
from engines.errors import BackendUnavailable
from engines.loaded import LoadedModel

__all__ = ["QUANTIZE_VERSION", "int8_path", "quantize_int8"]

QUANTIZE_VERSION = 1
CALIBRATION_TILES = 32
CALIBRATION_SIDE = 64
CALIBRATION_PERCENTILE = 99.99


def int8_path(model: LoadedModel, cache_dir: Path) -> Path:
    fp32 = onnx_cache_path(model, cache_dir)
    return fp32.with_name(f"{fp32.stem}-int8v{QUANTIZE_VERSION}.onnx")


def calibration_tiles(model: LoadedModel) -> list[dict[str, np.ndarray]]:
    """Deterministic crops of scikit-image's bundled photographs (`training.data.NATURAL_PHOTOS`), halved
    (as a photo needing SR looks), as feeds."""
    from PIL import Image

    from engines.training.data import natural_photo_files

    rng = np.random.default_rng(QUANTIZE_VERSION)
    spec = model.spec
    side = max(CALIBRATION_SIDE // spec.size_multiple * spec.size_multiple, spec.min_size)
    photos = []
    for path in natural_photo_files():
        with Image.open(path) as im:
            photos.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    feeds = []
    for i in range(CALIBRATION_TILES):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        y, x = int(rng.integers(0, h - 2 * side)), int(rng.integers(0, w - 2 * side))
        crop = photo[y : y + 2 * side : 2, x : x + 2 * side : 2]
        feed = {INPUT_NAME: np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32)}
        if model.takes_mask:
            mask = np.zeros((1, 1, side, side), np.float32)
            mask[..., side // 4 : side // 2, side // 4 : side // 2] = 1
            feed[MASK_NAME] = mask
        feeds.append(feed)
    return feeds


def quantize_int8(model: LoadedModel, cache_dir: Path) -> Path:
    """The model's int8 graph, quantising the fp32 export on the first call (atomic write, then cached)."""
    path = int8_path(model, cache_dir)
    if path.exists():
        return path
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(calibration_tiles(model))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    source = export_onnx(model, cache_dir)
    with tempfile.TemporaryDirectory(dir=source.parent) as work:
        prepared, quantised = Path(work) / "prepared.onnx", Path(work) / "int8.onnx"
        try:
            # Symbolic shape inference cannot follow the dynamic H and W through pixel shuffles; ONNX's own
            # shape inference and the graph optimisation are enough for quantisation.
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its progress to stdout
                quantize_static(str(prepared), str(quantised), _Reader(), quant_format=QuantFormat.QDQ,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                                calibrate_method=CalibrationMethod.Percentile,
                                extra_options={"CalibPercentile": CALIBRATION_PERCENTILE})
        except Exception as exc:  # noqa: BLE001 - any quantiser failure means "no int8 for this model"
            raise BackendUnavailable(f"cannot quantise {model.spec.id} to int8: {type(exc).__name__}: {exc}") from exc
        os.replace(quantised, path)
    return path
