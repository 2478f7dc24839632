"""Fixtures of the fault tests: brokers, moto and the proxy are started here and torn down after each test.

They never touch the shared Redis (6379) and RabbitMQ (5672): each test runs its own on free ports.
Missing binaries skip the tests locally and fail them under CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.faults.harness import FaultProxy, MotoServer, RabbitServer, RedisServer
from tests.faults.stack import AWS, FaultStack


def need(binary: str) -> None:
    if shutil.which(binary) is None and not os.path.exists(f"/usr/sbin/{binary}"):
        message = f"{binary} is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run must install it")
        pytest.skip(message)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    for name, value in AWS.items():
        os.environ.setdefault(name, value)
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_engine_cache(tmp_path_factory):
    """Shared by every worker of the session, so the ONNX export is made once."""
    return tmp_path_factory.mktemp("fault-engine-cache")


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    need("redis-server")
    server = RedisServer(data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def rabbit_server(tmp_path) -> Iterator[RabbitServer]:
    need("rabbitmq-server")
    server = RabbitServer(data_dir=tmp_path / "rabbit")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server.url) as running:
        yield running


@pytest.fixture
def make_stack(moto_server, proxy, tmp_path, fault_engine_cache):
    stacks: list[FaultStack] = []

    def make(broker_url: str, **settings: str) -> FaultStack:
        stack = FaultStack(broker_url=broker_url, moto_url=moto_server.url, proxy=proxy, tmp=tmp_path,
                           cache_dir=fault_engine_cache, settings=settings)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
