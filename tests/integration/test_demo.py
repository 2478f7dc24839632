"""The README's first command: `retouch demo` on nothing but this package (embedded broker, moto server)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_the_whole_loop_with_the_embedded_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETOUCH_", "AWS_", "PROMETHEUS_"))}
    env["RETOUCH_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "demo", "--images", "2", "--timeout", "400",
         "--output", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "broker: sqla+sqlite:///" in result.stdout  # nothing configured: the embedded default
    assert "2/2 done" in result.stdout
    assert 'retouch_tasks_total{outcome="succeeded",reason="none"} 2.0' in result.stdout
    page = tmp_path / "out" / "review.html"
    assert f"review page: {page.resolve()}" in result.stdout
    assert page.read_text().count('class="card"') == 2
    assert len([path for path in (tmp_path / "out").iterdir() if path != page]) == 2
