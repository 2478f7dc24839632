"""`infra/gpu/check.sh`'s module: half precision against fp32 and speed per built-in, run here on the CPU
(bf16 as the half precision); on a machine without CUDA the GPU check says it is unverified."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from engines import gpu_check


def test_cpu_run_reports_agreement_and_speed_per_precision(tmp_path) -> None:
    report_path = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--device", "cpu", "--engines", "retouch-sr-x2-bicubic,retouch-inpaint", "--sizes", "48",
                           "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert set(report["peaks_gflops"]) == {"fp32", "bf16"}
    sr, inpaint = report["engines"]
    assert sr["half"] == "bf16" and sr["agreement_db"] >= 45
    assert {s["precision"] for s in sr["speed"]} == {"fp32", "bf16"}
    assert all(s["output_megapixels_per_s"] > 0 and s["percent_of_peak"] > 0 for s in sr["speed"])
    # A spec without half precision is measured in fp32 and says so.
    assert inpaint["agreement_db"] is None and inpaint["half"].startswith("none")
    assert [s["precision"] for s in inpaint["speed"]] == ["fp32"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run for real")
def test_without_cuda_the_script_says_the_gpu_path_is_unverified() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", "infra/gpu/check.sh"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == gpu_check.NO_CUDA and "unverified" in done.stderr

