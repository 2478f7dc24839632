"""A real Prometheus on loopback for tests: the project's own config and rules, 1 s scrapes, temp storage."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.infra.conftest import INFRA, tool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """Poll until predicate() is truthy; return its value or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> dict:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it returns nothing or NaN."""
        result = self.query(expr)
        if len(result) != 1:
            return None
        value = float(result[0]["value"][1])
        return None if value != value else value


@contextmanager
def running_prometheus(tmp_path: Path, workers: list[str], ingesters: list[str]) -> Iterator[Prometheus]:
    """Start Debian's prometheus with infra/prometheus/prometheus.yml, targets replaced by the given ones."""
    binary = tool("prometheus")
    home = tmp_path / "prometheus"
    shutil.copytree(INFRA / "prometheus", home, ignore=shutil.ignore_patterns("tests", "targets"))
    config = yaml.safe_load((home / "prometheus.yml").read_text())
    # Fast enough for a test to see two scrapes and a rule evaluation within seconds.
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    (home / "targets").mkdir()
    (home / "targets" / "worker.yml").write_text(yaml.safe_dump([{"targets": workers}]))
    (home / "targets" / "ingester.yml").write_text(yaml.safe_dump([{"targets": ingesters}]))
    port = free_port()
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {(home / 'prometheus.log').read_text()[-2000:]}")
        try:
            return urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_for(ready, 30, "prometheus to be ready")
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
