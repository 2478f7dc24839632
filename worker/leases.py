"""Leases on in-flight messages, so a dead worker's task comes back in about a minute, a live one's never.

Redis and SQS hand a message to a consumer and take it back only when its visibility timeout passes
without an ack. A fixed timeout forces a bad choice: long (kombu's default hour) and a worker killed
outright, OOM kill or lost node, strands its task for that long; short and a long upscale is redelivered
while it is still running. So the timeout is short (`RETOUCH_LEASE_SECONDS`, default 60) and each live
worker renews it, every lease/4 seconds, for every message it holds: running, reserved, or waiting for a
retry countdown. When the worker dies the renewals stop and the message is redelivered within
lease + kombu's 10 s sweep (Redis) or lease (SQS).

RabbitMQ needs none of this: it requeues a consumer's unacked messages as soon as its connection drops
(at once for a killed process, after two missed 30 s heartbeats for a lost node).

Renewals run in a thread of the worker's main process, over their own connection, never the consumer's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from celery import bootsteps

log = logging.getLogger(__name__)


def held_messages() -> list:
    """The kombu messages this worker process holds un-acked: reserved, running, or scheduled for later."""
    from celery.worker import state

    held = []
    for group in (state.reserved_requests, state.active_requests, state.scheduled_requests):
        for _ in range(3):  # the WeakSets change under us as tasks come and go; a retry sees a settled copy
            try:
                held.extend(request.message for request in list(group))
                break
            except RuntimeError:
                continue
    unique = {id(message): message for message in held if message is not None}
    return list(unique.values())


class RedisLeases:
    """Moves a held message's score in kombu's `unacked_index` to now: the sweep restores only old scores."""

    def __init__(self, url: str, index_key: str = "unacked_index") -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._index_key = index_key

    def renew(self, messages: Iterable) -> int:
        tags = [message.delivery_tag for message in messages if message.delivery_tag]
        if not tags:
            return 0
        now = time.time()
        # XX: only update members that exist; an acked message must not be brought back into the index.
        return int(self._client.zadd(self._index_key, {tag: now for tag in tags}, xx=True, ch=True))


class SqsLeases:
    """Extends each held message's visibility with ChangeMessageVisibility."""

    def __init__(self, lease_seconds: int, client=None, region: str | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs", region_name=region)
        self._sqs = client
        self._lease = lease_seconds

    def renew(self, messages: Iterable) -> int:
        renewed = 0
        for message in messages:
            queue_url = (message.delivery_info or {}).get("sqs_queue")
            if not queue_url:
                continue
            self._sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message.delivery_tag,
                                                VisibilityTimeout=self._lease)
            renewed += 1
        return renewed


def leases_for(broker_url: str, lease_seconds: int, transport_options: dict):
    """The renewer a broker needs, or None (RabbitMQ, the embedded SQLite broker)."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        prefix = transport_options.get("global_keyprefix", "")
        return RedisLeases(broker_url, prefix + transport_options.get("unacked_index_key", "unacked_index"))
    if broker_url.startswith("sqs://"):
        return SqsLeases(lease_seconds, region=transport_options.get("region"))
    return None


class LeaseRenewer:
    """The renewal loop, apart from Celery so it can be tested on its own."""

    def __init__(self, leases, lease_seconds: float, messages=held_messages, on_result=None) -> None:
        self._leases = leases
        self._period = max(1.0, lease_seconds / 4)
        self._messages = messages
        self._on_result = on_result or (lambda result, count: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def renew_once(self) -> None:
        try:
            count = self._leases.renew(self._messages())
        except Exception as error:  # the broker is down: its messages stay put; try again next period
            log.warning("could not renew leases of in-flight messages: %s", error)
            self._on_result("failed", 1)
            return
        if count:
            self._on_result("renewed", count)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.renew_once()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def _count_renewals(result: str, count: int) -> None:
    from worker.metrics import get_metrics

    get_metrics().lease_renewals.labels(result=result).inc(count)


class LeaseRenewal(bootsteps.StartStopStep):
    """Consumer bootstep: renews this worker's in-flight messages while it runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.renewer: LeaseRenewer | None = None

    def start(self, consumer) -> None:
        if self.renewer is None:
            conf = consumer.app.conf
            options = dict(conf.broker_transport_options or {})
            lease = float(options.get("visibility_timeout") or 0)
            leases = leases_for(str(conf.broker_url), int(lease), options) if lease else None
            if leases is None:
                return
            self.renewer = LeaseRenewer(leases, lease, on_result=_count_renewals)
            log.info("renewing leases of in-flight messages every %.0f s (lease %.0f s)", max(1.0, lease / 4), lease)
        self.renewer.start()

    def stop(self, consumer) -> None:
        if self.renewer is not None:
            self.renewer.stop()

    def shutdown(self, consumer) -> None:
        self.stop(consumer)
