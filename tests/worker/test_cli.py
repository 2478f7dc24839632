"""`retouch enhance` on local files: outputs named after inputs, one line per failure, exit 1, no traceback."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from worker.cli import main


@pytest.mark.slow
def test_enhance_writes_outputs_and_reports_failures(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RETOUCH_CACHE_DIR", str(tmp_path / "cache"))
    good = tmp_path / "shoe.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")

    code = main(["enhance", str(good), str(bad), str(empty), "--output", str(tmp_path / "out"),
                 "--task", "super_resolution", "--scale", "2", "--model", "retouch-sr-x2-bicubic",
                 "--backend", "torch"])

    assert code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(lines) == sorted([f"{bad}: not_an_image: not an image Pillow can identify",
                                    f"{empty}: empty_object: object is empty (0 bytes)"])
    with Image.open(io.BytesIO((tmp_path / "out" / "shoe.png").read_bytes())) as out:
        assert out.size == (64, 48)


def test_enhance_all_good_exits_zero_and_unknown_model_is_a_clean_failure(tmp_path, capsys):
    good = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(good)
    code = main(["enhance", str(good), "--output", str(tmp_path / "out"), "--model", "no-such-model",
                 "--task", "super_resolution", "--scale", "2"])
    assert code == 1
    assert capsys.readouterr().out.startswith(f"{good}: unknown_engine:")


def test_every_engine_family_is_reachable_from_the_cli():
    from worker.cli import build_parser

    parser = build_parser()
    train = parser.parse_args(["train", "retouch-inpaint", "--steps", "1"])
    assert train.model_id == "retouch-inpaint" and train.func.__name__ == "_run_train"
    assert parser.parse_args(["eval", "inpaint"]).task == "inpaint"
    assert parser.parse_args(["ingest", "amqp", "--url", "amqp://x"]).func.__name__ == "cmd_ingest_amqp"


@pytest.mark.slow
def test_enhance_writes_a_manifest_per_output_a_record_per_failure_and_the_review_page(tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.setenv("RETOUCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RETOUCH_PRICE_CPU_HOUR", "0.04")
    good = tmp_path / "shoe.png"
    Image.fromarray((np.random.default_rng(1).random((24, 32, 3)) * 255).astype(np.uint8)).save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    out = tmp_path / "out"

    code = main(["enhance", str(good), str(bad), "--output", str(out), "--task", "super_resolution", "--scale", "2",
                 "--model", "retouch-sr-x2-bicubic", "--backend", "torch", "--review"])

    assert code == 1
    manifest = json.loads((out / "shoe.manifest.json").read_text())
    assert manifest["source"]["path"] == str(good.resolve()) and manifest["output"]["path"] == "shoe.png"
    assert manifest["output"]["width"] == 64 and manifest["engines"][0]["engine"] == "retouch-sr-x2-bicubic"
    assert manifest["cost"]["cpu_seconds"] > 0 and manifest["cost"]["price"]["cpu_hour"] == 0.04
    failure = json.loads((out / "notes.failed.json").read_text())
    assert failure["reason"] == "not_an_image" and failure["source"]["path"] == str(bad.resolve())
    assert f"review page: {(out / 'review.html').resolve()}" in capsys.readouterr().out
    assert (out / "review.html").read_text().count('class="card"') == 1


def test_worker_runs_a_process_per_core_with_one_thread_each_on_cpu_and_one_per_gpu():
    from worker.cli import pool_layout

    # CPU: one pool process per core, one thread each (infra/bench/throughput.sh measured it faster).
    assert pool_layout(None, None, None, gpu=False, cores=2) == ("prefork", 2, 1)
    assert pool_layout(None, None, None, gpu=False, cores=16) == ("prefork", 16, 1)
    # Fewer processes (memory is short): each gets the cores left to it.
    assert pool_layout(None, 2, None, gpu=False, cores=16) == ("prefork", 2, 8)
    assert pool_layout("solo", 1, 3, gpu=False, cores=16) == ("solo", 1, 3)
    # GPU: one process, the runtimes' own thread defaults.
    assert pool_layout(None, None, None, gpu=True, cores=16) == ("solo", 1, 0)
