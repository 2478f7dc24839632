"""Notification parsing: every supported shape becomes the same frozen record."""

import json

import pytest

from worker.events import InvalidEvent, ObjectCreated, parse_notification


def s3_record(key="incoming/red+flower%281%29.jpg", event="ObjectCreated:Put", source="aws:s3", **obj):
    return {
        "eventVersion": "2.1", "eventSource": source, "awsRegion": "us-east-1",
        "eventTime": "2026-11-28T10:00:00.000Z", "eventName": event,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "listings"},
               "object": {"key": key, "size": 1234, "eTag": "abc123", "sequencer": "0055AED6DCD90281E5", **obj}},
    }


def test_aws_direct_notification_decodes_key_and_keeps_fields():
    parsed = parse_notification(json.dumps({"Records": [s3_record(versionId="v1")]}))
    (record,) = parsed.created
    assert record.key == "incoming/red flower(1).jpg"  # '+' is a space, %28/%29 are parentheses
    assert (record.bucket, record.size, record.etag, record.version_id) == ("listings", 1234, "abc123", "v1")
    assert record.sequencer == "0055AED6DCD90281E5"
    assert record.event_time.isoformat() == "2026-11-28T10:00:00+00:00"


def test_sns_envelope_is_unwrapped():
    inner = json.dumps({"Records": [s3_record()]})
    parsed = parse_notification(json.dumps({"Type": "Notification", "MessageId": "m", "Message": inner}))
    assert [r.key for r in parsed.created] == ["incoming/red flower(1).jpg"]


def test_eventbridge_object_created():
    event = {
        "version": "0", "detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-28T10:00:00Z",
        "detail": {"bucket": {"name": "listings"},
                   "object": {"key": "incoming/a b.jpg", "size": 5, "etag": "e1", "version-id": "v9",
                              "sequencer": "s"},
                   "reason": "PutObject"},
    }
    (record,) = parse_notification(event).created
    assert (record.key, record.etag, record.version_id, record.source) == (
        "incoming/a b.jpg", "e1", "v9", "aws.s3:eventbridge")


def test_minio_payload_with_prefixed_event_names():
    payload = {"EventName": "s3:ObjectCreated:Put", "Key": "listings/incoming/x.png",
               "Records": [s3_record(key="incoming%2Fx.png", event="s3:ObjectCreated:Put", source="minio:s3")]}
    (record,) = parse_notification(payload).created
    assert record.key == "incoming/x.png" and record.source == "minio:s3"
    assert record.event_name == "ObjectCreated:Put"


def test_ceph_rgw_payload_keeps_keys_as_stored():
    # RGW sends the key unencoded: "+" is a literal plus, not a space
    record = s3_record(key="incoming/tee+shirt 2.jpg", source="ceph:s3", versionId="", metadata=[], tags=[])
    record["eventVersion"] = "2.2"
    record["opaqueData"] = ""
    (parsed,) = parse_notification({"Records": [record]}).created
    assert parsed.source == "ceph:s3" and parsed.version_id is None
    assert parsed.key == "incoming/tee+shirt 2.jpg"


def test_test_event_and_non_create_events_are_ignored():
    test_event = parse_notification({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "listings"})
    assert test_event.created == () and test_event.ignored == 1
    removed = parse_notification({"Records": [s3_record(event="ObjectRemoved:Delete"), s3_record()]})
    assert len(removed.created) == 1 and removed.ignored == 1


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", json.dumps({"hello": "world"}),
                                     json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]})])
def test_invalid_payloads_raise_a_typed_error(payload):
    with pytest.raises(InvalidEvent):
        parse_notification(payload)


def test_idempotency_key_and_task_id_are_stable_per_version():
    a = ObjectCreated(bucket="b", key="k.jpg", etag="e1")
    again = ObjectCreated.from_message(a.to_message())
    newer = ObjectCreated(bucket="b", key="k.jpg", etag="e2")
    assert a.task_id("1") == again.task_id("1")
    assert a.task_id("1") != newer.task_id("1") and a.task_id("1") != a.task_id("2")
