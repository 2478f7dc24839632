"""A real Prometheus, with the project's config and alert rules, scrapes worker and ingester processes.

The processes are stand-ins that serve `worker.metrics.get_metrics()` through `serve_metrics` and record
small jobs; the full path through real `retouch` processes is in test_prometheus_real_worker.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.infra._prometheus import free_port, running_prometheus, wait_for
from tests.infra.conftest import ROOT


def alert_count() -> int:
    import yaml

    rules = yaml.safe_load((ROOT / "infra" / "prometheus" / "rules" / "retouch-alerts.yml").read_text())
    return sum(1 for group in rules["groups"] for rule in group["rules"] if "alert" in rule)

STAGE_P50 = "histogram_quantile(0.5, sum by (le) (rate(retouch_stage_seconds_bucket[1m])))"


@pytest.fixture
def stand_ins():
    ports = {"worker": free_port(), "ingester": free_port()}
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.infra._metrics_process", "--port", str(port),
                          "--role", role, "--seconds", "60"], cwd=ROOT)
        for role, port in ports.items()
    ]
    yield ports
    for process in processes:
        process.terminate()
        process.wait(10)


def test_prometheus_scrapes_tasks_and_stage_latency(tmp_path, stand_ins) -> None:
    # Given Prometheus running the project's config, pointed at a worker and an ingester
    with running_prometheus(tmp_path, [f"127.0.0.1:{stand_ins['worker']}"],
                            [f"127.0.0.1:{stand_ins['ingester']}"]) as prometheus:
        # When both have been scraped a few times while jobs run
        wait_for(lambda: prometheus.value('sum(up{job=~"retouch-worker|retouch-ingester"})') == 2, 30,
                 "both targets up")
        # Then the task counters and a stage latency quantile are queryable
        succeeded = wait_for(
            lambda: prometheus.value('sum(retouch_tasks_total{job="retouch-worker", outcome="succeeded"})'), 30,
            "succeeded tasks")
        assert succeeded >= 1
        p50 = wait_for(lambda: prometheus.value(STAGE_P50), 30, "a stage latency p50")
        assert 0.005 < p50 < 1  # the stand-in's stages take 5 ms to 0.4 s
        info = prometheus.query("retouch_worker_info")
        assert {r["metric"]["role"] for r in info} == {"worker", "ingester"}
        # And the alert rules loaded and evaluate without errors against real series
        rules = wait_for(lambda: [r for g in prometheus.api("rules")["groups"] for r in g["rules"]
                                  if r.get("lastEvaluation", "").startswith("2")], 30, "a rule evaluation")
        assert len(rules) == 10 and all(rule["health"] == "ok" for rule in rules), rules
