"""Generation in the event flow: a bucket policy asking for square canvases, and sidecar masks."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.integration.test_end_to_end import start_ingester

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def product_photo(width: int, height: int) -> Image.Image:
    """A product-like photo: a shaded object on a light, slightly textured background."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:height, 0:width]
    background = 235 + 8 * np.sin(x / 9.0)[..., None] + rng.normal(0, 1.5, (height, width, 3))
    inside = ((x - width / 2) / (width * 0.3)) ** 2 + ((y - height / 2) / (height * 0.35)) ** 2 < 1
    shade = np.stack([90 + 60 * y / height, 40 + 30 * x / width, 50 + 0 * x], axis=2)
    pixels = np.where(inside[..., None], shade, background)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def read_manifest(stack, key: str) -> dict:
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def test_square_canvas_policy_and_sidecar_mask(make_stack):
    # Given a worker whose policy for this bucket asks for 1:1 canvases, filled by generation
    stack = make_stack("redis", RETOUCH_TARGET_SHORT_SIDE="64")
    policies = json.dumps({stack.bucket: {"canvas_aspect": "1:1", "canvas_fit": "outpaint"}})
    stack.env["RETOUCH_BUCKET_POLICIES"] = policies
    stack.start_worker()
    start_ingester(stack)
    # When a 3:4 photo is uploaded, and a photo with a sticker whose sidecar mask was uploaded first
    portrait = product_photo(96, 128)
    stack.s3.put_object(Bucket=stack.bucket, Key="incoming/portrait.jpg", Body=jpeg(portrait))
    stickered = product_photo(128, 128)
    stickered.paste((255, 0, 255), (20, 20, 44, 44))
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (20, 20, 44, 44))
    stack.s3.put_object(Bucket=stack.bucket, Key="incoming/sticker.png.mask.png", Body=png(mask))
    stack.s3.put_object(Bucket=stack.bucket, Key="incoming/sticker.png", Body=png(stickered))

    # Then the portrait comes out square, its bands generated, and the decision is in the manifest
    done = lambda: {"incoming/portrait.jpg.manifest.json", "incoming/sticker.png.manifest.json"} <= {  # noqa: E731
        key.removeprefix("enhanced/") for key in stack.keys("enhanced/incoming/")}
    stack.wait_for(done, 300, "both manifests")
    manifest = read_manifest(stack, "enhanced/incoming/portrait.jpg.manifest.json")
    assert manifest["output"]["width"] == manifest["output"]["height"] == 128
    assert any(line.startswith("canvas 1:1: 96x128 placed on 128x128") for line in manifest["decisions"])
    assert [run["engine"] for run in manifest["engines"]][:2] == ["retouch-tone", "retouch-inpaint"]
    with Image.open(io.BytesIO(stack.s3.get_object(Bucket=stack.bucket, Key="enhanced/incoming/portrait.jpg")
                               ["Body"].read())) as out:
        bands = np.asarray(out.convert("RGB"), dtype=np.float32)[:, :16]
    # The generated band continues the light background rather than staying black or empty
    assert bands.mean() > 180

    # And the stickered photo is filled: the magenta square is gone, the mask sidecar itself not enhanced
    sticker = read_manifest(stack, "enhanced/incoming/sticker.png.manifest.json")
    assert [run["engine"] for run in sticker["engines"]][:2] == ["retouch-inpaint", "retouch-tone"]
    with Image.open(io.BytesIO(stack.s3.get_object(Bucket=stack.bucket, Key="enhanced/incoming/sticker.png")
                               ["Body"].read())) as out:
        filled = np.asarray(out.convert("RGB"), dtype=np.float32)[22:42, 22:42]
    magenta = np.array([255, 0, 255], dtype=np.float32)
    assert np.abs(filled - magenta).mean() > 100
    assert not any(key.endswith(".mask.png.manifest.json") for key in stack.keys("enhanced/"))
