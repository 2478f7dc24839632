"""Self-tests of the fault harness: the brokers really keep their data across restarts, and the proxy is transparent to
boto3 until told otherwise, then fails in exactly the ways botocore treats as retryable."""

from __future__ import annotations

import http.client
import os
import socket
import time
import uuid
from collections.abc import Iterator

import boto3
import botocore.exceptions
import kombu
import pytest
import redis
from botocore.config import Config

from tests.faults.harness import (
    FAULT_KINDS,
    RABBITMQ_SERVER,
    REDIS_SERVER,
    FaultProxy,
    MotoServer,
    RabbitServer,
    RedisServer,
    free_port,
    require_executable,
)

pytestmark = pytest.mark.integration

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# What boto3 must see for each kind with retries off: an error code, or a connection error.
RAW_FAULTS = {"500": (500, "InternalError"), "503": (503, "ServiceUnavailable"), "slowdown": (503, "SlowDown")}


def client(service: str, url: str, attempts: int = 1, retries: dict | None = None):
    """A boto3 client against `url` making at most `attempts` attempts in all (1: see the raw fault).

    botocore's `retries["max_attempts"]` counts retries *after* the first try; `total_max_attempts` counts tries."""
    retries = retries or {"mode": "standard", "total_max_attempts": attempts}
    config = Config(retries=retries, connect_timeout=5, read_timeout=20, s3={"addressing_style": "path"})
    return boto3.client(service, endpoint_url=url, config=config, **CREDENTIALS)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def fault_proxy(moto) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url) as proxy:
        yield proxy


@pytest.fixture
def bucket(moto) -> str:
    name = f"harness-{uuid.uuid4().hex[:10]}"
    client("s3", moto.url).create_bucket(Bucket=name)
    return name


def exists(moto: MotoServer, bucket: str, key: str) -> bool:
    """Ask moto directly, past the proxy."""
    try:
        client("s3", moto.url).head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        return False
    return True


