"""encode: pixels to bytes in the planned format; metadata kept or stripped by policy."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

from worker.pipeline.job import DecodedImage, Job

CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png", "avif": "image/avif"}
EXTENSIONS = {"jpeg": ".jpg", "webp": ".webp", "png": ".png", "avif": ".avif"}
_SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def to_pil(image: DecodedImage) -> Image.Image:
    """8-bit Pillow image; grayscale inputs go back to one channel."""
    rgb = np.round(np.clip(image.rgb, 0, 1) * 255).astype(np.uint8)
    if image.grayscale:
        gray = np.round(np.clip(image.rgb.mean(axis=2), 0, 1) * 255).astype(np.uint8)
        base = Image.fromarray(gray, "L")
    else:
        base = Image.fromarray(rgb, "RGB")
    if image.alpha is None:
        return base
    alpha = Image.fromarray(np.round(np.clip(image.alpha, 0, 1) * 255).astype(np.uint8), "L")
    base = base.convert("LA" if image.grayscale else "RGBA")
    base.putalpha(alpha)
    return base


def encode_image(image: DecodedImage, fmt: str, quality: int, keep_metadata: bool) -> bytes:
    pil = to_pil(image)
    options: dict[str, object] = {}
    if fmt == "jpeg":
        options.update(quality=quality, optimize=True, progressive=True)
    elif fmt in {"webp", "avif"}:
        options.update(quality=quality)
    elif fmt == "png":
        options.update(compress_level=6)
    if image.had_icc_profile and not image.grayscale:
        options["icc_profile"] = _SRGB_ICC  # decode converted the colours to sRGB; say so
    if keep_metadata and image.exif:
        exif = Image.Exif()
        exif.load(image.exif)
        exif[0x0112] = 1  # orientation was applied to the pixels at decode
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def encode(job: Job) -> None:
    assert job.result is not None and job.plan is not None
    fmt = job.plan.output_format
    job.encoded = encode_image(job.result, fmt, job.plan.quality, job.policy.keep_metadata)
    job.content_type = CONTENT_TYPES[fmt]
    job.extension = EXTENSIONS[fmt]
