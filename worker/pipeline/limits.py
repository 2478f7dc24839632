"""check_limits: read only the image header and refuse bombs before any pixel is decoded.

`checked_image` is the one way the worker gets at pixels (photos, sidecar masks, anything added later):
the header is checked against the limits first, so a small file declaring a huge canvas costs a header
read, not gigabytes and an OOM kill.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, UnidentifiedImageError

from worker.errors import CorruptImage, EmptyObject, NotAnImage, OverLimit, PermanentError
from worker.pipeline.job import Header, Job
from worker.settings import LimitSettings


def read_header(data: bytes, limits: LimitSettings) -> Header:
    """Identify the container and check bytes, width x height and frames against the limits."""
    if not data:
        raise EmptyObject("object is empty (0 bytes)")
    if len(data) > limits.max_input_bytes:
        raise OverLimit(f"{len(data)} bytes is over the {limits.max_input_bytes}-byte limit")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x raises) on huge images; our own limit below is the one that counts.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # lazy: parses the header only
                header = Header(
                    format=(image.format or "unknown").lower(),
                    width=int(image.width),
                    height=int(image.height),
                    frames=int(getattr(image, "n_frames", 1) or 1),
                    mode=image.mode,
                )
    except UnidentifiedImageError as error:
        raise NotAnImage("not an image Pillow can identify") from error
    except Image.DecompressionBombError as error:
        raise OverLimit(str(error)) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptImage(f"unreadable image header: {error}") from error
    if header.width <= 0 or header.height <= 0:
        raise CorruptImage(f"image header claims {header.width}x{header.height} pixels")
    if header.width * header.height > limits.max_input_pixels:
        raise OverLimit(
            f"{header.width}x{header.height} is over the {limits.max_input_pixels}-pixel limit"
        )
    if header.frames > limits.max_frames:
        raise OverLimit(f"{header.frames} frames is over the {limits.max_frames}-frame limit")
    return header


@contextmanager
def checked_image(data: bytes, limits: LimitSettings, *, what: str = "image") -> Iterator[tuple[Header, Image.Image]]:
    """The header checked against `limits`, then the lazily opened image, for the caller to decode.

    Errors keep their type (and metric reason); for anything but the photo, the message names `what`.
    """
    try:
        header = read_header(data, limits)
    except PermanentError as error:
        if what == "image":
            raise
        raise type(error)(f"{what}: {error}") from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = None  # our own cap above is the one that counts
        image = Image.open(io.BytesIO(data))
    with image:
        yield header, image


def check_limits(job: Job) -> None:
    assert job.data is not None, "check_limits runs after the bytes are fetched"
    job.header = read_header(job.data, job.limits)
