"""Pipeline steps on real image bytes: limits before decode, decode edge cases, plan, encode."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_path
from tests.worker.fakes import FakeEngines
from worker.errors import CorruptImage, EmptyObject, NotAnImage, OverLimit
from worker.pipeline import Job, Request, image_steps, run_steps
from worker.pipeline.analyse import estimate_jpeg_quality, estimate_noise_sigma
from worker.pipeline.decode import decode_image
from worker.pipeline.limits import read_header
from worker.settings import LimitSettings, PolicySettings

LIMITS = LimitSettings(max_input_pixels=10**8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width=96, height=64, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 7.0)], axis=2) * 255
    return Image.fromarray(np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8), "RGB")


def run_image(data: bytes, request: Request | None = None, **policy) -> Job:
    job = Job(limits=LimitSettings(), policy=PolicySettings(target_short_side=128, **policy),
              request=request or Request())
    job.data = data
    return run_steps(job, image_steps(FakeEngines()), deadline=math.inf)


# --- limits: refused from the header, before decoding ---------------------------------------------

def test_empty_bytes_are_refused():
    with pytest.raises(EmptyObject):
        read_header(b"", LimitSettings())


def test_non_image_is_refused():
    with pytest.raises(NotAnImage) as error:
        read_header(b"%PDF-1.7 definitely not a photo", LimitSettings())
    assert error.value.reason == "not_an_image" and not error.value.retryable


def test_pixel_bomb_is_refused_from_the_header():
    # Given a 1-bit PNG of 12000x12000 (tiny on disk, 144 megapixels decoded)
    bomb = encode(Image.new("1", (12000, 12000)), "PNG")
    assert len(bomb) < 100_000
    # When its header is read Then it is over the 40-megapixel default limit
    with pytest.raises(OverLimit):
        read_header(bomb, LimitSettings())


def test_too_many_bytes_and_frames_are_refused():
    with pytest.raises(OverLimit):
        read_header(encode(photo(), "PNG"), LimitSettings(max_input_bytes=100))
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(OverLimit):
        read_header(buffer.getvalue(), LimitSettings(max_frames=1))


def test_truncated_jpeg_is_corrupt():
    data = encode(photo(), "JPEG", quality=90)
    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) // 2], LIMITS)


# --- decode: orientation, alpha, 16-bit, palette, CMYK, grayscale --------------------------------

def test_exif_orientation_is_applied():
    image = photo(96, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes()), LIMITS)
    assert (decoded.width, decoded.height) == (64, 96)


def test_alpha_palette_sixteen_bit_cmyk_and_gray_decode():
    rgba = Image.new("RGBA", (10, 6), (200, 10, 10, 128))
    decoded = decode_image(encode(rgba, "PNG"), LIMITS)
    assert decoded.alpha is not None and abs(float(decoded.alpha.mean()) - 128 / 255) < 1e-3

    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    assert decode_image(encode(palette, "PNG", transparency=0), LIMITS).rgb[0, 0, 0] == pytest.approx(1.0)

    gray16 = Image.fromarray(np.full((4, 4), 65535 // 2, dtype=np.uint16))
    decoded16 = decode_image(encode(gray16, "PNG"), LIMITS)
    assert decoded16.grayscale and decoded16.bits == 16
    assert float(decoded16.rgb.mean()) == pytest.approx(0.5, abs=1e-3)

    cmyk = decode_image(encode(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG"), LIMITS)
    assert cmyk.rgb[..., 0].mean() > 0.9 and cmyk.rgb[..., 1].mean() < 0.1

    assert decode_image(encode(Image.new("L", (4, 4), 77), "PNG"), LIMITS).grayscale


@pytest.mark.shared
def test_shared_edge_cases_all_decode_and_encode():
    folder = shared_path("data", "edge-cases")
    for path in sorted(folder.iterdir()):
        # Given each edge-case file When it goes through the whole image pipeline (upscale x2)
        job = run_image(path.read_bytes(), Request(task="super_resolution", scale=2))
        # Then the output decodes to twice the size with alpha kept when the input had it
        out = Image.open(io.BytesIO(job.encoded))
        assert out.size == (job.image.width * 2, job.image.height * 2), path.name
        assert ("A" in out.mode) == (job.image.alpha is not None), path.name


# --- analyse and plan ------------------------------------------------------------------------------

def test_noise_and_jpeg_quality_estimates():
    rng = np.random.default_rng(1)
    flat = np.full((128, 128), 128.0)
    assert estimate_noise_sigma(flat) < 0.5
    assert estimate_noise_sigma(flat + rng.normal(0, 10, flat.shape)) == pytest.approx(10, rel=0.15)
    for quality in (30, 60, 90):
        assert estimate_jpeg_quality(encode(photo(), "JPEG", quality=quality)) == pytest.approx(quality, abs=2)
    assert estimate_jpeg_quality(encode(photo(), "PNG")) is None


def test_auto_plan_upscales_small_photos_and_denoises_noisy_large_ones():
    small = run_image(encode(photo(96, 64), "JPEG", quality=92))
    assert [(s.task, s.scale) for s in small.plan.engines] == [("tone", 1), ("super_resolution", 2)]
    assert small.result.width == 192 and small.encoded[:2] == b"\xff\xd8"  # still a JPEG

    tiny = run_image(encode(photo(40, 30), "PNG"))
    assert [s.scale for s in tiny.plan.engines] == [1, 4]

    noise = np.random.default_rng(2).normal(0, 15, (160, 200, 3))
    noisy = np.clip(np.asarray(photo(200, 160), dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    large = run_image(encode(Image.fromarray(noisy), "PNG"))
    assert [s.task for s in large.plan.engines] == ["tone", "denoise"]
    assert any("denoise" in line for line in large.plan.decisions)


def test_alpha_output_is_png_even_when_jpeg_is_asked():
    job = run_image(encode(Image.new("RGBA", (40, 40), (1, 2, 3, 100)), "PNG"), output_format="jpeg")
    assert job.plan.output_format == "png" and Image.open(io.BytesIO(job.encoded)).mode == "RGBA"
