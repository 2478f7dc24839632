"""Workers dying mid-task: a pool process, a whole worker (container OOM kill, lost node), and a poison upload
that kills every worker that runs it. Real brokers, workers, ingester and moto; the kills are real SIGKILLs
(the kernel's OOM killer does nothing else)."""

from __future__ import annotations

import os
import time

import pytest

from tests.faults.stack import FaultStack, Process, photo

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

SLOW = {"RETOUCH_TARGET_SHORT_SIDE": "3072"}  # a 768 px photo upscaled x4: 10-15 s on one core
# A task that must outlive a 12 s wait whatever the CPU: a 1,024 px photo upscaled x4 (about 1.8x the work).
SLOWER = {"RETOUCH_TARGET_SHORT_SIDE": "4096"}
# Seconds; production's default is 60 (README: recovery bounds). RETOUCH_FAULT_LEASE_SECONDS=60 measures that.
LEASE = os.environ.get("RETOUCH_FAULT_LEASE_SECONDS", "5")


def start_lines(process: Process, key: str) -> list[str]:
    """The worker's "starting <bucket>/<key> (attempt N[, redelivered])" lines for this key."""
    return [line for line in process.log().splitlines() if " starting " in line and f"/{key} (attempt" in line]


def starts(process: Process, key: str) -> int:
    return len(start_lines(process, key))


def running_on(stack: FaultStack, key: str, workers: list[Process]) -> Process:
    found: list[Process] = []

    def one_started() -> bool:
        found[:] = [w for w in workers if starts(w, key)]
        return bool(found)

    stack.wait_for(one_started, 120, f"a worker to start {key}")
    return found[0]


def report(scenario: str, **figures) -> None:
    print(f"\nFAULT-REPORT {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def test_pool_process_killed_mid_task(redis_server, make_stack):
    stack = make_stack(redis_server.url, **SLOW)
    worker = stack.start_worker("w1")
    stack.start_ingester()
    stack.upload("incoming/slow.png", photo(1, (768, 768)))
    running_on(stack, "incoming/slow.png", [worker])
    time.sleep(2)
    killed = time.monotonic()
    worker.kill_pool_child()
    restarted = stack.wait_for(lambda: starts(worker, "incoming/slow.png") >= 2, 60, "the task to start again")
    stack.wait_for(lambda: stack.finished() == 1, 120, "the output", watch=[worker])
    counts = stack.check_exactly_once()
    assert [line.endswith("redelivered)") for line in start_lines(worker, "incoming/slow.png")] == [False, True]
    assert worker.sample("retouch_redeliveries_total", outcome="resumed") == 1
    report("pool child killed", **counts, recovery_s=round(restarted, 1),
           output_after_kill_s=round(time.monotonic() - killed, 1))


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_whole_worker_killed_mid_task(broker, request, make_stack):
    server = request.getfixturevalue("redis_server" if broker == "redis" else "rabbit_server")
    stack = make_stack(server.url, RETOUCH_LEASE_SECONDS=LEASE, **SLOWER)
    workers = [stack.start_worker("w1"), stack.start_worker("w2")]
    stack.start_ingester()
    key = "incoming/slow.png"
    # (A 768 px photo once finished in 10.4 s, before the kill below, and the survivor had nothing to take.)
    stack.upload(key, photo(2, (1024, 1024)))
    victim = running_on(stack, key, workers)
    survivor = next(w for w in workers if w is not victim)
    # With the test's 5 s lease the task outlives it twice over while its worker lives: renewed, never
    # handed to the other worker
    time.sleep(max(12.0, float(LEASE) / 4 + 3))
    assert starts(survivor, key) == 0, "a live worker's task was redelivered"
    if broker == "redis":
        assert victim.sample("retouch_lease_renewals_total", result="renewed") >= 1
    killed = time.monotonic()
    victim.kill_whole()
    recovery = stack.wait_for(lambda: starts(survivor, key) == 1, 150, "the survivor to take the task over")
    stack.wait_for(lambda: stack.finished() == 1, 150, "the output", watch=[survivor])
    counts = stack.check_exactly_once()
    assert survivor.sample("retouch_redeliveries_total", outcome="resumed") == 1
    report(f"whole worker killed ({broker})", **counts, recovery_s=round(recovery, 1),
           output_after_kill_s=round(time.monotonic() - killed, 1))


def test_poison_upload_is_dead_lettered_after_killing_three_workers(redis_server, make_stack):
    # Given an upload whose processing kills its pool process each time (we play the OOM killer)
    stack = make_stack(redis_server.url, **SLOW)
    worker = stack.start_worker("w1")
    stack.start_ingester()
    stack.upload("incoming/fine.png", photo(3))
    poison = stack.upload("incoming/poison.png", photo(4, (768, 768)), good=False)
    for death in range(1, 4):
        stack.wait_for(lambda d=death: starts(worker, poison.key) == d, 120, f"delivery {death} of the poison")
        time.sleep(1)
        worker.kill_pool_child()
    # Then the fourth delivery is not run but dead-lettered with reason worker_lost; the other upload is fine
    stack.wait_for(lambda: stack.finished() == 2, 120, "the failure record", watch=[worker])
    record = stack.s3.get_object(Bucket=stack.bucket, Key=f"enhanced/failed/{poison.key}.json")["Body"].read()
    assert b'"reason": "worker_lost"' in record
    counts = stack.check_exactly_once()
    assert starts(worker, poison.key) == 4 and "died 3 times" in worker.log()
    assert worker.sample("retouch_tasks_total", outcome="failed", reason="worker_lost") == 1
    assert worker.sample("retouch_redeliveries_total", outcome="dead_lettered") == 1
    assert worker.sample("retouch_redeliveries_total", outcome="resumed") == 2
    assert stack.live_keys("enhanced/inflight/") == set()  # the death ledger is cleared
    report("poison upload", **counts, deaths_before_dead_letter=3)
