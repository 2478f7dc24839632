"""Unit tests of the reliability pieces: enqueue-then-remember, self-completing writes, header-checked masks,
the refilling retry budget, redelivery counting and lease renewal. The same behaviours are exercised end to
end, with real brokers, workers and a faulty S3, in tests/faults."""

from __future__ import annotations

import io
import json
import socket
import struct
import tracemalloc
import uuid
import zlib

import pytest
from PIL import Image

from tests.worker.fakes import FakeEngines
from worker.errors import InvalidRequest, OverLimit, StorageUnavailable
from worker.events import ObjectCreated
from worker.ingest import Enqueuer
from worker.metrics import get_metrics
from worker.pipeline import Job, object_steps, run_steps
from worker.pipeline.masks import decode_mask
from worker.redeliveries import DeathLedger
from worker.settings import LimitSettings, PolicySettings, StorageSettings, load_settings
from worker.storage import MemoryObjectStore, WriteConflict
from worker.storage_retries import RefillingRetryQuota
from worker.tasks import was_redelivered

STORAGE = StorageSettings(output_prefix="enhanced/")
IMAGE_KEY, MANIFEST_KEY = "enhanced/incoming/shoe.png", "enhanced/incoming/shoe.png.manifest.json"


def notification(key: str = "incoming/shoe.png") -> str:
    return json.dumps({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-12-01T10:00:00Z",
        "s3": {"bucket": {"name": "listings"}, "object": {"key": key, "eTag": "abc", "size": 10}}}]})


