"""Object storage behind a small protocol, with an S3 implementation (boto3) and an in-memory one.

Writes are conditional so a redelivered or concurrent task can never leave two different objects:
`put(..., if_none_match=True)` creates only when absent; `put(..., if_match=etag)` replaces only the
version we looked at. Either raises `WriteConflict` when another writer got there first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import md5
from typing import Protocol

from worker.errors import EmptyObject, ObjectNotFound, OverLimit, PermanentError, StorageUnavailable


class WriteConflict(Exception):
    """A conditional write lost: another writer created or replaced the object first."""


@dataclass(frozen=True)
class ObjectInfo:
    etag: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    info: ObjectInfo


class ObjectStore(Protocol):
    def get(self, bucket: str, key: str, *, max_bytes: int) -> StoredObject:
        """Read a whole object; OverLimit past max_bytes, ObjectNotFound when absent, EmptyObject when 0 bytes."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's info, or None when absent."""
        ...

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write an object atomically and return its eTag; WriteConflict when a condition fails."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; absent is fine."""
        ...

    def list_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        """Every key under `prefix`."""
        ...


# S3 error codes that mean "try again later" rather than "this request is wrong".
_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "503", "500", "502", "504",
}


class S3ObjectStore:
    """boto3 S3 client; the endpoint may be AWS, MinIO, Ceph RGW or moto.

Per-call retries are botocore's standard mode with a retry budget that refills over time
(`worker.storage_retries`); what they give up on, the task retries over its horizon (`worker.tasks`).
"""

    def __init__(self, *, endpoint_url: str | None, region: str, max_attempts: int = 5, client=None,
                 retry_budget: int = 500, retry_refill_per_second: float = 5.0) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            from worker.storage_retries import install_retry_policy

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                config=Config(retries={"mode": "standard", "max_attempts": max_attempts},
                              connect_timeout=5, read_timeout=60),
            )
            install_retry_policy(client, max_attempts=max_attempts, budget=retry_budget,
                                 refill_per_second=retry_refill_per_second, observe=_count_client_retry)
        self._client = client

    @classmethod
    def from_settings(cls, settings) -> S3ObjectStore:
        return cls(endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                   max_attempts=settings.s3_max_attempts, retry_budget=settings.s3_retry_budget,
                   retry_refill_per_second=settings.s3_retry_refill_per_second)

    def get(self, bucket: str, key: str, *, max_bytes: int) -> StoredObject:
        with self._mapped_errors(bucket, key):
            response = self._client.get_object(Bucket=bucket, Key=key)
            length = int(response.get("ContentLength") or 0)
            if length > max_bytes:
                response["Body"].close()
                raise OverLimit(f"object is {length} bytes, over the {max_bytes}-byte limit")
            # Read one byte past the cap so a lying Content-Length cannot smuggle in a larger body.
            data = response["Body"].read(max_bytes + 1)
            response["Body"].close()
        if len(data) > max_bytes:
            raise OverLimit(f"object is over the {max_bytes}-byte limit")
        if not data:
            raise EmptyObject("object is empty (0 bytes)")
        info = ObjectInfo(
            etag=str(response.get("ETag", "")).strip('"'),
            size=len(data),
            metadata=dict(response.get("Metadata") or {}),
            content_type=response.get("ContentType"),
        )
        return StoredObject(data, info)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            with self._mapped_errors(bucket, key, not_found_ok=True):
                response = self._client.head_object(Bucket=bucket, Key=key)
        except _NotFound:
            return None
        return ObjectInfo(
            etag=str(response.get("ETag", "")).strip('"'),
            size=int(response.get("ContentLength") or 0),
            metadata=dict(response.get("Metadata") or {}),
            content_type=response.get("ContentType"),
        )

    def put(self, bucket, key, data, *, content_type, metadata=None, if_none_match=False, if_match=None) -> str:
        extra: dict[str, str] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match:
            extra["IfMatch"] = f'"{if_match}"'
        with self._mapped_errors(bucket, key):
            response = self._client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=dict(metadata or {}), **extra
            )
        return str(response.get("ETag", "")).strip('"')

    def delete(self, bucket: str, key: str) -> None:
        try:
            with self._mapped_errors(bucket, key, not_found_ok=True):
                self._client.delete_object(Bucket=bucket, Key=key)
        except _NotFound:  # S3 answers 204 for a missing key; some compatible stores answer 404
            pass

    def list_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        with self._mapped_errors(bucket, prefix):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def _mapped_errors(self, bucket: str, key: str, *, not_found_ok: bool = False):
        return _S3ErrorMapper(bucket, key, not_found_ok)


