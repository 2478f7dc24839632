"""decode: bytes to the engines' contract (sRGB float32 RGB in [0, 1], alpha apart).

Handles EXIF orientation, ICC profiles (converted to sRGB), alpha, 16-bit, palette, CMYK and grayscale.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms, ImageOps

from worker.errors import CorruptImage, UnsupportedImage
from worker.pipeline.job import DecodedImage, Job
from worker.pipeline.limits import checked_image
from worker.settings import LimitSettings

_SRGB = ImageCms.createProfile("sRGB")


def decode_image(data: bytes, limits: LimitSettings) -> DecodedImage:
    """Decode the first frame of an image, header checked first; CorruptImage when the pixel data is broken."""
    with checked_image(data, limits) as (header, image):
        try:
            image.load()
            source_format = (image.format or "unknown").lower()
            source_mode = image.mode
            exif = image.info.get("exif")
            icc = image.info.get("icc_profile")
            image = ImageOps.exif_transpose(image)
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise CorruptImage(f"image data is corrupt or truncated: {error}") from error
    if image.width * image.height > header.width * header.height:
        raise CorruptImage("decoded size differs from the header")

    bits = 16 if source_mode in {"I;16", "I;16B", "I;16L", "I", "RGB;16", "RGBA;16"} else 8
    grayscale = source_mode in {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
    rgb, alpha = _to_float(image)
    if icc and not grayscale:
        rgb = _to_srgb(rgb, icc, source_mode)
    return DecodedImage(
        rgb=np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.float32),
        source_format=source_format,
        source_mode=source_mode,
        grayscale=grayscale,
        bits=bits,
        had_icc_profile=bool(icc),
        exif=exif,
    )


def _to_float(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = image.mode
    if mode in {"I", "I;16", "I;16B", "I;16L"}:
        values = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if values.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        gray = np.clip(values / peak, 0, 1)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in {"1", "L"}:
        image = image.convert("RGB")
    elif mode in {"LA", "PA", "RGBa", "La"}:
        image = image.convert("RGBA")
    elif mode in {"CMYK", "YCbCr", "LAB", "HSV"}:
        image = image.convert("RGB")
    if image.mode not in {"RGB", "RGBA"}:
        raise UnsupportedImage(f"pixel mode {mode!r} is not supported")
    array = np.asarray(image, dtype=np.float32) / 255.0
    if image.mode == "RGBA":
        return array[..., :3], array[..., 3]
    return array, None


def _to_srgb(rgb: np.ndarray, icc: bytes, source_mode: str) -> np.ndarray:
    """Convert embedded-profile colours to sRGB; a broken profile is ignored rather than failing the job."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source_mode == "CMYK":
            return rgb  # Pillow's CMYK->RGB conversion already happened without the profile
        image = Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB")
        converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
        return np.asarray(converted, dtype=np.float32) / 255.0
    except (ImageCms.PyCMSError, OSError, ValueError):
        return rgb


def decode(job: Job) -> None:
    assert job.data is not None
    job.image = decode_image(job.data, job.limits)