def test_free_port_is_bindable_on_loopback():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_missing_binaries_skip_locally_and_fail_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_executable("/nonexistent/redis-server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_executable("/nonexistent/redis-server")


def test_redis_keeps_a_queued_list_across_restart_and_kill(tmp_path):
    require_executable(REDIS_SERVER, "redis-server")
    with RedisServer(data_dir=tmp_path / "redis") as server:
        port = server.port
        redis.Redis.from_url(server.url).rpush("queue", "one", "two")
        server.restart()
        assert (server.port, server.running) == (port, True)
        assert redis.Redis.from_url(server.url).lrange("queue", 0, -1) == [b"one", b"two"]

        # fsync-always AOF: even a SIGKILL right after the write loses nothing.
        redis.Redis.from_url(server.url).rpush("queue", "three")
        server.kill()
        assert not server.running
        server.start()
        assert redis.Redis.from_url(server.url).lrange("queue", 0, -1) == [b"one", b"two", b"three"]
    assert not server.running


def test_rabbitmq_keeps_a_persistent_message_across_restart(tmp_path):
    require_executable(RABBITMQ_SERVER, "rabbitmq-server")
    server = RabbitServer(data_dir=tmp_path / "rabbit")
    try:
        server.start()
        first_start = server.last_start_seconds
        assert server.port != 5672 and server.node != "rabbit@localhost"
        queue = kombu.Queue("harness-durable", durable=True)
        with kombu.Connection(server.url) as conn:
            conn.Producer().publish({"photo": "a.png"}, routing_key=queue.name, declare=[queue], delivery_mode=2,
                                    serializer="json", retry=True)

        began = time.monotonic()
        server.restart()
        restart = time.monotonic() - began
        print(f"\nRabbitMQ node {server.node}: start {first_start:.1f} s, graceful restart {restart:.1f} s"
              f" (of which start {server.last_start_seconds:.1f} s)")

        with kombu.Connection(server.url) as conn:
            message = queue(conn.default_channel).get(no_ack=True)
        assert message is not None and message.payload == {"photo": "a.png"}
    finally:
        pid = server.pid
        server.close()
    # Nothing of the node survives it: no VM, no port programs, no listener.
    assert not server.running and server.node_pids() == []
    assert pid is not None and not os.path.exists(f"/proc/{pid}")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_proxy_is_transparent_to_boto3(moto, fault_proxy, bucket):
    s3 = client("s3", fault_proxy.url)
    large = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="small.txt", Body=b"hello", ContentType="text/plain", Metadata={"k": "v"})
    s3.put_object(Bucket=bucket, Key="large.bin", Body=large)

    head = s3.head_object(Bucket=bucket, Key="small.txt")
    assert head["ContentLength"] == 5 and head["ContentType"] == "text/plain" and head["Metadata"] == {"k": "v"}
    assert s3.get_object(Bucket=bucket, Key="large.bin")["Body"].read() == large
    assert s3.get_object(Bucket=bucket, Key="large.bin", Range="bytes=10-19")["Body"].read() == large[10:20]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="")
    assert sorted(obj["Key"] for obj in listed["Contents"]) == ["large.bin", "small.txt"]

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.put_object(Bucket=bucket, Key="small.txt", Body=b"again", IfNoneMatch="*")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert raised.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read() == b"hello"
    s3.delete_object(Bucket=bucket, Key="small.txt")
    assert not exists(moto, bucket, "small.txt")

    sqs = client("sqs", fault_proxy.url)  # the JSON protocol goes through as well
    queue_url = sqs.create_queue(QueueName=f"harness-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="ping")
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "ping"

    stats = fault_proxy.stats()
    assert stats["received"] == stats["forwarded"] == stats["responses"] >= 12
    assert stats["faults_total"] == 0 and stats["upstream_errors"] == 0
    assert stats["expect_continue"] >= 2  # botocore sends `Expect: 100-continue` with every PutObject body


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_reaches_boto3_as_itself(moto, fault_proxy, bucket, kind):
    s3 = client("s3", fault_proxy.url, attempts=1)
    fault_proxy.set_faults(1.0, kinds=(kind,), methods={"PUT"})
    if kind in RAW_FAULTS:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            s3.put_object(Bucket=bucket, Key="k", Body=b"body")
        status, code = RAW_FAULTS[kind]
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert raised.value.response["Error"]["Code"] == code
    else:
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            s3.put_object(Bucket=bucket, Key="k", Body=b"body")
    # Only "drop_after" lets the PUT take effect: the client failed, yet the object is there.
    assert exists(moto, bucket, "k") is (kind == "drop_after")
    s3.head_bucket(Bucket=bucket)  # methods={"PUT"}: other methods pass untouched, on a connection that still works
    stats = fault_proxy.stats()
    assert stats["faults"] == {other: int(other == kind) for other in FAULT_KINDS}
    assert stats["by_method"] == {("PUT", kind): 1}
    assert stats["forwarded"] == 1 + (kind == "drop_after")


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_botocore_retries_each_fault(fault_proxy, bucket, kind):
    # Standard retries, two attempts in all: a fault botocore deems retryable is sent twice, then surfaces.
    s3 = client("s3", fault_proxy.url, attempts=2)
    fault_proxy.set_faults(1.0, kinds=(kind,))
    with pytest.raises((botocore.exceptions.ClientError, botocore.exceptions.ConnectionClosedError)):
        s3.get_object(Bucket=bucket, Key="missing-anyway")
    assert fault_proxy.stats()["received"] == 2


def test_put_dropped_after_forwarding_fails_in_the_client_yet_is_stored(moto, fault_proxy, bucket):
    # The retry config as services write it: max_attempts=1 means one retry, so the PUT is sent (and stored) twice.
    s3 = client("s3", fault_proxy.url, retries={"mode": "standard", "max_attempts": 1})
    fault_proxy.set_faults(1.0, kinds=("drop_after",), methods={"PUT"})
    # ConnectionClosedError is an HTTPClientError, not a botocore ConnectionError: catching only that misses drops.
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        s3.put_object(Bucket=bucket, Key="ghost.png", Body=b"pixels")
    assert client("s3", moto.url).get_object(Bucket=bucket, Key="ghost.png")["Body"].read() == b"pixels"
    assert fault_proxy.stats()["by_method"] == {("PUT", "drop_after"): 2}


def test_random_faults_are_absorbed_by_retries(moto, fault_proxy, bucket):
    s3 = client("s3", fault_proxy.url, attempts=10)
    fault_proxy.set_faults(0.3, seed=3)
    for index in range(10):
        s3.put_object(Bucket=bucket, Key=f"flaky/{index}", Body=b"x" * index)
        assert s3.get_object(Bucket=bucket, Key=f"flaky/{index}")["Body"].read() == b"x" * index
    fault_proxy.clear()
    stats = fault_proxy.stats()
    assert stats["faults_total"] >= 3 and stats["received"] == 20 + stats["faults_total"]
    assert sum(stats["by_method"].values()) == stats["faults_total"]


def statuses(proxy: FaultProxy, bucket: str, count: int) -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    seen = []
    for _ in range(count):
        conn.request("GET", f"/{bucket}?list-type=2")
        response = conn.getresponse()
        response.read()
        seen.append(response.status)
    conn.close()
    return seen


def test_seeded_faults_repeat_and_respect_methods(fault_proxy, bucket):
    fault_proxy.set_faults(0.5, kinds=("500",), methods={"GET"}, seed=7)
    first = statuses(fault_proxy, bucket, 20)
    fault_proxy.set_faults(0.5, kinds=("500",), methods={"GET"}, seed=7)
    assert statuses(fault_proxy, bucket, 20) == first and set(first) == {200, 500}
    fault_proxy.set_faults(1.0, kinds=("500",), methods={"PUT"})
    assert statuses(fault_proxy, bucket, 5) == [200] * 5
    with pytest.raises(ValueError):
        fault_proxy.set_faults(0.5, kinds=("teapot",))
    with pytest.raises(ValueError):
        fault_proxy.set_faults(1.5)


def test_expect_continue_and_chunked_bodies_are_forwarded(moto, fault_proxy, bucket):
    # Expect: 100-continue is answered before the body is sent, as a real S3 endpoint would.
    with socket.create_connection(("127.0.0.1", fault_proxy.port), timeout=10) as sock:
        sock.sendall(f"PUT /{bucket}/expect HTTP/1.1\r\nHost: 127.0.0.1:{fault_proxy.port}\r\n"
                     "Content-Length: 4\r\nExpect: 100-continue\r\n\r\n".encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(b"data")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")

    conn = http.client.HTTPConnection("127.0.0.1", fault_proxy.port, timeout=10)
    conn.request("PUT", f"/{bucket}/chunked", body=iter([b"first,", b"second"]), encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200, response.read()
    conn.close()

    s3 = client("s3", moto.url)
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == b"data"
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"first,second"
    assert fault_proxy.stats()["chunked_requests"] == 1
