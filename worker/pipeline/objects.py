"""The object-store ends of the pipeline: dedupe, fetch and put (with its manifest).

Exactly-once output: an output and its manifest carry the source eTag and pipeline version. A task whose
manifest already records them is a redelivery and stops at `dedupe`. `put` writes each object
conditionally (create-if-absent, or replace-only-the-version-we-saw), so two deliveries running at once,
or a retry whose first response was lost, produce one object; and it always goes on to the manifest, so
an image found without its manifest is completed, never abandoned.
"""

from __future__ import annotations

import json
import posixpath
import re
import time

from worker import PIPELINE_VERSION
from worker.errors import RetryableError
from worker.events import ObjectCreated
from worker.pipeline.job import Job
from worker.pipeline.manifest import job_manifest
from worker.pipeline.masks import sidecar_key
from worker.pipeline.runner import Step
from worker.settings import CostSettings, StorageSettings
from worker.storage import ObjectInfo, ObjectStore, WriteConflict

META_SOURCE_ETAG = "retouch-source-etag"
META_PIPELINE = "retouch-pipeline-version"
META_ENGINES = "retouch-engines"
META_SOURCE_VERSION = "retouch-source-version"


class OutputLocation:
    """Where the outputs for one source object go."""

    def __init__(self, record: ObjectCreated, storage: StorageSettings) -> None:
        self.bucket = storage.output_bucket or record.bucket
        self.prefix = storage.output_prefix
        self.source_key = record.key

    def image_key(self, extension: str) -> str:
        stem, _ = posixpath.splitext(self.source_key)
        return f"{self.prefix}{stem}{extension}"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}{self.source_key}.manifest.json"

    @property
    def failure_key(self) -> str:
        return f"{self.prefix}failed/{self.source_key}.json"


def is_own_output(record: ObjectCreated, storage: StorageSettings) -> bool:
    """Recursion guard: never enhance what we wrote (same bucket, under the output prefix)."""
    same_bucket = storage.output_bucket in (None, record.bucket)
    return same_bucket and record.key.startswith(storage.output_prefix)


def written_for(info: ObjectInfo | None, source_etag: str | None) -> bool:
    """Whether an object was written for this source eTag by this pipeline version."""
    return (
        info is not None
        and source_etag is not None
        and info.metadata.get(META_SOURCE_ETAG) == source_etag
        and info.metadata.get(META_PIPELINE) == PIPELINE_VERSION
    )


def is_finished(store: ObjectStore, record: ObjectCreated, where: OutputLocation) -> bool:
    """Whether this upload version's manifest, written after its image, is already there."""
    return bool(record.etag) and written_for(store.head(where.bucket, where.manifest_key), record.etag)


def dedupe_step(store: ObjectStore, record: ObjectCreated, where: OutputLocation) -> Step:
    def run(job: Job) -> None:
        if is_finished(store, record, where):
            job.done = True
            job.outputs["skipped"] = "already enhanced (manifest records this source eTag)"

    return Step("dedupe", run)


def fetch_step(store: ObjectStore, record: ObjectCreated) -> Step:
    def run(job: Job) -> None:
        stored = store.get(record.bucket, record.key, max_bytes=job.limits.max_input_bytes)
        if record.etag and stored.info.etag and stored.info.etag != record.etag:
            # Overwritten since the event: this event's version is gone; the newer upload has its own event.
            job.done = True
            job.outputs["skipped"] = "source was replaced after this event"
            return
        job.data = stored.data
        job.source_etag = stored.info.etag or record.etag
        job.source_metadata = dict(stored.info.metadata)
        mask_key = sidecar_key(record.key)
        if store.head(record.bucket, mask_key) is not None:
            job.mask_data = store.get(record.bucket, mask_key, max_bytes=job.limits.max_input_bytes).data

    return Step("fetch", run)


def _ascii(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._,:/-]", "_", value)[:512]


def build_manifest(job: Job, record: ObjectCreated, where: OutputLocation, key: str, etag: str,
                   prices: CostSettings | None = None) -> dict:
    return job_manifest(
        job,
        source={"bucket": record.bucket, "key": record.key, "etag": job.source_etag,
                "version_id": record.version_id,
                "event_time": record.event_time.isoformat() if record.event_time else None},
        output={"bucket": where.bucket, "key": key, "etag": etag},
        prices=prices,
    )


def write_once(store: ObjectStore, bucket: str, key: str, data: bytes, *, content_type: str,
               metadata: dict[str, str], source_etag: str | None) -> tuple[str, ObjectInfo | None]:
    """Write `key` for this job exactly once, however often delivered and whatever the network dropped.

    Returns (eTag, the object kept instead of writing, or None when written now). An object already there
    for the same source eTag and pipeline version is this job's own, from an earlier delivery or from a
    retry whose first response was lost (the retry then gets 412 from `If-None-Match` / `If-Match`): it is
    kept, not written again. Anything else there (an older source version's output) is replaced only if
    unchanged since we looked.
    """
    existing = store.head(bucket, key)
    if written_for(existing, source_etag):
        return existing.etag, existing
    try:
        etag = store.put(bucket, key, data, content_type=content_type, metadata=metadata,
                         if_none_match=existing is None, if_match=existing.etag if existing else None)
        return etag, None
    except WriteConflict:
        winner = store.head(bucket, key)
        if written_for(winner, source_etag):
            return winner.etag, winner
        raise RetryableError(f"{key} changed while writing", reason="write_conflict") from None


def put_step(store: ObjectStore, record: ObjectCreated, where: OutputLocation,
             prices: CostSettings | None = None) -> Step:
    """Image first, then its manifest: a manifest always points at a written image, and a delivery that finds
    the image without its manifest (a crash or a lost response in between) completes the job."""

    def run(job: Job) -> None:
        assert job.encoded is not None and job.extension is not None and job.content_type is not None
        key = where.image_key(job.extension)
        identity = {META_SOURCE_ETAG: job.source_etag or "", META_PIPELINE: PIPELINE_VERSION}
        metadata = {
            **identity,
            META_ENGINES: _ascii(",".join(run.engine for run in job.engine_runs) or "none"),
            META_SOURCE_VERSION: _ascii(record.version_id or ""),
        }
        etag, kept_image = write_once(store, where.bucket, key, job.encoded, content_type=job.content_type,
                                      metadata=metadata, source_etag=job.source_etag)
        job.outputs.update(bucket=where.bucket, key=key, etag=etag, written_at=time.time())
        manifest = build_manifest(job, record, where, key, etag, prices)
        if kept_image is not None:
            # The stored image is an earlier delivery's: describe those bytes, not this run's re-encode.
            manifest["output"]["bytes"] = kept_image.size
        _, kept_manifest = write_once(store, where.bucket, where.manifest_key,
                                      json.dumps(manifest, indent=2).encode(), content_type="application/json",
                                      metadata=identity, source_etag=job.source_etag)
        if kept_image is not None and kept_manifest is not None:
            job.done = True  # another delivery finished the whole job first
            job.outputs["skipped"] = "a concurrent delivery wrote this output and its manifest"
            return
        job.outputs["manifest_key"] = where.manifest_key
        job.outputs["manifest"] = manifest

    return Step("put", run)
