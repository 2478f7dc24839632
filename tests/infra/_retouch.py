"""Real `retouch` processes (worker, ingesters) for the infra tests, each logging to a file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.infra.conftest import ROOT
from tests.photos import listing_photo

photo = listing_photo  # the same small JPEGs as the integration tests


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.args = args
        self.popen = subprocess.Popen([sys.executable, "-m", "worker.cli", *args], env=env, cwd=ROOT,
                                      stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"retouch {' '.join(self.args)} exited {self.popen.returncode}:\n"
                                 f"{self.log.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The test process's environment without any metrics dir of its own, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(RETOUCH_CACHE_DIR=str(tmp_path / "engine-cache"), RETOUCH_TARGET_SHORT_SIDE="96", **settings)
    return env


def wait_for(predicate, timeout: float, what: str, processes: list[Process] = ()):
    """Poll predicate until truthy; fail early, with its log, if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    logs = "\n".join(f"--- {p.args[0]}:\n{p.log.read_text(errors='replace')[-3000:]}" for p in processes)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