class FlakyApp:
    """A Celery stand-in whose broker refuses the first `failures` publishes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def send_task(self, name, kwargs, task_id, queue):
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("broker down")
        self.sent.append(task_id)


def test_failed_enqueue_is_not_remembered_so_the_redelivery_is_enqueued(monkeypatch):
    app = FlakyApp(failures=1)
    enqueuer = Enqueuer(app, load_settings(), source="sqs")
    failures = get_metrics().enqueue_failures.labels(source="sqs", reason="broker_unavailable")
    before = failures._value.get()
    with pytest.raises(ConnectionRefusedError):
        enqueuer.handle(notification())
    assert failures._value.get() == before + 1
    # When SQS redelivers the same message, the task is enqueued (it used to be counted as ignored)
    assert enqueuer.handle(notification()).enqueued == 1
    # And a further repeat is the at-least-once duplicate the memory is for
    assert enqueuer.handle(notification()).ignored == 1 and len(app.sent) == 1


def upload(store: MemoryObjectStore) -> ObjectCreated:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (120, 30, 200)).save(buffer, format="PNG")
    etag = store.put("listings", "incoming/shoe.png", buffer.getvalue(), content_type="image/png")
    return ObjectCreated(bucket="listings", key="incoming/shoe.png", etag=etag)


def deliver(store, record) -> Job:
    job = Job(limits=LimitSettings(), policy=PolicySettings(target_short_side=64))
    return run_steps(job, object_steps(record, store, STORAGE, FakeEngines()), deadline=float("inf"))


class LostResponseStore(MemoryObjectStore):
    """The first PUT of each key in `lose` is stored, then its response is lost the way boto3 sees it."""

    def __init__(self, lose: set[str], then: type[Exception]) -> None:
        super().__init__()
        self.lose, self.then = set(lose), then

    def put(self, bucket, key, data, **kwargs):
        etag = super().put(bucket, key, data, **kwargs)
        if key in self.lose:
            self.lose.discard(key)
            raise self.then(f"response to PUT {key} lost")
        return etag


def test_a_retry_that_meets_its_own_lost_put_finishes_the_job_with_its_manifest():
    # Given an image PUT that reached the store but whose response was lost; botocore's retry then got 412
    store = LostResponseStore({IMAGE_KEY}, then=WriteConflict)
    record = upload(store)
    # When the task runs
    job = deliver(store, record)
    # Then it recognises its own image and writes the manifest (it used to stop as "skipped")
    assert "skipped" not in job.outputs
    assert store.puts[IMAGE_KEY] == 1 and store.puts[MANIFEST_KEY] == 1


def test_a_redelivery_completes_an_image_left_without_manifest():
    # Given a first delivery whose manifest PUT response was lost after the write (storage error, task retried)
    store = LostResponseStore({IMAGE_KEY}, then=StorageUnavailable)
    record = upload(store)
    with pytest.raises(StorageUnavailable):
        deliver(store, record)
    assert store.head("listings", MANIFEST_KEY) is None  # the half-finished state the retry must repair
    # When it is delivered again
    deliver(store, record)
    # Then the manifest exists and nothing was written twice
    assert store.puts[IMAGE_KEY] == 1 and store.puts[MANIFEST_KEY] == 1
    manifest = json.loads(store.get("listings", MANIFEST_KEY, max_bytes=10**6).data)
    assert manifest["output"]["etag"] == store.head("listings", IMAGE_KEY).etag


def test_a_lost_manifest_response_does_not_write_a_second_manifest():
    store = LostResponseStore({MANIFEST_KEY}, then=WriteConflict)
    record = upload(store)
    deliver(store, record)
    assert store.puts[MANIFEST_KEY] == 1 and store.puts[IMAGE_KEY] == 1


def png_header_only(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header declares `width` x `height` (the pixel data is never reached)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_sidecar_mask_declaring_a_huge_canvas_is_refused_from_its_header():
    bomb = png_header_only(40_000, 40_000)
    tracemalloc.start()
    with pytest.raises(OverLimit, match="sidecar mask: 40000x40000 is over"):
        decode_mask(bomb, 800, 600, LimitSettings())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 << 20  # header read only: it used to allocate 1.6 GB for the 8-bit plane (7.7 GB as float)


def test_a_sidecar_mask_of_the_wrong_size_is_refused_before_decoding():
    with pytest.raises(InvalidRequest, match="sidecar mask is 4000x3000, the photo 600x800"):
        decode_mask(png_header_only(4000, 3000), 800, 600, LimitSettings())


def test_the_retry_budget_refills_with_time():
    now = [0.0]
    budget = RefillingRetryQuota(capacity=28, refill_per_second=2.0, clock=lambda: now[0])
    assert budget.acquire(14) and budget.acquire(14)
    assert not budget.acquire(14)  # spent: botocore's own budget would stay here until 14 successes
    now[0] += 7.0  # 14 tokens later
    assert budget.acquire(14)
    now[0] += 1000.0
    assert budget.available_capacity == 0 and budget.acquire(14) and budget.available_capacity == 14  # capped


def test_redelivered_flags_of_each_broker():
    assert not was_redelivered({"redelivered": False})
    assert was_redelivered({"redelivered": True})  # Redis (kombu's restore) and RabbitMQ
    def sqs(receives: str) -> dict:
        return {"delivery_info": {"sqs_message": {"Attributes": {"ApproximateReceiveCount": receives}}}}

    assert was_redelivered({"redelivered": False}, sqs("2")) and not was_redelivered({}, sqs("1"))


def test_death_ledger_counts_consecutive_deaths_and_forgets_on_a_normal_end():
    store = MemoryObjectStore()
    ledger = DeathLedger(store, STORAGE)
    record = ObjectCreated(bucket="listings", key="incoming/poison.png", etag="e1")
    assert [ledger.record_redelivery(record, "t1") for _ in range(3)] == [1, 2, 3]
    assert store.keys("listings") == ["enhanced/inflight/t1.json"]
    ledger.clear(record, "t1")
    assert store.keys("listings") == [] and ledger.record_redelivery(record, "t1") == 1


def test_lease_renewal_moves_only_held_messages_forward():
    from types import SimpleNamespace

    import redis

    from worker.leases import LeaseRenewer, RedisLeases

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as error:
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({error})")
    key = f"test-unacked-index-{uuid.uuid4().hex[:8]}"
    client = redis.Redis()
    client.zadd(key, {"held": 100.0, "other": 100.0})
    try:
        held = [SimpleNamespace(delivery_tag="held"), SimpleNamespace(delivery_tag="acked-meanwhile")]
        results = []
        renewer = LeaseRenewer(RedisLeases("redis://127.0.0.1:6379/0", key), 60,
                               messages=lambda: held, on_result=lambda result, count: results.append((result, count)))
        renewer.renew_once()
        scores = dict(client.zrange(key, 0, -1, withscores=True))
        assert scores[b"held"] > 1e9 and scores[b"other"] == 100.0  # renewed to now; others untouched
        assert b"acked-meanwhile" not in scores  # XX: an acked message is never brought back
        assert results == [("renewed", 1)]
    finally:
        client.delete(key)
