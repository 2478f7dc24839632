"""Canvas policy and inpainting masks: geometry, planning order, and the pipeline end to end (fake engines)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from tests.worker.fakes import FakeEngines
from worker.errors import InvalidRequest
from worker.pipeline import Job, image_steps, run_steps
from worker.pipeline.canvas import blur_extend, pad, plan_canvas
from worker.pipeline.masks import mask_from_rectangles, parse_rectangles
from worker.settings import LimitSettings, PolicySettings


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def run(data: bytes, mask_data: bytes | None = None, metadata: dict | None = None, **policy) -> Job:
    job = Job(limits=LimitSettings(), policy=PolicySettings(**{"target_short_side": 16, **policy}),
              mask_data=mask_data, source_metadata=metadata or {})
    job.data = data
    return run_steps(job, image_steps(FakeEngines()), deadline=math.inf)


@pytest.mark.parametrize(("size", "aspect", "expected"), [
    ((300, 400), "1:1", (400, 400, 50, 0)),   # 3:4 portrait -> square: bands left and right
    ((400, 300), "1:1", (400, 400, 0, 50)),   # landscape -> square: bands above and below
    ((300, 400), "4:5", (320, 400, 10, 0)),
    ((400, 400), "1:1", None),
])
def test_canvas_geometry(size, aspect, expected):
    canvas = plan_canvas(*size, aspect, "outpaint")
    got = None if canvas is None else (canvas.width, canvas.height, canvas.left, canvas.top)
    assert got == expected


def test_pad_and_blur_keep_the_photo_and_fill_the_bands():
    rng = np.random.default_rng(0)
    photo = np.full((40, 30, 3), 0.9, np.float32)
    photo[10:30, 5:25] = rng.random((20, 20, 3))
    canvas = plan_canvas(30, 40, "1:1", "pad")
    padded = pad(photo, canvas)
    assert padded.shape == (40, 40, 3)
    np.testing.assert_array_equal(padded[:, canvas.left : canvas.left + 30], photo)
    assert np.allclose(padded[:, :canvas.left], 0.9)  # the sampled background colour
    blurred = blur_extend(photo, canvas)
    np.testing.assert_allclose(blurred[:, canvas.left : canvas.left + 30], photo, atol=1e-6)


def test_three_by_four_upload_becomes_square_with_generated_bands():
    photo = Image.new("RGB", (30, 40), (200, 180, 160))
    job = run(png(photo), canvas_aspect="1:1", target_short_side=64)
    assert [s.task for s in job.plan.engines] == ["tone", "outpaint", "super_resolution"]
    assert job.result.width == job.result.height == 80  # 40x40 canvas, then x2 to reach the 64-px target
    assert any(line.startswith("canvas 1:1: 30x40 placed on 40x40") for line in job.plan.decisions)
    assert [run.engine for run in job.engine_runs] == ["retouch-tone", "retouch-inpaint", "retouch-sr-x2-perceptual"]
    assert [(v.step, v.verdict, v.reason) for v in job.gate] == [
        ("denoise", "kept", "already_clean"), ("tone", "kept", "no_visible_change"),
        ("super_resolution", "applied", "improves")]


def test_cut_out_bands_stay_transparent():
    job = run(png(Image.new("RGBA", (30, 40), (10, 20, 30, 255))), canvas_aspect="1:1", target_short_side=8)
    assert job.result.alpha[:, :5].max() == 0 and job.result.alpha[:, 10:30].min() == 1


def test_sidecar_mask_and_metadata_rectangles_trigger_inpainting_first():
    photo = Image.new("RGB", (32, 32), (50, 60, 70))
    photo.paste((255, 0, 0), (4, 4, 12, 12))  # a "sticker"
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (4, 4, 12, 12))
    job = run(png(photo), mask_data=png(mask), target_short_side=32)
    assert [s.task for s in job.plan.engines] == ["inpaint", "tone"]
    assert np.allclose(job.result.rgb[6, 6], np.array([50, 60, 70]) / 255, atol=0.01)  # sticker gone

    by_metadata = run(png(photo), metadata={"retouch-inpaint": "4,4,8,8"}, target_short_side=32)
    assert [s.task for s in by_metadata.plan.engines] == ["inpaint", "tone"]


def test_bad_masks_are_invalid_requests():
    photo = png(Image.new("RGB", (32, 32)))
    with pytest.raises(InvalidRequest):
        run(photo, mask_data=png(Image.new("L", (16, 16), 255)))
    with pytest.raises(InvalidRequest):
        parse_rectangles("1,2,3")
    with pytest.raises(InvalidRequest):
        mask_from_rectangles(10, 10, [(20, 0, 1, 1)])
