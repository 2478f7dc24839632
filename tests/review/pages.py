"""Review folders made by hand: a red 'before' and a blue 'after', so a screenshot says where the divider is."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

RED, BLUE = (220, 20, 20), (20, 40, 220)


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def manifest(source: Path, output: str, *, engines: list[dict], gate: list[dict] | None = None) -> dict:
    body = {
        "pipeline_version": "test",
        "source": {"path": str(source), "bytes": 100, "width": 60, "height": 40},
        "output": {"path": output, "content_type": "image/png", "bytes": 400, "width": 240, "height": 160},
        "analysis": {"noise_sigma": 3.25, "sharpness": 120.0, "jpeg_quality": None, "colour_cast": 0.12},
        "decisions": ["short side 40px < target 1024px: upscale x4"],
        "engines": engines,
        "cost": {"cpu_seconds": 1.5, "gpu_seconds": 0.0,
                 "price": {"currency": "USD", "cpu_hour": 0.04, "gpu_hour": None, "total": 1.5 / 3600 * 0.04}},
    }
    if gate is not None:
        body["gate"] = gate
    return body


SR_RUN = {"engine": "retouch-sr-x4-perceptual", "backend": "torch", "device": "cpu", "seconds": 0.8, "tiles": 1,
          "precision": "bf16", "cpu_seconds": 1.5, "gpu_seconds": None}


def review_folder(root: Path) -> Path:
    """Two enhanced photos (red before, blue after), one kept by the gate, one failure."""
    originals, out = root / "originals", root / "out"
    originals.mkdir(parents=True)
    out.mkdir()
    for stem in ("shoe", "lamp"):
        (originals / f"{stem}.png").write_bytes(png((60, 40), RED))
        (out / f"{stem}.png").write_bytes(png((240, 160), BLUE))
        (out / f"{stem}.manifest.json").write_text(json.dumps(manifest(originals / f"{stem}.png", f"{stem}.png",
                                                                       engines=[SR_RUN])))
    (originals / "vase.png").write_bytes(png((60, 40), RED))
    (out / "vase.png").write_bytes(png((60, 40), RED))
    kept = manifest(originals / "vase.png", "vase.png", engines=[], gate=[
        {"step": "super_resolution", "verdict": "kept", "reason": "no_gain", "detail": "sharpness fell 12 %"}])
    kept["output"].update(width=60, height=40)
    (out / "vase.manifest.json").write_text(json.dumps(kept))
    (out / "notes.failed.json").write_text(json.dumps({"source": {"path": str(originals / "notes.jpg")},
                                                       "reason": "not_an_image", "message": "not an image"}))
    return out
