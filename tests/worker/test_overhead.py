"""Pipeline overhead and throughput figures read from real `retouch enhance` manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.overhead import main, photo_cost, read_costs, summary


def test_overhead_is_every_step_but_the_engines() -> None:
    manifest = {"timings_seconds": {"decode": 0.02, "enhance": 1.5, "encode": 0.08},
                "engines": [{"seconds": 1.0}, {"seconds": 0.4}]}
    cost = photo_cost(manifest, "p")
    assert cost.seconds == pytest.approx(1.6) and cost.engine_seconds == pytest.approx(1.4)
    assert cost.overhead_seconds == pytest.approx(0.2) and cost.overhead_share == pytest.approx(0.2 / 1.4)
    assert summary([cost, cost])["overhead_share_of_engines"] == pytest.approx(0.1429, abs=1e-4)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("listing")
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = np.full((96, 80, 3), 240, np.uint8)
        pixels[20:70, 15:60] = rng.integers(0, 255, 3)
        Image.fromarray(pixels).save(folder / f"p{i}.png")
    return folder


@pytest.mark.slow
def test_enhanced_photos_report_their_overhead(photos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "worker.cli", "enhance", *sorted(map(str, photos.iterdir())),
                           "--scale", "2", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    costs = read_costs(out, skip_first=True)
    assert [c.name for c in costs] == ["p1", "p2"]  # the cold first photo is left out
    assert all(c.engine_seconds > 0 and c.seconds >= c.engine_seconds for c in costs)
    assert main([str(out), "--skip-first", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["photos"] == 2 and report["summary"]["overhead_share_of_engines"] >= 0


@pytest.mark.slow
def test_throughput_script_measures_each_split_of_the_cores(photos: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", "infra/bench/throughput.sh", str(photos), "--scale", "2"], capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    cores = os.cpu_count() or 1
    assert [int(r[0]) * int(r[1]) for r in rows] == [cores] * len(rows) and int(rows[0][0]) == 1
    assert all(float(r[4]) > 0 for r in rows)  # images/s
