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

    Only an optimisation: the worker's dedupe step is what guarantees one output per version. An id is
    remembered only once its task is in the broker, so a redelivery after a failed enqueue is enqueued.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def seen(self, task_id: str) -> bool:
        with self._lock:
            if task_id in self._ids:
                self._ids.move_to_end(task_id)
                return True
            return False

    def add(self, task_id: str) -> None:
        with self._lock:
            self._ids[task_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)


def enqueue_failure_reason(error: BaseException) -> str:
    """A low-cardinality reason for a failed publish (metric label and log)."""
    from kombu.exceptions import OperationalError

    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return "broker_timeout"
    if isinstance(error, OperationalError | ConnectionError | OSError):
        return "broker_unavailable"
    return "internal_error"


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
        """Enqueue every wanted record in `payload`. InvalidEvent propagates; broker errors are counted
        (`retouch_enqueue_failures_total`) and propagate: the caller then keeps the message or answers 503,
        so nothing accepted is lost. Records enqueued before the failure are remembered, so the
        redelivered message enqueues only the rest."""
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
            if not self.wanted(record) or self._recent.seen(task_id):
                ignored += 1
                continue
            try:
                self._app.send_task(
                    ENHANCE_TASK,
                    kwargs={"event": record.to_message(), "enqueued_at": time.time(), "request": dict(request or {})},
                    task_id=task_id,
                    queue=self._settings.broker.queue,
                )
            except Exception as error:
                reason = enqueue_failure_reason(error)
                self._metrics.enqueue_failures.labels(source=self._source, reason=reason).inc()
                self._count(enqueued, ignored)
                log.warning("could not enqueue %s/%s (%s): %s", record.bucket, record.key, reason, error)
                raise
            self._recent.add(task_id)
            enqueued += 1
            log.info("enqueued %s/%s (%s)", record.bucket, record.key, task_id)
        self._count(enqueued, ignored)
        return EnqueueResult(enqueued, ignored)

    def _count(self, enqueued: int, ignored: int) -> None:
        if enqueued:
            self._metrics.events.labels(source=self._source, outcome="enqueued").inc(enqueued)
        if ignored:
            self._metrics.events.labels(source=self._source, outcome="ignored").inc(ignored)
