"""`retouch replay`: send dead-lettered uploads through the pipeline again, once the cause is fixed.

Two sources, because either can be incomplete: the dead-letter queue (a record per permanent failure,
in the broker) and the failure records under `<output prefix>failed/` (in the bucket, written first).
Each replayed upload is enqueued as a normal enhance task marked `replay`; the pipeline's exactly-once
protocol makes a replay of an upload that meanwhile got its output a no-op, and a replay that succeeds
removes the failure record. A dead-letter message is acked only after its task is enqueued.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from celery import Celery

from worker import PIPELINE_VERSION
from worker.app import ENHANCE_TASK
from worker.events import ObjectCreated
from worker.settings import Settings
from worker.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class ReplaySummary:
    enqueued: list[str] = field(default_factory=list)  # "bucket/key (reason)"
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"replayed {item}" for item in self.enqueued] + [f"left {item}" for item in self.skipped]


def _enqueue(app: Celery, settings: Settings, event: dict) -> None:
    record = ObjectCreated.from_message(event)
    app.send_task(ENHANCE_TASK, kwargs={"event": event, "enqueued_at": time.time(), "replay": True},
                  task_id=record.task_id(PIPELINE_VERSION), queue=settings.broker.queue)


def _wanted(reason: str, reasons: Iterable[str] | None) -> bool:
    return not reasons or reason in set(reasons)


def replay_failure_records(app: Celery, settings: Settings, store: ObjectStore, bucket: str, *, prefix: str = "",
                           reasons: Iterable[str] | None = None, dry_run: bool = False) -> ReplaySummary:
    """Enqueue the upload of every failure record under `<output prefix>failed/<prefix>` in `bucket`."""
    summary = ReplaySummary()
    root = f"{settings.storage.output_prefix}failed/{prefix}"
    for key in store.list_keys(bucket, root):
        body = json.loads(store.get(bucket, key, max_bytes=1 << 20).data)
        source, reason = body["source"], body.get("reason", "unknown")
        label = f"{source['bucket']}/{source['key']} ({reason})"
        if not _wanted(reason, reasons):
            summary.skipped.append(label)
            continue
        if not dry_run:
            _enqueue(app, settings, source)
        summary.enqueued.append(label)
    return summary


def replay_dead_letter_queue(app: Celery, settings: Settings, *, reasons: Iterable[str] | None = None,
                             dry_run: bool = False, limit: int | None = None) -> ReplaySummary:
    """Drain the dead-letter queue into the main queue (messages of other reasons go back untouched)."""
    from kombu.simple import SimpleQueue

    summary = ReplaySummary()
    left_for_later = []
    with app.connection_for_write() as connection:
        queue = SimpleQueue(connection, settings.broker.dead_letter_queue)
        try:
            while limit is None or len(summary.enqueued) < limit:
                try:
                    message = queue.get(block=True, timeout=2)
                except queue.Empty:
                    break
                _, kwargs, _ = message.decode()
                event, reason = kwargs["event"], kwargs.get("reason", "unknown")
                label = f"{event['bucket']}/{event['key']} ({reason})"
                wanted = _wanted(reason, reasons)
                if dry_run or not wanted:
                    left_for_later.append(message)  # requeued below, after the loop, so it is not read twice
                    (summary.enqueued if wanted else summary.skipped).append(label)
                    continue
                _enqueue(app, settings, event)
                message.ack()
                summary.enqueued.append(label)
        finally:
            for message in left_for_later:
                message.requeue()
            queue.close()
    return summary
