"""AMQP ingester on real RabbitMQ (notifications) and Redis (tasks): raw RGW-style JSON in, one task out."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import pytest
import redis
from kombu import Connection, Exchange

from tests.integration.conftest import broker_url
from tests.worker.test_events import s3_record
from worker.app import create_app
from worker.ingest import Enqueuer
from worker.ingest.amqp import AmqpIngester
from worker.settings import load_settings

pytestmark = pytest.mark.integration


def test_rgw_style_messages_become_tasks_and_are_acked(monkeypatch):
    amqp_url = broker_url("rabbitmq")
    redis_url = broker_url("redis")
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("RETOUCH_BROKER_URL", redis_url)
    monkeypatch.setenv("RETOUCH_QUEUE", f"retouch-amqp-{suffix}")
    settings = load_settings()
    exchange, queue = f"notifications-{suffix}", f"notifications-{suffix}"
    ingester = AmqpIngester(Enqueuer(create_app(settings), settings, source="amqp"), amqp_url,
                            exchange=exchange, routing_key="retouch", queue=queue)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    tasks = redis.Redis.from_url(redis_url)
    try:
        # Given the ingester's queue is bound (it declares exchange and queue on start)
        with Connection(amqp_url) as connection:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    connection.default_channel.queue_declare(queue=queue, passive=True)
                    break
                except Exception:
                    connection.close()
                    connection.connect()
                    time.sleep(0.3)
            producer = connection.Producer(exchange=Exchange(exchange, type="topic", durable=True))
            # When RGW publishes two notifications (no content type: raw JSON) and one junk message
            for key in ("incoming/tee+shirt.jpg", "incoming/bag.jpg"):
                producer.publish(json.dumps({"Records": [s3_record(key=key, source="ceph:s3")]}).encode(),
                                 routing_key="retouch", serializer=None, content_type=None)
            producer.publish(b"not json", routing_key="retouch", serializer=None, content_type=None)
        # Then two tasks wait in the Celery queue, with the keys as RGW stored them
        deadline = time.monotonic() + 20
        while tasks.llen(settings.broker.queue) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        bodies = [json.loads(raw) for raw in tasks.lrange(settings.broker.queue, 0, -1)]
        keys = sorted(json.loads(base64.b64decode(b["body"]))[1]["event"]["key"] for b in bodies)
        assert keys == ["incoming/bag.jpg", "incoming/tee+shirt.jpg"]
        # And every message, junk included, was acked: nothing is left in the notification queue
        with Connection(amqp_url) as connection:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                _, ready, _consumers = connection.default_channel.queue_declare(queue=queue, passive=True)
                if ready == 0:
                    break
                time.sleep(0.3)
            assert ready == 0
    finally:
        ingester.stop()
        thread.join(10)
        tasks.delete(settings.broker.queue)
        with Connection(amqp_url) as connection:
            connection.default_channel.queue_delete(queue)
            connection.default_channel.exchange_delete(exchange)
