"""A redis-server for the session (tests/redis_server.py) and lock stores on it."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from production.lock_store import AtomicRedisLockStore
from tests.redis_server import RedisServer, installed

StoreFactory = Callable[..., AtomicRedisLockStore]
WAIT = 0.005  # seconds between two looks at the queue: short, so tests stay fast


def _server() -> RedisServer:
    if installed() is None:
        pytest.skip("redis-server is not installed (Debian's redis-server, system-packages.txt)")
    return RedisServer().start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = _server()
    yield server
    server.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that stop or pause it."""
    server = _server()
    yield server
    server.close()


def factory(server: RedisServer) -> StoreFactory:
    def make(**settings: object) -> AtomicRedisLockStore:
        settings = {"host": "127.0.0.1", "port": server.port, "wait_time_in_seconds": WAIT, **settings}
        return AtomicRedisLockStore(**settings)  # type: ignore[arg-type]

    return make


@pytest.fixture
def store_factory(redis_server: RedisServer) -> StoreFactory:
    """New stores (one per simulated replica) on an emptied session server."""
    with redis_server.client() as client:
        client.flushall()
    return factory(redis_server)


@pytest.fixture
def store(store_factory: StoreFactory) -> AtomicRedisLockStore:
    return store_factory()
