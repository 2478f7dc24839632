"""Regions to inpaint, from a sidecar mask object or a rectangle list.

A sidecar is `<key>.mask.png` next to the photo (white = fill), uploaded BEFORE the photo so it is there
when the photo's event arrives. Rectangles come as `x,y,w,h;x,y,w,h` in pixels of the upright photo,
from the object's `x-amz-meta-retouch-inpaint` metadata or the bucket policy.
"""

from __future__ import annotations

import numpy as np
from PIL import ImageOps, UnidentifiedImageError

from worker.errors import InvalidRequest
from worker.pipeline.limits import checked_image
from worker.settings import LimitSettings

MASK_SUFFIX = ".mask.png"
RECTS_METADATA = "retouch-inpaint"


def sidecar_key(key: str) -> str:
    return key + MASK_SUFFIX


def is_sidecar(key: str) -> bool:
    return key.endswith(MASK_SUFFIX)


def parse_rectangles(text: str) -> list[tuple[int, int, int, int]]:
    rects = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            x, y, w, h = (int(v) for v in part.split(","))
        except ValueError as error:
            raise InvalidRequest(f"inpaint rectangle {part!r} is not 'x,y,w,h'") from error
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise InvalidRequest(f"inpaint rectangle {part!r} has a negative origin or empty size")
        rects.append((x, y, w, h))
    return rects


def mask_from_rectangles(height: int, width: int, rects: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.float32)
    for x, y, w, h in rects:
        if x >= width or y >= height:
            raise InvalidRequest(f"inpaint rectangle {x},{y},{w},{h} lies outside the {width}x{height} photo")
        mask[y : y + h, x : x + w] = 1.0
    return mask


def decode_mask(data: bytes, height: int, width: int, limits: LimitSettings) -> np.ndarray:
    """A sidecar mask as (H, W) float32 {0, 1}; it must match the photo's upright size.

    The size is compared from the header, before decoding: a mask can never cost more memory than its photo.
    """
    with checked_image(data, limits, what="sidecar mask") as (header, image):
        if (header.width, header.height) not in {(width, height), (height, width)}:  # either EXIF orientation
            raise InvalidRequest(f"sidecar mask is {header.width}x{header.height}, the photo {width}x{height}")
        try:
            image = ImageOps.exif_transpose(image)
            if image.mode in {"RGBA", "LA", "PA"}:
                gray = image.getchannel("A")
            else:
                gray = image.convert("L")
            values = np.asarray(gray, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
            raise InvalidRequest(f"sidecar mask is not a readable image: {error}") from error
    if values.shape != (height, width):
        raise InvalidRequest(f"sidecar mask is {values.shape[1]}x{values.shape[0]}, the photo {width}x{height}")
    return (values > 127).astype(np.float32)


def build_mask(job) -> None:
    """The `mask` step: union of the sidecar mask, metadata rectangles and the policy's rectangles."""
    assert job.image is not None
    height, width = job.image.height, job.image.width
    mask = np.zeros((height, width), dtype=np.float32)
    if job.mask_data is not None:
        mask = np.maximum(mask, decode_mask(job.mask_data, height, width, job.limits))
    for text in (job.source_metadata.get(RECTS_METADATA), job.policy.inpaint_rects):
        if text:
            mask = np.maximum(mask, mask_from_rectangles(height, width, parse_rectangles(text)))
    job.mask = mask if mask.any() else None
