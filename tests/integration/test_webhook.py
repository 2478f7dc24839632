"""Webhook receiver on a real Redis broker: MinIO- and Ceph-style payloads enqueue; no secret, no entry."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid

import pytest
import redis

from tests.integration.conftest import broker_url
from tests.worker.test_events import s3_record
from worker.app import create_app
from worker.ingest import Enqueuer
from worker.ingest.webhook import WebhookServer
from worker.settings import load_settings

pytestmark = pytest.mark.integration
SECRET = "s3cr3t-for-tests"


def post(port: int, payload: dict, headers: dict[str, str], query: str = "") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/events{query}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def webhook(monkeypatch):
    url = broker_url("redis")
    queue = f"retouch-webhook-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("RETOUCH_BROKER_URL", url)
    monkeypatch.setenv("RETOUCH_QUEUE", queue)
    settings = load_settings()
    server = WebhookServer(Enqueuer(create_app(settings), settings, source="webhook"), SECRET,
                           host="127.0.0.1", port=0).start()
    client = redis.Redis.from_url(url)
    yield server, client, queue
    server.stop()
    client.delete(queue)


def queued_keys(client, queue) -> list[str]:
    bodies = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    return sorted(json.loads(base64.b64decode(b["body"]))[1]["event"]["key"] for b in bodies)


def test_minio_and_ceph_payloads_enqueue_and_missing_secret_is_401(webhook):
    server, client, queue = webhook
    minio = {"EventName": "s3:ObjectCreated:Put", "Key": "listings/incoming/bag.jpg",
             "Records": [s3_record(key="incoming%2Fbag.jpg", event="s3:ObjectCreated:Put", source="minio:s3")]}
    ceph = {"Records": [s3_record(key="incoming/tee+shirt.png", source="ceph:s3")]}

    # MinIO sends its auth_token as a bearer token
    assert post(server.port, minio, {"Authorization": f"Bearer {SECRET}"}) == (200, {"enqueued": 1, "ignored": 0})
    # An RGW push endpoint carries the secret as the URL's basic-auth password (or a ?token= parameter)
    basic = base64.b64encode(f"rgw:{SECRET}".encode()).decode()
    assert post(server.port, ceph, {"Authorization": f"Basic {basic}"})[0] == 200
    assert post(server.port, ceph, {}, query=f"?token={SECRET}")[0] == 200

    assert post(server.port, minio, {})[0] == 401
    assert post(server.port, minio, {"Authorization": "Bearer wrong"})[0] == 401
    assert post(server.port, {"not": "an event"}, {"Authorization": f"Bearer {SECRET}"})[0] == 400

    # Ceph's repeat was recognised as the same object version and enqueued once
    assert queued_keys(client, queue) == ["incoming/bag.jpg", "incoming/tee+shirt.png"]  # RGW keys are literal
