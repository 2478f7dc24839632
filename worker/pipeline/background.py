"""background: the product on white, or cut out, from a matting engine's matte; the photo as it was when
the matte is unsure.

`decide` reads the matte's report (`engines.matting.MatteReport`) and says whether the background can go,
as a `GateVerdict` with a short reason (a metric label). The background step is checked even when asked
for explicitly: removing a background the matte is unsure of spoils a listing, keeping it does not.

| reason | when | verdict |
| --- | --- | --- |
| `no_product` | the matte covers under 0.5 % of the photo, or no part of it is 1 % of the photo | kept |
| `low_confidence` | confidence under the policy's minimum (glass, white on white, an unsure matte) | kept |
| `fills_frame` | the product runs into 3 or 4 frame sides, or covers over 90 %: a close-up or a scene | kept |
| `applied` | otherwise (several products, or one cut by 1 or 2 frame sides, are named in the detail) | applied |

The compositing is pure array arithmetic on (H, W) alphas and (H, W, 3) colours in [0, 1]. `B` is
`engines.matting.background_colours`, the colours behind the product; the foreground colour is
`F = B + (I - B) / max(a, 0.05)` (the photo un-blended from its background), clipped to [0, 1]:
- white: `a F + (1 - a) white`, which is `I + (1 - a)(white - B)` where `a >= 0.05` and `F` is in range,
  and exactly white where `a = 0` (a smooth `B` cannot cancel a textured background's own grain);
- transparent: `F` with alpha `a`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from worker.pipeline.gate import GateVerdict

if TYPE_CHECKING:
    from engines.matting import MatteReport

STEP = "background"
REASONS = ("no_product", "low_confidence", "fills_frame", "applied")
MIN_COVERAGE = 0.005  # below: nothing in the photo the matte calls a product
MAX_COVERAGE = 0.9  # above: the product is the whole photo
MAX_SIDES = 2  # a product running into more frame sides than this fills the frame (a close-up, a scene)
MIN_ALPHA = 0.05  # the un-blending divides by alpha no smaller than this (noise would explode)
SHADOW_HEIGHT = 0.08  # the contact shadow is the product's silhouette squashed to this share of its height
SHADOW_STRENGTH = 0.3  # and darkens the white by at most this much


def decide(report: MatteReport, min_confidence: float) -> GateVerdict:
    """Whether the background can go, from what the matte says about the photo."""
    found = (f"matte covers {report.coverage:.1%} of the photo, {report.products} product(s), "
             f"confidence {report.confidence:.2f}")
    if report.coverage < MIN_COVERAGE or report.products == 0:
        return GateVerdict(STEP, "kept", "no_product", f"no product found: {found}")
    if report.confidence < min_confidence:
        return GateVerdict(STEP, "kept", "low_confidence",
                           f"matte confidence {report.confidence:.2f} < {min_confidence} "
                           "(glass, white on white, or an unsure matte)")
    if len(report.touches) > MAX_SIDES or report.coverage > MAX_COVERAGE:
        sides = ", ".join(report.touches) or "no side"
        return GateVerdict(STEP, "kept", "fills_frame",
                           f"the product fills the frame (touches {sides}; covers {report.coverage:.1%}): "
                           "a close-up or a scene, no background to remove")
    notes = []
    if report.products > 1:
        notes.append(f"{report.products} products")
    if report.touches:
        notes.append(f"cut by the frame at {', '.join(report.touches)}")
    return GateVerdict(STEP, "applied", "applied", found + ("; " + "; ".join(notes) if notes else ""))


def foreground(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(H, W, 3) the product's own colours: `B + (I - B) / max(a, MIN_ALPHA)`, clipped to [0, 1]."""
    colour = np.subtract(rgb[..., :3], background, dtype=np.float32)
    colour /= np.maximum(alpha, MIN_ALPHA)[..., None]
    colour += background
    return np.clip(colour, 0.0, 1.0, out=colour)


def on_white(colour: np.ndarray, alpha: np.ndarray, shadow: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) `colour` over white by `alpha`; `shadow` (H, W) darkens only the white (times 1 - alpha)."""
    ground = np.ones(alpha.shape, np.float32) if shadow is None else (1.0 - shadow).astype(np.float32)
    out = colour * alpha[..., None]  # exactly the colour where alpha is 1, exactly the ground where it is 0
    out += (ground * (1.0 - alpha))[..., None]
    return out


def cut_out(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 4): the product's colours with the matte as alpha."""
    return np.concatenate([colour, alpha[..., None].astype(np.float32)], axis=2)


def contact_shadow(work_alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) darkening in [0, SHADOW_STRENGTH]: the product's silhouette (from the working-resolution
    matte) squashed to `SHADOW_HEIGHT` of its height, laid from its base down, blurred. Cheap: all at the
    matte's size, then one bilinear upsampling."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rows = np.flatnonzero((work_alpha > 0.5).any(axis=1))
    if rows.size == 0:
        return np.zeros((height, width), np.float32)
    top, base = int(rows[0]), int(rows[-1])
    work_h, work_w = work_alpha.shape
    squashed_h = max(1, round(SHADOW_HEIGHT * (base - top + 1)))
    silhouette = Image.fromarray(np.ascontiguousarray(work_alpha[top:base + 1], dtype=np.float32), "F")
    squashed = np.asarray(silhouette.resize((work_w, squashed_h), Image.Resampling.BOX), dtype=np.float32)
    shadow = np.zeros((work_h, work_w), np.float32)
    stop = min(work_h, base + squashed_h)  # from the product's base down: darkest at the contact line
    shadow[base:stop] = squashed[: stop - base]
    shadow = gaussian_filter(shadow, sigma=max(1.5, 0.75 * squashed_h))
    peak = float(shadow.max())
    if peak <= 0:
        return np.zeros((height, width), np.float32)
    shadow *= SHADOW_STRENGTH / peak
    full = Image.fromarray(shadow, "F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(full, dtype=np.float32), 0.0, SHADOW_STRENGTH)


def replace(pixels: np.ndarray, alpha: np.ndarray, background: np.ndarray, mode: str,
            shadow: np.ndarray | None = None) -> np.ndarray:
    """The photo (H, W, 3|4) with its background replaced, given the full-resolution matte `alpha` and the
    background colours `B`. A source alpha multiplies the matte's: on white it then goes (opaque out),
    cut out it stays in the output's alpha."""
    colour = foreground(pixels[..., :3], alpha, background)
    opacity = alpha if pixels.shape[2] == 3 else alpha * pixels[..., 3]
    if mode == "white":
        return on_white(colour, opacity, shadow)
    if mode == "transparent":
        return cut_out(colour, opacity)
    raise ValueError(f"background mode {mode!r} replaces nothing")


def record(mode: str, verdict: GateVerdict, report: MatteReport, shadow: bool) -> dict[str, Any]:
    """The manifest's `background` object."""
    return {"mode": mode, "applied": verdict.verdict == "applied", "reason": verdict.reason, **report.as_dict(),
            **({"shadow": shadow} if mode == "white" else {})}
