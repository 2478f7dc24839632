"""Object-store event notifications parsed into frozen, typed records.

Accepted shapes, as they reach an SQS queue or a webhook:
- AWS S3 notification (`{"Records": [...]}`), direct or wrapped in an SNS envelope (`"Type": "Notification"`);
- AWS EventBridge "Object Created" events (`"detail-type": "Object Created"`);
- MinIO webhook/AMQP payloads (same `Records` schema plus `EventName`/`Key`, event names prefixed `s3:`);
- Ceph RGW notifications (same `Records` schema, `eventSource: "ceph:s3"`).

Keys in the AWS and MinIO `Records` schema are URL-encoded with `+` for spaces ("red flower.jpg" arrives
as "red+flower.jpg"), so they go through `unquote_plus`. Ceph RGW (seen on 16.2) and EventBridge carry
keys as stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus


class InvalidEvent(ValueError):
    """A payload that is not a notification we understand (bad JSON, missing bucket or key)."""

    reason = "invalid_event"


@dataclass(frozen=True)
class ObjectCreated:
    """One created object version: the unit of work."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: datetime | None = None
    event_name: str = "ObjectCreated:Put"
    source: str = "aws:s3"

    def idempotency_key(self, pipeline_version: str) -> str:
        """Bucket + key + version (or eTag) + pipeline version: equal keys mean equal output bytes."""
        version = self.version_id or self.etag or "unversioned"
        return f"{self.bucket}/{self.key}@{version}#{pipeline_version}"

    def task_id(self, pipeline_version: str) -> str:
        """A stable Celery task id, so a redelivered event is recognisable in logs and the broker."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "retouch:" + self.idempotency_key(pipeline_version)))

    def to_message(self) -> dict[str, Any]:
        """A JSON-safe dict for the task message."""
        data = asdict(self)
        data["event_time"] = self.event_time.isoformat() if self.event_time else None
        return data

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> ObjectCreated:
        values = dict(data)
        if values.get("event_time"):
            values["event_time"] = datetime.fromisoformat(values["event_time"])
        return cls(**values)


@dataclass(frozen=True)
class ParsedNotification:
    """What one payload held: the created objects, and how many records were ignored (tests, deletes)."""

    created: tuple[ObjectCreated, ...] = ()
    ignored: int = 0
    ignored_names: tuple[str, ...] = field(default=())


def parse_notification(payload: str | bytes | Mapping[str, Any]) -> ParsedNotification:
    """Parse any supported notification payload; raise InvalidEvent for anything else."""
    document = _load(payload)
    if document.get("Type") == "Notification" and "Message" in document:  # SNS envelope
        return parse_notification(document["Message"])
    if document.get("Event") == "s3:TestEvent":  # sent once when a notification is configured
        return ParsedNotification(ignored=1, ignored_names=("s3:TestEvent",))
    if document.get("detail-type") is not None and document.get("source") == "aws.s3":
        return _parse_eventbridge(document)
    if isinstance(document.get("Records"), list):
        return _parse_records(document["Records"])
    raise InvalidEvent("not an S3 notification: no Records, SNS envelope, test event or EventBridge detail")


def _load(payload: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        return payload
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidEvent(f"notification is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise InvalidEvent("notification JSON is not an object")
    return document


def _is_create(event_name: str) -> bool:
    # AWS sends "ObjectCreated:Put"; MinIO and older RGW send "s3:ObjectCreated:Put".
    return event_name.removeprefix("s3:").startswith("ObjectCreated:")


def _parse_records(records: list[Any]) -> ParsedNotification:
    created: list[ObjectCreated] = []
    ignored: list[str] = []
    for record in records:
        if not isinstance(record, Mapping):
            raise InvalidEvent("a record is not an object")
        event_name = str(record.get("eventName", ""))
        if not _is_create(event_name):
            ignored.append(event_name or "unnamed")
            continue
        try:
            s3 = record["s3"]
            bucket = s3["bucket"]["name"]
            obj = s3["object"]
            # AWS and MinIO URL-encode keys; Ceph RGW sends them as stored ("tee+shirt.jpg" is literal).
            source = str(record.get("eventSource") or "aws:s3")
            key = obj["key"] if source.startswith("ceph") else unquote_plus(obj["key"])
        except (KeyError, TypeError) as error:
            raise InvalidEvent(f"record lacks s3.bucket.name or s3.object.key ({error!r})") from error
        if not bucket or not key:
            raise InvalidEvent("record has an empty bucket or key")
        created.append(
            ObjectCreated(
                bucket=bucket,
                key=key,
                size=_int_or_none(obj.get("size")),
                etag=_etag(obj.get("eTag")),
                version_id=obj.get("versionId") or None,
                sequencer=obj.get("sequencer") or None,
                event_time=_time(record.get("eventTime")),
                event_name=event_name.removeprefix("s3:"),
                source=source,
            )
        )
    return ParsedNotification(tuple(created), len(ignored), tuple(ignored))


def _parse_eventbridge(document: Mapping[str, Any]) -> ParsedNotification:
    if document.get("detail-type") != "Object Created":
        return ParsedNotification(ignored=1, ignored_names=(str(document.get("detail-type")),))
    try:
        detail = document["detail"]
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        key = obj["key"]
    except (KeyError, TypeError) as error:
        raise InvalidEvent(f"EventBridge event lacks detail.bucket.name or detail.object.key ({error!r})") from error
    record = ObjectCreated(
        bucket=bucket,
        key=key,
        size=_int_or_none(obj.get("size")),
        etag=_etag(obj.get("etag")),
        version_id=obj.get("version-id") or None,
        sequencer=obj.get("sequencer") or None,
        event_time=_time(document.get("time")),
        event_name="ObjectCreated:" + str(detail.get("reason", "PutObject")),
        source="aws.s3:eventbridge",
    )
    return ParsedNotification((record,))


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _etag(value: Any) -> str | None:
    return str(value).strip('"') or None if value else None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
