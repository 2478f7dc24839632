"""The whole loop on real parts: moto S3 notifications -> SQS -> ingester -> broker -> worker process -> S3."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from tests.photos import listing_photo
from worker.app import ENHANCE_TASK, create_app
from worker.ingest import Enqueuer
from worker.ingest.sqs import SqsIngester
from worker.pipeline.objects import META_ENGINES, META_PIPELINE, META_SOURCE_ETAG
from worker.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPLOADS = 20


def start_ingester(stack) -> SqsIngester:
    settings = load_settings()
    ingester = SqsIngester(Enqueuer(create_app(settings), settings, source="sqs"), stack.queue_url,
                           endpoint_url=stack.endpoint, wait_seconds=1)
    threading.Thread(target=ingester.run, daemon=True).start()
    stack.threads.append(ingester.stop)
    return ingester


def manifests(stack) -> list[str]:
    return [key for key in stack.keys("enhanced/incoming/") if key.endswith(".manifest.json")]


def assert_each_output_written_once(stack, expected: int) -> None:
    versions = stack.s3.list_object_versions(Bucket=stack.bucket, Prefix="enhanced/incoming/")["Versions"]
    images = [v for v in versions if not v["Key"].endswith(".manifest.json")]
    assert len(images) == expected, sorted(v["Key"] for v in images)
    assert len({v["Key"] for v in images}) == expected  # one version per key: never written twice
    for version in images:
        head = stack.s3.head_object(Bucket=stack.bucket, Key=version["Key"])
        assert head["Metadata"][META_PIPELINE] and head["Metadata"][META_SOURCE_ETAG]
        assert head["Metadata"][META_ENGINES].startswith("retouch-")
        with Image.open(io.BytesIO(stack.s3.get_object(Bucket=stack.bucket, Key=version["Key"])["Body"].read())) as out:
            assert out.size == (128, 96)  # 64x48 upscaled x2 to reach the 96-px short side


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_twenty_uploads_become_twenty_outputs(make_stack, broker):
    # Given a worker with two pool processes (metrics from both must add up) and the SQS ingester
    stack = make_stack(broker)
    stack.start_worker(concurrency=2)
    start_ingester(stack)
    # When 20 photos are uploaded
    for index in range(UPLOADS):
        stack.s3.put_object(Bucket=stack.bucket, Key=f"incoming/photo {index:02d}.jpg", Body=listing_photo(index))
    # Then 20 outputs appear, each written exactly once with its metadata and manifest
    stack.wait_for(lambda: len(manifests(stack)) == UPLOADS, 300, f"{UPLOADS} manifests")
    assert_each_output_written_once(stack, UPLOADS)
    manifest = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=manifests(stack)[0])["Body"].read())
    # The tone engine looked first (the gate decides whether its correction is used), then the upscale
    assert [run["engine"] for run in manifest["engines"]] == ["retouch-tone", "retouch-sr-x2-perceptual"]
    assert {v["step"] for v in manifest["gate"]} == {"tone", "denoise", "super_resolution"} and manifest["decisions"]
    assert set(manifest["analysis"]["tone"]) >= {"exposure_stops", "cast_removed_ab", "mean_delta_e"}
    # And the worker's metrics, read over HTTP, count 20 successes
    stack.wait_for(lambda: stack.sample("retouch_tasks_total", outcome="succeeded") == UPLOADS, 30, "metrics")
    assert stack.sample("retouch_tasks_total", outcome="failed") == 0
    assert stack.sample("retouch_stage_seconds_count", stage="enhance") == UPLOADS
    # Each pool process loaded the engine once through the ONNX export cache (hit or miss)
    assert stack.sample("retouch_engine_cache_total", cache="onnx") >= 1
    assert stack.sample("retouch_backend_info", engine="retouch-sr-x2-perceptual", backend="onnxruntime") == 1


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_redelivered_event_and_test_event_write_nothing_twice(make_stack, broker):
    # Given a running stack that has enhanced 20 uploads
    stack = make_stack(broker)
    stack.start_worker()
    start_ingester(stack)
    # A test event, as S3 sends when notifications are configured, arrives first
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket}))
    for index in range(UPLOADS):
        stack.s3.put_object(Bucket=stack.bucket, Key=f"incoming/photo {index:02d}.jpg", Body=listing_photo(index))
    stack.wait_for(lambda: len(manifests(stack)) == UPLOADS, 300, f"{UPLOADS} manifests")
    # When one event is delivered twice more: once more through SQS, once straight to the broker
    # (as a broker redelivery after a lost ack would)
    head = stack.s3.head_object(Bucket=stack.bucket, Key="incoming/photo 03.jpg")
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": "2026-11-28T10:00:00.000Z",
              "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": stack.bucket},
                     "object": {"key": "incoming/photo+03.jpg", "size": head["ContentLength"],
                                "eTag": head["ETag"].strip('"')}}}
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"Records": [record]}))
    from worker.events import parse_notification

    (created,) = parse_notification({"Records": [record]}).created
    create_app(load_settings()).send_task(ENHANCE_TASK, kwargs={"event": created.to_message()},
                                          queue=stack.celery_queue)
    # Then the duplicate is recognised and skipped, and still 20 outputs exist, each written once
    stack.wait_for(lambda: stack.sample("retouch_tasks_total", outcome="skipped") >= 1, 120, "a skipped duplicate")
    assert_each_output_written_once(stack, UPLOADS)
    assert len(manifests(stack)) == UPLOADS
    assert stack.sample("retouch_tasks_total", outcome="succeeded") == UPLOADS


def test_bad_uploads_fail_permanently_with_reasons(make_stack):
    # Given a worker with a 300 kB upload limit
    stack = make_stack("redis", RETOUCH_MAX_INPUT_BYTES="300000")
    stack.start_worker()
    start_ingester(stack)
    truncated = listing_photo(1)[:300]
    bad = {
        "corrupt.jpg": (truncated, "corrupt_image"),
        "empty.jpg": (b"", "empty_object"),
        "notes.jpg": (b"this is a text file, not a photo\n" * 10, "not_an_image"),
        "huge.png": (np.random.default_rng(0).bytes(400_000), "over_limit"),
    }
    # When they are uploaded, followed by one good photo
    for name, (body, _) in bad.items():
        stack.s3.put_object(Bucket=stack.bucket, Key=f"incoming/{name}", Body=body)
    stack.s3.put_object(Bucket=stack.bucket, Key="incoming/good.jpg", Body=listing_photo(7))
    # Then each bad one ends as one permanent failure with its reason, recorded beside the outputs
    stack.wait_for(lambda: len(stack.keys("enhanced/failed/")) == len(bad), 180, "failure records")
    for name, (_, reason) in bad.items():
        record = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"enhanced/failed/incoming/{name}.json")
                            ["Body"].read())
        assert record["reason"] == reason and record["attempts"] == 1
        assert stack.sample("retouch_tasks_total", outcome="failed", reason=reason) == 1
    # And nothing was retried, the worker survived, and the good photo was still enhanced
    assert stack.sample("retouch_tasks_total", outcome="retried") == 0
    stack.wait_for(lambda: "enhanced/incoming/good.jpg" in stack.keys("enhanced/incoming/"), 120, "the good photo")
    assert stack.worker.poll() is None
