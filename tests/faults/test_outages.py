"""The task broker restarted while uploads keep arriving: every upload still gets exactly one output.

The ingester keeps each SQS message until its task is in the broker (it used to remember the task id first
and drop the redelivery as a repeat); the workers reconnect; tasks whose acks were lost run again and stop
at dedupe. The brokers keep their data across the restart (Redis with appendfsync always, RabbitMQ
durable queues and persistent messages), as the README asks of production brokers.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.stack import photo
from tests.faults.test_crashes import report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_broker_restarted_while_uploads_arrive(broker, request, make_stack):
    server = request.getfixturevalue("redis_server" if broker == "redis" else "rabbit_server")
    stack = make_stack(server.url)
    workers = [stack.start_worker("w1"), stack.start_worker("w2")]
    ingester = stack.start_ingester()
    for index in range(8):
        stack.upload(f"incoming/before-{index}.png", photo(100 + index))
    stack.wait_for(lambda: stack.finished() >= 4, 120, "the first outputs", watch=workers)

    # The outage: at least 5 s without a broker, an upload every 0.3 s throughout
    server.stop()
    outage_started = time.monotonic()
    during = 0
    while time.monotonic() - outage_started < 5 or during < 17:
        stack.upload(f"incoming/during-{during}.png", photo(200 + during))
        during += 1
        time.sleep(0.3)
    server.start()
    back = time.monotonic()
    for index in range(8):
        stack.upload(f"incoming/after-{index}.png", photo(300 + index))

    recovery = stack.wait_for(lambda: stack.finished() == len(stack.uploads), 240, "every output", watch=workers)
    counts = stack.check_exactly_once()
    failures = ingester.sample("retouch_enqueue_failures_total")
    assert failures >= 1, "the outage was never seen by the ingester"
    assert ingester.sample("retouch_enqueue_failures_total", reason="broker_unavailable") + ingester.sample(
        "retouch_enqueue_failures_total", reason="broker_timeout") == failures
    report(f"broker restarted ({broker})", **counts, uploaded_during_outage=during,
           outage_s=round(back - outage_started, 1), enqueue_failures=int(failures),
           all_outputs_after_restart_s=round(recovery, 1))
