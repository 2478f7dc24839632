"""Thin side bands: the fill's strip path, and the border-strip training samples that teach it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engines.masked_fill import STRIP_SCALE, STRIP_WIDTH, fill, side_band_widths
from engines.training import inpaint_strips as st
from engines.training.masks import band_mask, box_mask


def test_side_band_widths_recognises_only_full_height_edge_bands() -> None:
    assert side_band_widths(band_mask(40, 60, left=3, right=5)) == (3, 5)
    assert side_band_widths(band_mask(40, 60, right=4)) == (0, 4)
    assert side_band_widths(np.zeros((40, 60), np.float32)) is None
    assert side_band_widths(band_mask(40, 60, top=2, left=3)) is None  # a top band too
    inner = band_mask(40, 60, left=3)
    inner[:, 30] = 1  # a full-height column that is not at an edge
    assert side_band_widths(inner) is None
    assert side_band_widths(box_mask(40, 60, np.random.default_rng(0))) is None


def _recording_process(seen: list[tuple[int, int]]):
    def process(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        seen.append(m.shape)
        return np.where(m[..., None] > 0.5, 0.5, img).astype(np.float32)

    return process


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 2,048 x 1,640 canvas: twice the strip scale."""
    return np.random.default_rng(3).random((2048, 1640, 3), dtype=np.float32)


def test_thin_side_bands_are_filled_on_strips_at_the_strip_scale(photo: np.ndarray) -> None:
    # Given 40 px bands on a 2,048 px canvas (20 px at the 1,024 px strip scale), the process runs twice,
    # on strips of STRIP_WIDTH px at that scale; pixels beyond the strips' holes keep their bytes.
    seen: list[tuple[int, int]] = []
    mask = band_mask(2048, 1640, left=40, right=40)
    out = fill(_recording_process(seen), photo, mask, feather=2)
    assert seen == [(STRIP_SCALE, STRIP_WIDTH)] * 2
    np.testing.assert_array_equal(out[:, 43:-43], photo[:, 43:-43])
    assert abs(float(out[:, 5:35].mean()) - 0.5) < 0.05 and abs(float(out[:, -35:-5].mean()) - 0.5) < 0.05


def test_other_holes_use_the_whole_canvas_path(photo: np.ndarray) -> None:
    cases = {
        "wide bands": (photo, band_mask(2048, 1640, left=200, right=200)),
        "a box": (photo, box_mask(2048, 1640, np.random.default_rng(1))),
        "a small canvas": (photo[:800, :640], band_mask(800, 640, left=10, right=10)),
    }
    for name, (image, mask) in cases.items():
        seen: list[tuple[int, int]] = []
        fill(_recording_process(seen), image, mask)
        assert len(seen) == 1 and max(seen[0]) == 192, name
    seen = []
    fill(_recording_process(seen), photo, band_mask(2048, 1640, left=40, right=40), strips=False)
    assert len(seen) == 1 and max(seen[0]) == 192


@pytest.fixture(scope="module")
def bordered_photos(tmp_path_factory) -> Path:
    """Four 4:5 photos: grey, with a red left border and a blue right border 40 px wide."""
    folder = tmp_path_factory.mktemp("strip-photos")
    for i in range(4):
        img = np.full((500, 400, 3), 128, np.uint8)
        img[:, :40] = (255, 0, 0)
        img[:, -40:] = (0, 0, 255)
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_strip_cache_holds_both_borders_with_the_border_outermost(bordered_photos: Path, tmp_path: Path) -> None:
    cache = st.build_strip_cache(bordered_photos, holdout=1, cache_dir=tmp_path, log=lambda s: None)
    assert cache.shape == (6, 3, STRIP_SCALE, STRIP_WIDTH)
    right, mirrored_left = cache[0, :, :, -8:].float().mean((1, 2)), cache[1, :, :, -8:].float().mean((1, 2))
    assert right[2] > 200 and right[0] < 50  # blue at the outer edge of the right strip
    assert mirrored_left[0] > 200 and mirrored_left[2] < 50  # red at the outer edge of the mirrored left strip
    assert abs(float(cache[0, :, :, 0].float().mean()) - 128) < 3  # grey inside
    again = st.build_strip_cache(bordered_photos, holdout=1, cache_dir=tmp_path, log=lambda s: None)
    assert len(list(tmp_path.glob("inpaint-strips-*.pt"))) == 1 and (again == cache).all()


def test_strip_batches_put_a_band_along_the_border_and_are_seeded(bordered_photos: Path) -> None:
    cache = st.build_strip_cache(bordered_photos, holdout=0, log=lambda s: None)
    for step in range(6):
        img, mask = st.sample_strip_batch(cache, 4, np.random.default_rng([0, step]))
        img2, mask2 = st.sample_strip_batch(cache, 4, np.random.default_rng([0, step]))
        assert (img == img2).all() and (mask == mask2).all()
        assert img.shape == (4, 3, st.STRIP_ROWS, STRIP_WIDTH) and mask.shape == (4, 1, st.STRIP_ROWS, STRIP_WIDTH)
        for i in range(4):
            widths = side_band_widths(mask[i, 0].numpy())
            assert widths is not None and min(widths) == 0
            band = max(widths)
            assert st.STRIP_BANDS[0] <= band <= st.STRIP_BANDS[1]
            # The band lies on the photo's border: the coloured edge, not the grey inside.
            outer = img[i, :, :, :band] if widths[0] else img[i, :, :, -band:]
            assert float((outer - 128 / 255).abs().mean()) > 0.3
