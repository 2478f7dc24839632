"""A burst of 300 uploads with repeated notifications and bad files, on two workers: exactly one output per
good upload, one failure record per bad one, and the burst's throughput and latency."""

from __future__ import annotations

import json
import time
from datetime import datetime

import numpy as np
import pytest

from tests.faults.stack import photo
from tests.faults.test_crashes import report
from tests.worker.test_reliability import png_header_only

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

BAD = {  # key -> (bytes, expected failure reason)
    "incoming/bad-empty.png": (b"", "empty_object"),
    "incoming/bad-text.png": (b"this is not a photo at all", "not_an_image"),
    "incoming/bad-truncated.png": (photo(9)[:300], "corrupt_image"),
    "incoming/bad-bomb.png": (png_header_only(40_000, 40_000), "over_limit"),
    "incoming/bad-mask.png": (photo(10), "over_limit"),  # its sidecar mask declares 40,000 x 40,000
}


def notification(bucket: str, key: str, etag: str) -> str:
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": datetime.now().astimezone().isoformat(),
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": etag, "size": 1}}}]})


def test_burst_of_300_uploads_with_duplicates_and_bad_files(redis_server, make_stack):
    stack = make_stack(redis_server.url)
    workers = [stack.start_worker("w1"), stack.start_worker("w2")]
    stack.start_ingester()
    stack.s3.put_object(Bucket=stack.bucket, Key="incoming/bad-mask.png.mask.png", Body=png_header_only(40_000, 40_000))
    started = time.time()
    for index in range(300):
        stack.upload(f"incoming/burst-{index:03d}.png", photo(1000 + index))
        if index % 60 == 0:
            key, (data, _) = list(BAD.items())[index // 60]
            stack.upload(key, data, good=False)
    # 20 notifications delivered twice more (SQS is at-least-once; S3 may also send duplicates)
    for index in range(0, 300, 15):
        key = f"incoming/burst-{index:03d}.png"
        etag = stack.s3.head_object(Bucket=stack.bucket, Key=key)["ETag"].strip('"')
        for _ in range(2):
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=notification(stack.bucket, key, etag))
    seconds = stack.wait_for(lambda: stack.finished() == 305, 900, "every output or failure record", watch=workers)
    counts = stack.check_exactly_once()

    for key, (_, reason) in BAD.items():
        record = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"enhanced/failed/{key}.json")["Body"].read())
        assert record["reason"] == reason, (key, record)
    for reason in {reason for _, reason in BAD.values()}:
        expected = sum(r == reason for _, r in BAD.values())
        assert sum(w.sample("retouch_tasks_total", outcome="failed", reason=reason) for w in workers) == expected
    assert sum(w.sample("retouch_tasks_total", outcome="retried") for w in workers) == 0  # bad input: no retries
    succeeded = sum(w.sample("retouch_tasks_total", outcome="succeeded") for w in workers)
    assert succeeded == 300

    latencies = []
    for item in stack.uploads:
        if item.good:
            written = datetime.fromisoformat(stack.manifest(item.key)["written_at"]).timestamp()
            latencies.append(written - item.uploaded_at)
    p50, p95 = np.percentile(latencies, [50, 95])
    report("burst", **counts, good=300, bad=len(BAD), duplicate_notifications=40, seconds=round(seconds, 1),
           uploads_per_s=round(305 / (time.time() - started), 2), latency_p50_s=round(float(p50), 1),
           latency_p95_s=round(float(p95), 1),
           per_worker=[int(w.sample("retouch_tasks_total", outcome="succeeded")) for w in workers])
