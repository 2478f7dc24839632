"""SQS as the task broker: the lease renewal keeps a held message invisible past its visibility timeout,
and a message nobody renews comes back (moto's SQS, real boto3 calls)."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import boto3
import pytest

from worker.leases import LeaseRenewer, SqsLeases

pytestmark = [pytest.mark.integration]


def test_sqs_lease_renewal_keeps_held_messages_and_only_them(moto_server):
    sqs = boto3.client("sqs", endpoint_url=moto_server.url, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"lease-{uuid.uuid4().hex[:8]}",
                                 Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    for body in ("held", "abandoned"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["abandoned", "held"]
    held = next(m for m in received if m["Body"] == "held")
    message = SimpleNamespace(delivery_tag=held["ReceiptHandle"], delivery_info={"sqs_queue": queue_url})
    renewer = LeaseRenewer(SqsLeases(30, client=sqs), 30, messages=lambda: [message])
    renewer.renew_once()
    time.sleep(3)  # past the queue's 2 s visibility timeout
    again = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in again] == ["abandoned"]
