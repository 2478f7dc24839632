"""SQS long-poll consumer: a message is deleted only after all of its tasks are enqueued."""

from __future__ import annotations

import logging
import threading

from worker.events import InvalidEvent
from worker.ingest import Enqueuer
from worker.metrics import get_metrics

log = logging.getLogger(__name__)


class SqsIngester:
    def __init__(self, enqueuer: Enqueuer, queue_url: str, *, client=None, endpoint_url: str | None = None,
                 region: str = "us-east-1", wait_seconds: int = 20, retry_seconds: int = 5) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)
        self._sqs = client
        self._enqueuer = enqueuer
        self._queue_url = queue_url
        self._wait = wait_seconds
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> int:
        """Receive one batch, enqueue, delete what was handled; returns messages handled."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait,
            AttributeNames=["ApproximateReceiveCount"],
        )
        handled = []
        for message in response.get("Messages", []):
            try:
                self._enqueuer.handle(message["Body"])
            except InvalidEvent as error:
                # Not a notification: retrying cannot make it one. Counted (outcome="invalid") and dropped.
                log.warning("dropping invalid SQS message %s: %s", message.get("MessageId"), error)
            except Exception:
                # Broker down or similar: keep the message, and have SQS show it again in a few seconds rather
                # than after the queue's whole visibility timeout, so the outage costs seconds, not minutes.
                log.exception("could not enqueue SQS message %s; it will be redelivered in %d s",
                              message.get("MessageId"), self._retry_seconds)
                self._retry_soon(message)
                continue
            handled.append(message)
        if handled:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(handled)],
            )
        return len(handled)

    def _retry_soon(self, message) -> None:
        try:
            self._sqs.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                VisibilityTimeout=self._retry_seconds)
        except Exception:  # best effort: the queue's own visibility timeout redelivers it anyway
            log.warning("could not shorten the visibility of SQS message %s", message.get("MessageId"))

    def report_backlog(self) -> None:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        get_metrics().source_queue_messages.set(int(attributes.get("ApproximateNumberOfMessages", 0)))

    def run(self) -> None:
        log.info("consuming S3 notifications from %s", self._queue_url)
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.report_backlog()
            except Exception:
                log.exception("SQS poll failed; retrying in 2 s")
                self._stop.wait(2)
