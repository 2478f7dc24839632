"""Ceph RGW bucket notifications, for real: a single-node cluster on loopback (infra/ceph/start-rgw.sh),
topics created through RGW's SNS-compatible API with boto3, deliveries over HTTP and AMQP.

The HTTP topic is what `retouch ingest webhook` receives; the end-to-end path through the real ingester
and worker is in test_rgw_end_to_end.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.infra.rgw import running_rgw
from worker.events import parse_notification

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# RGW discovers a new persistent topic's queue on a 30 s cycle, so a first delivery can take that long.
DELIVERY_SECONDS = 60
CREATED = [{"Id": "retouch", "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}}]


@pytest.fixture(scope="module")
def rgw(tmp_path_factory):
    with running_rgw(tmp_path_factory.mktemp("rgw")) as cluster:
        yield cluster


class Receiver:
    """A tiny HTTP endpoint that records every POST (path and JSON body) and answers 200."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def keys(self) -> list[str]:
        return sorted(r["s3"]["object"]["key"] for _, body in self.received for r in body.get("Records", []))


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def test_http_topic_delivers_each_created_upload_once(rgw) -> None:
    # Given a persistent topic pushing to an HTTP endpoint, with the secret as ?token= (RGW refuses
    # user:password in a push endpoint over plain HTTP), and the bucket notifying it for incoming/
    receiver = Receiver()
    bucket = f"listings-{uuid.uuid4().hex[:6]}"
    rgw.s3.create_bucket(Bucket=bucket)
    topic = rgw.sns.create_topic(Name=f"retouch-http-{bucket}", Attributes={
        "push-endpoint": f"{receiver.url}/events?token=s3cret", "persistent": "true"})["TopicArn"]
    rgw.s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [{**CREATED[0], "TopicArn": topic}]})
    # When a seller uploads two photos and the worker writes an output
    for key in ("incoming/shoe.jpg", "incoming/red dress.jpg", "enhanced/incoming/shoe.jpg"):
        rgw.s3.put_object(Bucket=bucket, Key=key, Body=b"photo")
    # Then exactly the uploads under incoming/ are delivered, once each, with the token
    assert wait_until(lambda: len(receiver.keys()) >= 2, DELIVERY_SECONDS), rgw.log()
    time.sleep(2)  # a duplicate would arrive right behind
    assert receiver.keys() == ["incoming/red dress.jpg", "incoming/shoe.jpg"]
    assert all(path == "/events?token=s3cret" for path, _ in receiver.received)
    # And the payloads are ones the ingester's parser understands
    parsed = [record for _, body in receiver.received for record in parse_notification(body).created]
    assert sorted(record.key for record in parsed) == receiver.keys()
    assert {record.source for record in parsed} == {"ceph:s3"} and all(record.etag for record in parsed)


def test_keys_with_plus_and_percent_reach_the_parser_unchanged(rgw) -> None:
    receiver = Receiver()
    bucket = f"listings-{uuid.uuid4().hex[:6]}"
    rgw.s3.create_bucket(Bucket=bucket)
    topic = rgw.sns.create_topic(Name=f"retouch-keys-{bucket}", Attributes={
        "push-endpoint": f"{receiver.url}/events?token=s3cret", "persistent": "true"})["TopicArn"]
    rgw.s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [{**CREATED[0], "TopicArn": topic}]})
    keys = ["incoming/tee+shirt.jpg", "incoming/50%off.jpg"]
    for key in keys:
        rgw.s3.put_object(Bucket=bucket, Key=key, Body=b"photo")
    assert wait_until(lambda: len(receiver.keys()) >= 2, DELIVERY_SECONDS), rgw.log()
    parsed = [record.key for _, body in receiver.received for record in parse_notification(body).created]
    assert sorted(parsed) == sorted(keys)


def test_amqp_topic_publishes_to_the_exchange(rgw) -> None:
    from kombu import Connection, Exchange, Queue

    from tests.integration.conftest import broker_url

    # Given an exchange and a queue bound with the topic's name (RGW's routing key), and an AMQP topic;
    # no user:password in the endpoint (refused over plain HTTP), so RGW logs in as guest
    url = broker_url("rabbitmq")
    name = f"retouch-amqp-{uuid.uuid4().hex[:6]}"
    exchange = Exchange("retouch-notifications", type="topic", durable=True)
    queue = Queue(name, exchange, routing_key=name, durable=False, auto_delete=False)
    with Connection(url) as connection:
        queue(connection.channel()).declare()
        try:
            rgw.s3.create_bucket(Bucket=name)
            topic = rgw.sns.create_topic(Name=name, Attributes={
                "push-endpoint": "amqp://127.0.0.1:5672", "amqp-exchange": "retouch-notifications",
                "amqp-ack-level": "broker", "persistent": "true"})["TopicArn"]
            rgw.s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"TopicConfigurations": [{**CREATED[0], "TopicArn": topic}]})
            # When a photo is uploaded
            rgw.s3.put_object(Bucket=name, Key="incoming/bag.jpg", Body=b"photo")
            # Then its notification is in the queue
            messages = []
            assert wait_until(lambda: messages.append(queue(connection.channel()).get(no_ack=True))
                              or any(messages), DELIVERY_SECONDS), rgw.log()
            body = json.loads(next(m for m in messages if m).body)
            assert [r.key for r in parse_notification(body).created] == ["incoming/bag.jpg"]
        finally:
            queue(connection.channel()).delete()
