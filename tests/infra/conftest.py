"""Helpers for the infra tests: where infra/ is, and skipping when a tool is absent locally.

CI runs infra/ci/install-tools.sh first, so there every tool is present and nothing here skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def tool(name: str, *, installed_by_ci: bool = True, why_absent: str = "") -> str:
    """Path of a command-line tool (the venv's bin first), or skip the calling test saying why.

    Tools that infra/ci/install-tools.sh installs fail the test in CI instead of skipping, so a broken
    install step cannot turn the suite green by skipping everything.
    """
    venv_bin = Path(sys.executable).parent
    found = shutil.which(name, path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        if not installed_by_ci:
            pytest.skip(f"{name} is not installed here: {why_absent}")
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: infra/ci/install-tools.sh should have installed it")
        pytest.skip(f"{name} is not installed here; run infra/ci/install-tools.sh")
    return found


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a tool, failing the test with its whole output when it exits non-zero."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result
