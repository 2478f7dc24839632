"""Ingestion: notifications in, one Celery task per created object version out.

`Enqueuer` is shared by the SQS consumer and the webhook receiver: parse, filter (prefix, recursion
guard), drop repeats seen moments ago, and enqueue with a stable task id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery

from worker import PIPELINE_VERSION
from worker.app import ENHANCE_TASK
from worker.events import ObjectCreated, parse_notification
from worker.metrics import get_metrics
from worker.pipeline.masks import is_sidecar
from worker.pipeline.objects import is_own_output
from worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnqueueResult:
    enqueued: int
    ignored: int


class _RecentIds:
    """A bounded memory of task ids enqueued lately: an SQS at-least-once repeat costs no broker message.

    Only an optimisation: the worker's dedupe step is what guarantees one output per version.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, task_id: str) -> bool:
        """True if new."""
        with self._lock:
            if task_id in self._ids:
                self._ids.move_to_end(task_id)
                return False
            self._ids[task_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)
            return True


class Enqueuer:
    def __init__(self, app: Celery, settings: Settings, source: str) -> None:
        self._app = app
        self._settings = settings
        self._source = source
        self._recent = _RecentIds()
        self._metrics = get_metrics()

    def wanted(self, record: ObjectCreated) -> bool:
        storage = self._settings.storage
        return (record.key.startswith(storage.input_prefix) and not is_own_output(record, storage)
                and not is_sidecar(record.key))

    def handle(self, payload: str | bytes | Mapping[str, Any],
               request: Mapping[str, Any] | None = None) -> EnqueueResult:
        """Enqueue every wanted record in `payload`. InvalidEvent propagates; broker errors propagate
        (the caller then keeps the message or answers 503, so nothing accepted is lost)."""
        counter = self._metrics.events
        try:
            parsed = parse_notification(payload)
        except ValueError:
            counter.labels(source=self._source, outcome="invalid").inc()
            raise
        ignored = parsed.ignored
        enqueued = 0
        for record in parsed.created:
            task_id = record.task_id(PIPELINE_VERSION)
            if not self.wanted(record) or not self._recent.add(task_id):
                ignored += 1
                continue
            self._app.send_task(
                ENHANCE_TASK,
                kwargs={"event": record.to_message(), "enqueued_at": time.time(), "request": dict(request or {})},
                task_id=task_id,
                queue=self._settings.broker.queue,
            )
            enqueued += 1
            log.info("enqueued %s/%s (%s)", record.bucket, record.key, task_id)
        if enqueued:
            counter.labels(source=self._source, outcome="enqueued").inc(enqueued)
        if ignored:
            counter.labels(source=self._source, outcome="ignored").inc(ignored)
        return EnqueueResult(enqueued, ignored)
