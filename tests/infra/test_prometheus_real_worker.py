"""Prometheus, with the project's config and rules, scrapes a real `retouch worker` and a real
`retouch ingest sqs` while uploads go through the whole loop (moto S3 + SQS, Redis broker)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from tests.infra._prometheus import free_port, running_prometheus
from tests.infra._retouch import Process, environment, photo, wait_for
from worker.demo import wire_bucket

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
STAGE_P50 = "histogram_quantile(0.5, sum by (le) (rate(retouch_stage_seconds_bucket[1m])))"


def test_prometheus_sees_real_tasks_events_and_stage_latency(tmp_path, monkeypatch) -> None:
    from moto.server import ThreadedMotoServer

    from tests.integration.conftest import broker_url

    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    redis_url = broker_url("redis")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    suffix = uuid.uuid4().hex[:8]
    queue_url = wire_bucket(endpoint, f"listings-{suffix}", f"uploads-{suffix}")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    env = environment(tmp_path, **AWS, RETOUCH_BROKER_URL=redis_url, RETOUCH_QUEUE=f"retouch-infra-{suffix}",
                      RETOUCH_DEAD_LETTER_QUEUE=f"retouch-infra-{suffix}.dead-letter",
                      RETOUCH_S3_ENDPOINT_URL=endpoint, RETOUCH_INPUT_PREFIX="incoming/", RETOUCH_SQS_WAIT_SECONDS="1")
    worker_port, ingester_port = free_port(), free_port()
    processes = [
        Process(["worker", "--loglevel", "INFO"], {**env, "RETOUCH_METRICS_PORT": str(worker_port),
                                                   "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics")},
                tmp_path / "worker.log"),
        Process(["ingest", "sqs", "--queue-url", queue_url, "--metrics-port", str(ingester_port)], env,
                tmp_path / "ingester.log"),
    ]
    try:
        with running_prometheus(tmp_path, [f"127.0.0.1:{worker_port}"],
                                [f"127.0.0.1:{ingester_port}"]) as prometheus:
            wait_for(lambda: prometheus.value('sum(up{job=~"retouch-worker|retouch-ingester"})') == 2, 120,
                     "both processes scraped", processes)
            # Two uploads one after the other, so rate() sees the counters move between scrapes.
            for done in (1, 2):
                s3.put_object(Bucket=f"listings-{suffix}", Key=f"incoming/photo-{done}.jpg", Body=photo(done))
                wait_for(lambda n=done: prometheus.value(
                    'sum(retouch_tasks_total{job="retouch-worker", outcome="succeeded"})') == n,
                    300, f"{done} succeeded task(s) in Prometheus", processes)

            assert prometheus.value('sum(retouch_tasks_total{outcome!="succeeded"})') in (None, 0.0)
            enqueued = 'sum(retouch_events_total{job="retouch-ingester", source="sqs", outcome="enqueued"})'
            # The two processes are scraped independently: the worker's count can arrive a scrape earlier.
            wait_for(lambda: prometheus.value(enqueued) == 2, 30, "two enqueued events in Prometheus", processes)
            assert prometheus.value(enqueued) == 2
            assert prometheus.value('max(retouch_source_queue_messages{job="retouch-ingester"})') is not None
            p50 = wait_for(lambda: prometheus.value(STAGE_P50), 30, "a stage latency p50", processes)
            assert 0 < p50 < 60
            assert prometheus.value('count(retouch_stage_seconds_count{stage="enhance"})') == 1
            roles = {r["metric"]["role"] for r in prometheus.query("retouch_worker_info")}
            assert roles == {"worker", "ingester"}
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            assert rules and all(rule["health"] == "ok" for rule in rules), rules
    finally:
        for process in processes:
            process.stop()
        moto.stop()
        import redis

        redis.Redis.from_url(redis_url).delete(env["RETOUCH_QUEUE"])
