"""Celery tasks: thin. Parse the message, run the pipeline, map the outcome to ack, retry or dead-letter.

Retryable errors (storage faults, throttling, GPU memory) are retried with exponential backoff and full
jitter until `RETOUCH_RETRY_HORIZON_SECONDS` after the first attempt, then dead-lettered. A redelivery
after the worker died is counted (`worker.redeliveries`); the `RETOUCH_MAX_WORKER_LOST`-th is
dead-lettered as `worker_lost` instead of being run again.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject, Retry

from worker import PIPELINE_VERSION
from worker.app import DEAD_LETTER_TASK, ENHANCE_TASK
from worker.errors import InvalidRequest, RetouchError, WorkerLost
from worker.events import ObjectCreated
from worker.metrics import FAILED, RETRIED, SKIPPED, SUCCEEDED
from worker.pipeline.job import Request
from worker.settings import Settings

log = logging.getLogger(__name__)


def retry_delay(attempt: int, cap: float) -> float:
    """Exponential backoff with full jitter (1 s, 2 s, 4 s ... capped), so retries never arrive in step."""
    return random.uniform(0.5, 1.0) * min(cap, 2.0**attempt)


def was_redelivered(delivery_info: dict | None, properties: dict | None = None) -> bool:
    """Whether the broker handed this message out before: Redis (kombu's restore) and RabbitMQ flag it in the
    delivery info; kombu's SQS transport leaves the SQS message, with its receive count, in the properties."""
    if (delivery_info or {}).get("redelivered"):
        return True
    sqs_message = ((properties or {}).get("delivery_info") or {}).get("sqs_message") or {}
    receives = (sqs_message.get("Attributes") or {}).get("ApproximateReceiveCount")
    return receives is not None and int(receives) > 1


def register_tasks(app: Celery, settings: Settings) -> None:
    broker = settings.broker

    @app.task(name=ENHANCE_TASK, bind=True, max_retries=None)
    def enhance_object(self: Task, event: dict[str, Any], enqueued_at: float | None = None,
                       request: dict[str, Any] | None = None, first_attempt_at: float | None = None,
                       replay: bool = False) -> str:
        from worker.processing import process_upload, upload_is_finished, worker_context, write_failure_record
        from worker.redeliveries import DeathLedger

        ctx = worker_context()
        record = ObjectCreated.from_message(event)
        first_attempt_at = first_attempt_at or time.time()
        task_id = self.request.id or record.task_id(PIPELINE_VERSION)
        ledger = DeathLedger(ctx.store, ctx.settings.storage)
        redelivered = was_redelivered(self.request.delivery_info, self.request.properties)
        log.info("starting %s/%s (attempt %d%s)", record.bucket, record.key, self.request.retries + 1,
                 ", redelivered" if redelivered else "")
        try:
            if redelivered:
                deaths = ledger.record_redelivery(record, task_id)
                if deaths >= broker.max_worker_lost and not upload_is_finished(record, ctx):
                    ctx.metrics.redeliveries.labels(outcome="dead_lettered").inc()
                    raise WorkerLost(f"the worker running this upload died {deaths} times; not running it again")
                ctx.metrics.redeliveries.labels(outcome="resumed").inc()
                log.warning("%s/%s redelivered: its worker died or lost the broker (%d time(s) in a row)",
                            record.bucket, record.key, deaths)
            try:
                wanted = Request(**(request or {}))
            except TypeError as error:  # a message from a newer or foreign producer
                raise InvalidRequest(f"unknown request fields: {error}") from error
            job = process_upload(record, ctx, enqueued_at=enqueued_at, request=wanted, replay=replay)
            skipped = "skipped" in job.outputs
            outcome = SKIPPED if skipped else SUCCEEDED
            ctx.metrics.tasks.labels(outcome=outcome, reason="duplicate" if skipped else "none").inc()
            if redelivered:
                ledger.clear(record, task_id)
            return outcome
        except RetouchError as error:
            failure = error
        except Exception as error:  # a bug, not bad input: record it, never retry-storm on it
            log.exception("unexpected error on %s/%s", record.bucket, record.key)
            failure = RetouchError(f"{type(error).__name__}: {error}")

        if redelivered:
            ledger.clear(record, task_id)
        attempts = self.request.retries + 1
        elapsed = time.time() - first_attempt_at
        if failure.retryable and elapsed < broker.retry_horizon_seconds and self.request.retries < broker.max_retries:
            ctx.metrics.tasks.labels(outcome=RETRIED, reason=failure.reason).inc()
            countdown = min(retry_delay(self.request.retries, broker.retry_backoff_max_seconds),
                            max(1.0, broker.retry_horizon_seconds - elapsed))
            log.warning("retrying %s/%s in %.0f s (%s, attempt %d, %.0f s since the first): %s", record.bucket,
                        record.key, countdown, failure.reason, attempts, elapsed, failure)
            try:
                raise self.retry(countdown=countdown, exc=failure,
                                 kwargs={"event": event, "enqueued_at": enqueued_at, "request": request,
                                         "first_attempt_at": first_attempt_at, "replay": replay})
            except Retry:
                raise
            except Exception as error:  # the broker refused the retry message: keep this one instead of acking it
                log.warning("could not schedule the retry of %s/%s (%s); requeueing it", record.bucket, record.key,
                            error)
                raise Reject(str(error), requeue=True) from error

        ctx.metrics.tasks.labels(outcome=FAILED, reason=failure.reason).inc()
        log.warning("failed %s/%s permanently (%s, %d attempts over %.0f s): %s", record.bucket, record.key,
                    failure.reason, attempts, elapsed, failure)
        try:
            write_failure_record(ctx.store, record, ctx, failure, attempts)
        except RetouchError:
            log.exception("could not write the failure record for %s/%s", record.bucket, record.key)
        try:
            app.send_task(DEAD_LETTER_TASK, kwargs={"event": event, "reason": failure.reason,
                                                    "message": str(failure)}, queue=broker.dead_letter_queue)
        except Exception:  # the failure record above is what `retouch replay` reads when the queue lacks it
            log.exception("could not dead-letter %s/%s", record.bucket, record.key)
        return "failed"

    @app.task(name=DEAD_LETTER_TASK)
    def dead_letter(event: dict[str, Any], reason: str, message: str) -> None:
        """Never consumed by workers: `retouch replay --from-queue` drains these back into the main queue."""
        log.error("dead letter %s/%s: %s (%s)", event.get("bucket"), event.get("key"), reason, message)


