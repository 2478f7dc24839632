"""The review page in a real browser: Debian's headless Chromium, from file:// with the network off."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.review.chromium import Browser, chromium_or_skip
from tests.review.pages import review_folder
from worker.review import load_local, write_page

pytestmark = pytest.mark.slow


@pytest.fixture
def browser():
    session = Browser(chromium_or_skip(), width=1280, height=900)
    yield session
    session.close()


@pytest.fixture
def page(tmp_path, browser):
    path = write_page(load_local(review_folder(tmp_path)), tmp_path / "review.html")
    browser.open(path.as_uri(), offline=True)
    return browser


def box(browser: Browser, selector: str) -> dict:
    return browser.evaluate(f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
                            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")


def red_share(png: bytes) -> float:
    """Share of columns whose mean colour is the red 'before' rather than the blue 'after'."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32).mean(axis=0)
    return float(np.mean(pixels[:, 0] > pixels[:, 2] + 50))


def test_page_loads_offline_with_no_console_error_and_shows_every_photo(page):
    assert page.problems() == []
    assert {url.split(":", 1)[0] for url in page.requested_urls()} <= {"file", "data"}
    assert page.evaluate("document.querySelectorAll('.card').length") == 3
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("document.images.length") == 6
    assert "notes.jpg" in page.evaluate("document.querySelector('section.failures').innerText")
    # Before and after are shown at the same size: the 60x40 before is stretched to the 240x160 after's box.
    sizes = page.evaluate("[...document.querySelectorAll('.compare')].map(c => [...c.querySelectorAll('img')]"
                          ".map(i => [i.getBoundingClientRect().width, i.getBoundingClientRect().height]))")
    assert all(before == after for after, before in sizes)


def test_slider_moves_the_divider(page):
    # Given the first card's comparison
    compare = box(page, ".compare")
    clip = {k: compare[k] for k in ("x", "y", "width", "height")}
    shots = {}
    for share in (0.2, 0.8):
        # When the photo is clicked at that share of its width (the divider follows the pointer)
        page.click(compare["x"] + compare["width"] * share, compare["y"] + compare["height"] / 2)
        shots[share] = page.screenshot(clip)
    # Then the red 'before' covers that share of the screenshot, and the range input agrees
    assert red_share(shots[0.2]) == pytest.approx(0.2, abs=0.04)
    assert red_share(shots[0.8]) == pytest.approx(0.8, abs=0.04)
    assert shots[0.2] != shots[0.8]
    assert page.evaluate("document.querySelector('.slider').value") == "80"
    assert page.problems() == []


def test_zoom_shows_the_output_at_100_percent(page):
    before = box(page, ".compare")["width"]
    button = box(page, ".zoom")
    page.click(button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    assert before != 240
    assert box(page, ".compare")["width"] == 240  # the output's own width in pixels


def test_filter_by_outcome(page):
    def choose(outcome: str) -> None:
        button = box(page, f".filters button[data-filter={outcome}]")
        page.click(button["x"] + 5, button["y"] + 5)

    visible = ("[...document.querySelectorAll('.card, section.failures')].filter(e => !e.hidden)"
               ".map(e => e.querySelector('h2').innerText)")
    choose("kept")
    assert page.evaluate(visible) == ["vase"]
    choose("failed")
    assert page.evaluate(visible) == ["Failures"]
    choose("all")
    assert page.evaluate(visible) == ["lamp", "shoe", "vase", "Failures"]
