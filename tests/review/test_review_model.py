"""The review page's model: what it reads from a folder or a bucket prefix, and what the HTML says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.review.pages import BLUE, RED, SR_RUN, manifest, png, review_folder
from worker.cli import main
from worker.review import ReviewError, load, load_local, load_s3, render, write_page
from worker.storage import MemoryObjectStore


def test_local_folder_gives_one_card_per_manifest_and_lists_failures(tmp_path):
    # Given a folder with two enhanced photos, one kept by the quality gate and one failure
    folder = review_folder(tmp_path)
    # When it is read
    review = load_local(folder)
    # Then every photo is there with its outcome, both images, and the failure's reason
    assert {card.name: card.outcome for card in review.cards} == {"lamp": "enhanced", "shoe": "enhanced",
                                                                  "vase": "kept"}
    assert all(card.before is not None and card.after is not None for card in review.cards)
    assert [(f.name, f.reason) for f in review.failures] == [("notes.jpg", "not_an_image")]
    assert review.counts() == {"enhanced": 2, "kept": 1, "failed": 1}
    totals = review.cost_totals()
    assert totals["cpu_seconds"] == pytest.approx(4.5)
    assert totals["price"] == pytest.approx(3 * 1.5 / 3600 * 0.04)


def test_html_shows_gate_verdicts_analysis_keys_engines_and_cost(tmp_path):
    html = render(load_local(review_folder(tmp_path)), lambda image: f"img/{image.name}")
    assert "no_gain" in html and "sharpness fell 12 %" in html  # the gate's verdict, rendered generically
    assert "no gate verdicts" in html  # the photos without one
    assert "colour_cast 0.12" in html  # an analysis key this module has never heard of
    assert "retouch-sr-x4-perceptual" in html and "torch/cpu" in html and "bf16" in html
    assert "1.50 CPU-s" in html and "CPU $0.04/h" in html
    assert html.count('class="card"') == 3 and html.count('class="slider"') == 3
    assert "https://" not in html and "http://" not in html  # nothing fetched from elsewhere


def test_missing_original_is_said_not_hidden(tmp_path):
    folder = review_folder(tmp_path)
    (tmp_path / "originals" / "shoe.png").unlink()
    card = next(c for c in load_local(folder).cards if c.name == "shoe")
    assert card.before is None and card.missing == (f"original not found: {tmp_path / 'originals' / 'shoe.png'}",)


def test_s3_prefix_fetches_originals_from_each_manifests_source():
    # Given a bucket as the worker leaves it: original, output + manifest, and a failure record
    store = MemoryObjectStore()
    put = lambda key, data, kind: store.put("listings", key, data, content_type=kind)  # noqa: E731
    put("incoming/shoe.png", png((60, 40), RED), "image/png")
    put("enhanced/incoming/shoe.png", png((240, 160), BLUE), "image/png")
    body = manifest(None, "", engines=[SR_RUN])  # type: ignore[arg-type]
    body["source"] = {"bucket": "listings", "key": "incoming/shoe.png", "width": 60, "height": 40}
    body["output"] = {"bucket": "listings", "key": "enhanced/incoming/shoe.png", "content_type": "image/png",
                      "width": 240, "height": 160}
    put("enhanced/incoming/shoe.png.manifest.json", json.dumps(body).encode(), "application/json")
    put("enhanced/failed/incoming/bad.jpg.json",
        json.dumps({"source": {"key": "incoming/bad.jpg"}, "reason": "corrupt_image", "message": "truncated"}).encode(),
        "application/json")
    # When the output prefix is reviewed
    review = load_s3("s3://listings/enhanced/", store)
    # Then the card has both images and the failure its reason
    [card] = review.cards
    assert card.name == "incoming/shoe.png" and card.before.data == png((60, 40), RED)
    assert card.after.content_type == "image/png"
    assert [(f.name, f.reason) for f in review.failures] == [("incoming/bad.jpg", "corrupt_image")]


def test_images_beside_the_page_are_written_and_linked(tmp_path):
    page = write_page(load_local(review_folder(tmp_path)), tmp_path / "site" / "index.html", images_beside=True)
    files = sorted(p.name for p in (tmp_path / "site" / "index_files").iterdir())
    assert len(files) == 6 and "data:image" not in page.read_text()
    assert all(f'src="index_files/{name}"' in page.read_text() for name in files)


@pytest.mark.parametrize("source, message", [
    ("http://example.com/x/", "neither a local folder nor an s3:// URI"),
    ("s3:///nobucket", "not an s3://bucket/prefix/ URI"),
])
def test_bad_source_is_a_typed_error(source, message):
    with pytest.raises(ReviewError, match=message):
        load(source, store_factory=MemoryObjectStore)


def test_cli_exits_2_with_a_message_for_an_empty_folder_or_a_file(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "photo.jpg").write_bytes(b"x")
    assert main(["review", str(tmp_path / "empty"), "--output", str(tmp_path / "p.html")]) == 2
    assert "holds no manifests or failure records" in capsys.readouterr().err
    assert main(["review", str(tmp_path / "photo.jpg"), "--output", str(tmp_path / "p.html")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists()


def test_cli_writes_the_page_and_prints_its_path(tmp_path, capsys):
    folder = review_folder(tmp_path)
    assert main(["review", str(folder), "--output", str(tmp_path / "page.html")]) == 0
    assert capsys.readouterr().out.strip() == f"review page: {(tmp_path / 'page.html').resolve()}"


def test_a_photo_whose_engines_the_gate_all_kept_is_kept_not_enhanced():
    from worker.review import outcome_of

    tone_ran = {**SR_RUN, "engine": "retouch-tone", "applied": False}
    gate = [{"step": "tone", "verdict": "kept", "reason": "no_visible_change", "detail": "dE 0.4"}]
    assert outcome_of(manifest(Path("a.png"), "a.png", engines=[tone_ran], gate=gate)) == "kept"
    assert outcome_of(manifest(Path("a.png"), "a.png", engines=[tone_ran, SR_RUN], gate=gate)) == "enhanced"
    assert outcome_of(manifest(Path("a.png"), "a.png", engines=[])) == "kept"


def test_a_cards_background_decision_is_shown_and_a_cut_out_sits_on_a_checkerboard(tmp_path):
    folder = review_folder(tmp_path)
    shoe = json.loads((folder / "shoe.manifest.json").read_text())
    shoe["background"] = {"mode": "transparent", "applied": True, "reason": "applied", "coverage": 0.3123,
                          "products": 2, "touches": ["bottom"], "confidence": 0.94}
    (folder / "shoe.manifest.json").write_text(json.dumps(shoe))
    lamp = json.loads((folder / "lamp.manifest.json").read_text())
    lamp["background"] = {"mode": "white", "applied": False, "reason": "low_confidence", "coverage": 0.2,
                          "products": 1, "touches": [], "confidence": 0.41, "shadow": False}
    (folder / "lamp.manifest.json").write_text(json.dumps(lamp))
    html = render(load_local(folder), lambda image: f"img/{image.name}")
    cards = {card.split("</h2>")[0]: card for card in html.split("<h2>")[1:]}
    assert ("transparent: applied <code>applied</code>, coverage 0.31, confidence 0.94, 2 products, "
            "touches bottom (transparent where the checkerboard shows)") in cards["shoe"]
    assert "white: kept as it was <code>low_confidence</code>, coverage 0.20, confidence 0.41<" in cards["lamp"]
    assert "<dt>background</dt>" not in cards["vase"]  # keep: no step, nothing said
    assert "repeating-conic-gradient" in html  # the viewport behind every image is a checkerboard
