"""S3 answering 500, 503 and SlowDown, dropping connections, and dropping responses after a PUT succeeded:
every upload still gets exactly one output and one manifest; retries are counted; dead-lettered uploads
come back with `retouch replay`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.faults.stack import REPO, photo
from tests.faults.test_crashes import report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]


def test_transient_storage_faults_lose_and_duplicate_nothing(redis_server, make_stack, proxy):
    stack = make_stack(redis_server.url)
    workers = [stack.start_worker("w1"), stack.start_worker("w2")]
    stack.start_ingester()
    proxy.set_faults(rate=0.3, seed=13)  # 500, 503, SlowDown, dropped before and dropped after forwarding
    for index in range(40):
        stack.upload(f"incoming/flaky-{index}.png", photo(400 + index))
    seconds = stack.wait_for(lambda: stack.finished() == 40, 420, "every output", watch=workers)
    proxy.clear()
    counts = stack.check_exactly_once()
    stats = proxy.stats()
    assert stats["faults"]["drop_after"] >= 1 and stats["by_method"].get(("PUT", "drop_after"), 0) >= 1
    client_retries = sum(w.sample("retouch_storage_retries_total") for w in workers)
    task_retries = sum(w.sample("retouch_tasks_total", outcome="retried") for w in workers)
    refused = sum(w.sample("retouch_storage_retry_budget_exhausted_total") for w in workers)
    assert client_retries >= sum(stats["faults"].values()) * 0.5  # most faults were retried inside the client
    assert sum(w.sample("retouch_tasks_total", outcome="failed") for w in workers) == 0
    report("S3 faults at 30 %", **counts, requests=stats["received"], faults=dict(stats["faults"]),
           client_retries=int(client_retries), budget_refusals=int(refused), task_retries=int(task_retries),
           seconds=round(seconds, 1))


def replay(stack, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "worker.cli", "replay", *args], cwd=REPO,
                            env=stack.env(RETOUCH_S3_ENDPOINT_URL=stack.moto_url), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_uploads_dead_lettered_by_a_long_outage_are_replayed_once(redis_server, make_stack, proxy):
    # Given a short retry horizon and an S3 whose reads fail for good: the uploads are dead-lettered
    stack = make_stack(redis_server.url, RETOUCH_RETRY_HORIZON_SECONDS="6", RETOUCH_RETRY_BACKOFF_MAX_SECONDS="2",
                       RETOUCH_S3_MAX_ATTEMPTS="2")
    worker = stack.start_worker("w1")
    stack.start_ingester()
    proxy.set_faults(rate=1.0, kinds=("503",), methods={"GET"})
    for index in range(4):
        stack.upload(f"incoming/outage-{index}.png", photo(500 + index))
    stack.wait_for(lambda: len(stack.live_keys("enhanced/failed/")) == 4, 180, "four failure records",
                   watch=[worker])
    assert worker.sample("retouch_tasks_total", outcome="failed", reason="storage_unavailable") == 4
    assert worker.sample("retouch_tasks_total", outcome="retried", reason="storage_unavailable") >= 4

    # When S3 is healthy again and the operator replays the failure records, twice by mistake
    proxy.clear()
    assert "would replay 4 upload(s)" in replay(stack, "--bucket", stack.bucket, "--dry-run")
    assert "replayed 4 upload(s)" in replay(stack, "--bucket", stack.bucket, "--reason", "storage_unavailable")
    replay(stack, "--bucket", stack.bucket)
    # Then each gets exactly one output and one manifest, and its failure record is gone
    stack.wait_for(lambda: len(stack.live_keys("enhanced/failed/")) == 0
                   and sum(k.endswith(".manifest.json") for k in stack.live_keys("enhanced/")) == 4, 120,
                   "the replayed outputs", watch=[worker])
    versions = stack.versions("enhanced/")
    for item in stack.uploads:
        assert versions[f"enhanced/{item.key}"] == 1 and versions[f"enhanced/{item.key}.manifest.json"] == 1
    # And the dead-letter queue holds the same four, which --from-queue drains (their tasks are now no-ops)
    assert "replayed 4 upload(s)" in replay(stack, "--from-queue")
    assert "replayed 0 upload(s)" in replay(stack, "--from-queue")
    stack.wait_for(lambda: worker.sample("retouch_tasks_total", outcome="skipped") >= 4, 60, "the no-op replays")
    assert all(n == 1 for n in stack.versions("enhanced/incoming/").values())
    report("replay after a long outage", uploaded=4, dead_lettered=4, replayed=4, duplicated=0)


def test_the_client_retry_budget_runs_dry_under_a_fault_storm_and_refills(moto_server, proxy):
    import time

    import boto3

    from worker.errors import StorageUnavailable
    from worker.metrics import get_metrics
    from worker.storage import S3ObjectStore

    boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1").create_bucket(Bucket="budget")
    metrics = get_metrics()
    retried = metrics.storage_retries.labels(operation="HeadObject", reason="http_503")
    refused = metrics.storage_retry_budget_exhausted.labels(operation="HeadObject")
    store = S3ObjectStore(endpoint_url=proxy.url, region="us-east-1", max_attempts=3, retry_budget=56,
                          retry_refill_per_second=28)

    def storm_calls(n: int) -> tuple[float, float]:
        before = retried._value.get(), refused._value.get()
        for _ in range(n):
            with pytest.raises(StorageUnavailable):
                store.head("budget", "missing.png")
        return retried._value.get() - before[0], refused._value.get() - before[1]

    proxy.set_faults(rate=1.0, kinds=("503",))
    # A storm spends the budget (4 retries of 14 tokens), then the client stops retrying and says so
    assert storm_calls(4) == (4, 2)
    # Two seconds later the budget has refilled (botocore's own would wait for successes that never come)
    time.sleep(2.1)
    assert storm_calls(2) == (4, 0)
    proxy.clear()
    assert store.head("budget", "missing.png") is None  # and a 404 is an answer, not a fault
