"""Celery tasks: thin. Parse the message, run the pipeline, map the outcome to ack, retry or dead-letter."""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Celery, Task

from worker.app import DEAD_LETTER_TASK, ENHANCE_TASK
from worker.errors import InvalidRequest, RetouchError
from worker.events import ObjectCreated
from worker.metrics import FAILED, RETRIED
from worker.pipeline.job import Request
from worker.settings import Settings

log = logging.getLogger(__name__)


def retry_delay(attempt: int, cap: float) -> float:
    """Exponential backoff with full jitter (1 s, 2 s, 4 s ... capped), so retries never arrive in step."""
    return random.uniform(0.5, 1.0) * min(cap, 2.0**attempt)


def register_tasks(app: Celery, settings: Settings) -> None:
    max_retries = settings.broker.max_retries
    backoff_cap = settings.broker.retry_backoff_max_seconds

    @app.task(name=ENHANCE_TASK, bind=True, max_retries=max_retries)
    def enhance_object(self: Task, event: dict[str, Any], enqueued_at: float | None = None,
                       request: dict[str, Any] | None = None) -> str:
        from worker.processing import process_upload, worker_context, write_failure_record

        ctx = worker_context()
        record = ObjectCreated.from_message(event)
        try:
            try:
                wanted = Request(**(request or {}))
            except TypeError as error:  # a message from a newer or foreign producer
                raise InvalidRequest(f"unknown request fields: {error}") from error
            job = process_upload(record, ctx, enqueued_at=enqueued_at, request=wanted)
            return "skipped" if "skipped" in job.outputs else "succeeded"
        except RetouchError as error:
            failure = error
        except Exception as error:  # a bug, not bad input: record it, never retry-storm on it
            log.exception("unexpected error on %s/%s", record.bucket, record.key)
            failure = RetouchError(f"{type(error).__name__}: {error}")

        attempts = self.request.retries + 1
        if failure.retryable and self.request.retries < max_retries:
            ctx.metrics.tasks.labels(outcome=RETRIED, reason=failure.reason).inc()
            log.warning("retrying %s/%s (%s): %s", record.bucket, record.key, failure.reason, failure)
            raise self.retry(countdown=retry_delay(self.request.retries, backoff_cap), exc=failure)

        ctx.metrics.tasks.labels(outcome=FAILED, reason=failure.reason).inc()
        log.warning("failed %s/%s permanently (%s): %s", record.bucket, record.key, failure.reason, failure)
        try:
            write_failure_record(ctx.store, record, ctx, failure, attempts)
        except RetouchError:
            log.exception("could not write the failure record for %s/%s", record.bucket, record.key)
        app.send_task(DEAD_LETTER_TASK, kwargs={"event": event, "reason": failure.reason, "message": str(failure)},
                      queue=settings.broker.dead_letter_queue)
        return "failed"

    @app.task(name=DEAD_LETTER_TASK)
    def dead_letter(event: dict[str, Any], reason: str, message: str) -> None:
        """Consumed only by an operator replaying failures (`celery -Q retouch.dead-letter`); logs them."""
        log.error("dead letter %s/%s: %s (%s)", event.get("bucket"), event.get("key"), reason, message)
