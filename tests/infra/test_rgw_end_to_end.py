"""Ceph RGW end to end: uploads to a real RGW reach a real `retouch ingest webhook` (a persistent
HTTP topic) or `retouch ingest amqp` (an AMQP topic on RabbitMQ) through RGW's own bucket
notifications, a real `retouch worker` enhances them and writes the outputs back to RGW. Nothing is
lost (every upload has its output) and nothing is duplicated (one version per output in a versioned
bucket).

Uploads made while the ingester is down are not covered: Ceph 16's persistent-topic retry was seen to
stall after a failed push (infra/ceph/README.md)."""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid

import pytest

from tests.infra._prometheus import free_port
from tests.infra._retouch import Process, environment, photo, wait_for
from tests.infra.rgw import REGION, running_rgw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "rgw-webhook-secret"


def metric(port: int, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _exchange_exists(url: str, name: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url) as connection:
            connection.default_channel.exchange_declare(name, "topic", passive=True)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("transport", ["webhook", "amqp"])
def test_uploads_to_rgw_come_back_enhanced_once_each(tmp_path, transport) -> None:
    from tests.integration.conftest import broker_url

    redis_url = broker_url("redis")
    amqp_url = broker_url("rabbitmq") if transport == "amqp" else None
    with running_rgw(tmp_path / "rgw") as rgw:
        # Given a versioned bucket whose ObjectCreated events under incoming/ go to a persistent topic
        # pushing to the webhook ingester's port (nothing listens there yet)
        bucket, suffix = "listings", uuid.uuid4().hex[:8]
        webhook_port, worker_port, ingester_port = free_port(), free_port(), free_port()
        rgw.s3.create_bucket(Bucket=bucket)
        rgw.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        exchange = f"rgw-notifications-{suffix}"
        if transport == "webhook":
            attributes = {"push-endpoint": f"http://127.0.0.1:{webhook_port}/events?token={SECRET}",
                          "persistent": "true"}
        else:  # RGW logs in as guest, which RabbitMQ allows from loopback
            attributes = {"push-endpoint": "amqp://127.0.0.1:5672", "amqp-exchange": exchange,
                          "amqp-ack-level": "broker", "persistent": "true"}
        topic = rgw.sns.create_topic(Name="retouch", Attributes=attributes)["TopicArn"]
        rgw.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "TopicConfigurations": [{"Id": "retouch", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"],
                                     "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}}]})
        env = environment(tmp_path, **rgw.credentials, RETOUCH_S3_ENDPOINT_URL=rgw.endpoint, RETOUCH_S3_REGION=REGION,
                          RETOUCH_BROKER_URL=redis_url, RETOUCH_QUEUE=f"retouch-rgw-{suffix}",
                          RETOUCH_DEAD_LETTER_QUEUE=f"retouch-rgw-{suffix}.dead-letter",
                          RETOUCH_INPUT_PREFIX="incoming/", RETOUCH_WEBHOOK_SECRET=SECRET)
        worker = Process(["worker", "--loglevel", "INFO"],
                         {**env, "RETOUCH_METRICS_PORT": str(worker_port),
                          "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics")}, tmp_path / "worker.log")
        processes = [worker]
        try:
            # When the ingester is up and three photos are uploaded
            if transport == "webhook":
                args = ["ingest", "webhook", "--host", "127.0.0.1", "--port", str(webhook_port)]
            else:
                args = ["ingest", "amqp", "--url", amqp_url, "--exchange", exchange, "--routing-key", "retouch",
                        "--queue", exchange]
            ingester = Process([*args, "--metrics-port", str(ingester_port)], env, tmp_path / "ingester.log")
            processes.append(ingester)
            if transport == "webhook":
                wait_for(lambda: _listening(webhook_port), 60, "the webhook port", processes)
            else:  # RGW publishes to an exchange it does not declare: wait for the ingester's
                wait_for(lambda: _exchange_exists(amqp_url, exchange), 60, "the AMQP exchange", processes)
            for index, key in enumerate(("incoming/early bird.jpg", "incoming/shoe.jpg", "incoming/red dress.jpg")):
                rgw.s3.put_object(Bucket=bucket, Key=key, Body=photo(index))

            # Then each comes back as one enhanced image and one manifest, written once
            def manifests() -> list[str]:
                listed = rgw.s3.list_objects_v2(Bucket=bucket, Prefix="enhanced/").get("Contents", [])
                return sorted(o["Key"] for o in listed if o["Key"].endswith(".manifest.json"))

            wait_for(lambda: len(manifests()) >= 3, 240, "three manifests in RGW", processes)
            assert manifests() == [f"enhanced/incoming/{name}.manifest.json"
                                   for name in ("early bird.jpg", "red dress.jpg", "shoe.jpg")]
            versions = rgw.s3.list_object_versions(Bucket=bucket, Prefix="enhanced/")["Versions"]
            outputs = [v["Key"] for v in versions if not v["Key"].endswith(".manifest.json")]
            assert len(outputs) == len(set(outputs)) == 3, outputs
            failed = rgw.s3.list_objects_v2(Bucket=bucket, Prefix="enhanced/failed/").get("KeyCount", 0)
            assert failed == 0
            manifest = json.loads(rgw.s3.get_object(Bucket=bucket, Key=manifests()[0])["Body"].read())
            assert manifest["engines"]
            # And the processes' own counters agree: three events enqueued, three tasks succeeded
            wait_for(lambda: metric(worker_port, "retouch_tasks_total", outcome="succeeded") == 3, 30,
                     "three successes in the worker's metrics", processes)
            assert metric(ingester_port, "retouch_events_total", source=transport, outcome="enqueued") == 3
            assert metric(worker_port, "retouch_tasks_total", outcome="failed") == 0
        finally:
            for process in processes:
                process.stop()
            import redis

            redis.Redis.from_url(redis_url).delete(env["RETOUCH_QUEUE"])
            if amqp_url:
                from kombu import Connection

                with Connection(amqp_url) as connection:
                    connection.default_channel.queue_delete(exchange)
                    connection.default_channel.exchange_delete(exchange)
