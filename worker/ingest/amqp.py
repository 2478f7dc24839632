"""AMQP consumer for bucket notifications that RGW or MinIO publish to RabbitMQ.

RGW publishes raw S3-notification JSON to an existing exchange with the topic's name as routing key
(and does not declare the exchange), MinIO likewise with its configured routing key. We declare a
durable topic exchange and a durable queue bound to it, and ack a message only after its tasks are
enqueued: a broker outage leaves the message in RabbitMQ, nothing accepted is lost.
"""

from __future__ import annotations

import logging
import threading

from worker.events import InvalidEvent
from worker.ingest import Enqueuer

log = logging.getLogger(__name__)


class AmqpIngester:
    def __init__(self, enqueuer: Enqueuer, url: str, *, exchange: str, routing_key: str, queue: str,
                 prefetch: int = 16) -> None:
        self._enqueuer = enqueuer
        self._url = url
        self._exchange = exchange
        self._routing_key = routing_key
        self._queue = queue
        self._prefetch = prefetch
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _on_message(self, message) -> None:
        try:
            self._enqueuer.handle(message.body)
        except InvalidEvent as error:
            # Not a notification: redelivering cannot make it one. Counted (outcome="invalid") and dropped.
            log.warning("dropping invalid AMQP message: %s", error)
        except Exception:
            log.exception("could not enqueue an AMQP notification; it goes back to the queue")
            self._stop.wait(2)  # the task broker is down: back off rather than spin on redeliveries
            message.requeue()
            return
        message.ack()

    def run(self) -> None:
        from kombu import Connection, Consumer, Exchange, Queue

        exchange = Exchange(self._exchange, type="topic", durable=True)
        queue = Queue(self._queue, exchange, routing_key=self._routing_key, durable=True)
        log.info("consuming notifications from exchange %s (%s) via queue %s", self._exchange,
                 self._routing_key, self._queue)
        while not self._stop.is_set():
            try:
                with Connection(self._url) as connection:
                    with Consumer(connection, queues=[queue], on_message=self._on_message,
                                  prefetch_count=self._prefetch):
                        while not self._stop.is_set():
                            try:
                                connection.drain_events(timeout=1)
                            except TimeoutError:
                                continue
            except OSError:
                log.exception("AMQP connection lost; reconnecting in 2 s")
                self._stop.wait(2)
