"""Object steps against an in-memory store: exactly one output per version, however often delivered."""

from __future__ import annotations

import io
import json
import threading

import pytest
from PIL import Image

from tests.worker.fakes import FakeEngines
from worker.errors import ObjectNotFound
from worker.events import ObjectCreated
from worker.pipeline import Job, object_steps, run_steps
from worker.pipeline.objects import META_PIPELINE, META_SOURCE_ETAG, is_own_output
from worker.settings import LimitSettings, PolicySettings, StorageSettings
from worker.storage import MemoryObjectStore

STORAGE = StorageSettings(output_prefix="enhanced/")


def upload(store: MemoryObjectStore, key="incoming/shoe.png") -> ObjectCreated:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (120, 30, 200)).save(buffer, format="PNG")
    etag = store.put("listings", key, buffer.getvalue(), content_type="image/png")
    return ObjectCreated(bucket="listings", key=key, etag=etag)


def deliver(store, record) -> Job:
    job = Job(limits=LimitSettings(), policy=PolicySettings(target_short_side=64))
    return run_steps(job, object_steps(record, store, STORAGE, FakeEngines()), deadline=float("inf"))


def test_output_and_manifest_are_written_with_metadata():
    store = MemoryObjectStore()
    record = upload(store)
    job = deliver(store, record)
    assert job.outputs["key"] == "enhanced/incoming/shoe.png"
    info = store.head("listings", "enhanced/incoming/shoe.png")
    assert info.metadata[META_SOURCE_ETAG] == record.etag and info.metadata[META_PIPELINE]
    manifest = json.loads(store.get("listings", "enhanced/incoming/shoe.png.manifest.json", max_bytes=10**6).data)
    assert manifest["output"]["width"] == 96 and manifest["source"]["etag"] == record.etag
    assert set(manifest["timings_seconds"]) >= {"fetch", "decode", "enhance", "encode"}


def test_redelivery_is_skipped_before_fetching():
    store = MemoryObjectStore()
    record = upload(store)
    deliver(store, record)
    puts = dict(store.puts)
    again = deliver(store, record)
    assert "skipped" in again.outputs and again.data is None  # stopped at dedupe
    assert store.puts == puts


def test_crash_between_output_and_manifest_writes_no_second_output():
    store = MemoryObjectStore()
    record = upload(store)
    deliver(store, record)
    store._objects.pop(("listings", "enhanced/incoming/shoe.png.manifest.json"))
    deliver(store, record)
    assert store.puts["enhanced/incoming/shoe.png"] == 1  # the image is not written again
    assert store.puts["enhanced/incoming/shoe.png.manifest.json"] == 2
    assert store.head("listings", "enhanced/incoming/shoe.png.manifest.json") is not None


def test_concurrent_deliveries_write_one_object():
    store = MemoryObjectStore()
    record = upload(store)
    results = []
    barrier = threading.Barrier(4)

    def run():
        barrier.wait()
        results.append(deliver(store, record))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one delivery wrote the image, and every other one saw the winner's output
    assert store.puts["enhanced/incoming/shoe.png"] == 1
    assert sum("skipped" not in job.outputs for job in results) >= 1


def test_new_upload_of_same_key_replaces_output():
    store = MemoryObjectStore()
    deliver(store, upload(store))
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (0, 255, 0)).save(buffer, format="PNG")
    etag = store.put("listings", "incoming/shoe.png", buffer.getvalue(), content_type="image/png")
    job = deliver(store, ObjectCreated(bucket="listings", key="incoming/shoe.png", etag=etag))
    assert "skipped" not in job.outputs
    assert store.head("listings", "enhanced/incoming/shoe.png").metadata[META_SOURCE_ETAG] == etag


def test_stale_event_for_replaced_source_is_skipped_and_missing_object_is_permanent():
    store = MemoryObjectStore()
    record = upload(store)
    stale = ObjectCreated(bucket="listings", key=record.key, etag="an-older-version")
    assert "skipped" in deliver(store, stale).outputs
    with pytest.raises(ObjectNotFound):
        deliver(store, ObjectCreated(bucket="listings", key="incoming/gone.png", etag="x"))


def test_recursion_guard():
    assert is_own_output(ObjectCreated(bucket="b", key="enhanced/x.jpg"), STORAGE)
    assert not is_own_output(ObjectCreated(bucket="b", key="incoming/x.jpg"), STORAGE)
    other_bucket = StorageSettings(output_bucket="out", output_prefix="enhanced/")
    assert not is_own_output(ObjectCreated(bucket="b", key="enhanced/x.jpg"), other_bucket)