def _count_client_retry(operation: str, reason: str) -> None:
    from worker.metrics import get_metrics

    metrics = get_metrics()
    if reason == "budget_exhausted":
        metrics.storage_retry_budget_exhausted.labels(operation=operation).inc()
    else:
        metrics.storage_retries.labels(operation=operation, reason=reason).inc()


class _NotFound(Exception):
    pass


class _S3ErrorMapper:
    """Turn botocore errors into the worker's tree (retryable or permanent) or WriteConflict."""

    def __init__(self, bucket: str, key: str, not_found_ok: bool) -> None:
        self.where = f"s3://{bucket}/{key}"
        self.not_found_ok = not_found_ok

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {409, 412}:
                raise WriteConflict(self.where) from exc
            if code in {"NoSuchKey", "404", "NotFound"} or status == 404:
                if self.not_found_ok:
                    raise _NotFound() from exc
                raise ObjectNotFound(f"{self.where} does not exist") from exc
            if code in _TRANSIENT_CODES or (status is not None and status >= 500):
                raise StorageUnavailable(f"{self.where}: {code or status}") from exc
            raise PermanentError(f"{self.where}: {code} {exc}", reason="storage_rejected") from exc
        if isinstance(exc, BotoCoreError | ConnectionError | TimeoutError):
            raise StorageUnavailable(f"{self.where}: {exc}") from exc
        return False


class MemoryObjectStore:
    """A thread-safe in-memory ObjectStore with the same conditional-write semantics, for unit tests."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], tuple[bytes, ObjectInfo]] = {}
        self._lock = threading.Lock()
        self.puts: dict[str, int] = {}  # successful writes per key

    def get(self, bucket: str, key: str, *, max_bytes: int) -> StoredObject:
        with self._lock:
            found = self._objects.get((bucket, key))
        if found is None:
            raise ObjectNotFound(f"s3://{bucket}/{key} does not exist")
        data, info = found
        if len(data) > max_bytes:
            raise OverLimit(f"object is {len(data)} bytes, over the {max_bytes}-byte limit")
        if not data:
            raise EmptyObject("object is empty (0 bytes)")
        return StoredObject(data, info)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._lock:
            found = self._objects.get((bucket, key))
        return found[1] if found else None

    def put(self, bucket, key, data, *, content_type, metadata=None, if_none_match=False, if_match=None) -> str:
        with self._lock:
            current = self._objects.get((bucket, key))
            if if_none_match and current is not None:
                raise WriteConflict(f"s3://{bucket}/{key}")
            if if_match and (current is None or current[1].etag != if_match):
                raise WriteConflict(f"s3://{bucket}/{key}")
            etag = md5(data, usedforsecurity=False).hexdigest()
            info = ObjectInfo(etag=etag, size=len(data), metadata=dict(metadata or {}), content_type=content_type)
            self._objects[(bucket, key)] = (data, info)
            self.puts[key] = self.puts.get(key, 0) + 1
        return etag

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._objects.pop((bucket, key), None)

    def list_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        return iter([key for key in self.keys(bucket) if key.startswith(prefix)])

    def keys(self, bucket: str) -> list[str]:
        with self._lock:
            return sorted(k for b, k in self._objects if b == bucket)
