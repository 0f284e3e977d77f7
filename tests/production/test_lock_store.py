"""The atomic lock store against a real redis-server: replicas in processes, asyncio tasks,
a replica that dies holding the lock, Redis stopping and hanging, endpoints.yml loading."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.core.utils import AvailableEndpoints
from rasa.utils.endpoints import EndpointConfig

from production.lock_store import AtomicRedisLockStore, LockStoreUnavailable
from tests.production.conftest import WAIT, StoreFactory, factory
from tests.redis_server import RedisServer

CLASS = "production.lock_store.AtomicRedisLockStore"
FORK = multiprocessing.get_context("fork")


async def enter(store: AtomicRedisLockStore, conversation: str, **lock: float) -> int:
    """Take the lock as Rasa's MessageProcessor does; the ticket that was served."""
    async with store.lock(conversation, **lock) as held:
        return held.now_serving


def _replica(port: int, conversation: str, messages: int, start_at: float, out: "multiprocessing.Queue") -> None:
    """One Rasa replica: `messages` concurrent messages of the conversation, each a
    read-modify-write of a shared counter under the lock, as a tracker update is."""
    store = AtomicRedisLockStore(host="127.0.0.1", port=port, wait_time_in_seconds=WAIT)
    shared = redis.Redis(host="127.0.0.1", port=port)

    async def message() -> tuple[int, float, float]:
        async with store.lock(conversation) as lock:
            entered = time.monotonic()
            count = int(shared.get("shared") or 0)
            await asyncio.sleep(0.003)
            shared.set("shared", count + 1)
            return lock.now_serving, entered, time.monotonic()

    async def burst() -> list[tuple[int, float, float]]:
        await asyncio.sleep(start_at - time.time())
        return await asyncio.gather(*(message() for _ in range(messages)))

    out.put(asyncio.run(burst()))


def test_replicas_take_turns_in_ticket_order(redis_server: RedisServer, store_factory: StoreFactory) -> None:
    replicas, messages = 4, 5
    out = FORK.Queue()
    start_at = time.time() + 0.3
    workers = [FORK.Process(target=_replica, args=(redis_server.port, "burst", messages, start_at, out))
               for _ in range(replicas)]
    for worker in workers:
        worker.start()
    turns = sorted((turn for _ in workers for turn in out.get(timeout=20)), key=lambda turn: turn[1])
    for worker in workers:
        worker.join(timeout=5)

    with redis_server.client() as client:
        assert int(client.get("shared")) == replicas * messages  # no update lost
    tickets = [ticket for ticket, _, _ in turns]
    assert tickets == list(range(1, replicas * messages + 1))  # served in ticket order
    for (_, _, left), (_, entered, _) in zip(turns, turns[1:]):
        assert left < entered  # never two holders at once
    assert store_factory().get_lock("burst") is None  # nothing left queued


def test_tickets_are_served_first_in_first_out(store: AtomicRedisLockStore) -> None:
    first, second, third = (store.issue_ticket("c", 10) for _ in range(3))
    assert (first, second, third) == (1, 2, 3)
    assert [store.tickets_ahead("c", t) for t in (first, second, third)] == [0, 1, 2]
    store.finish_serving("c", second)  # a waiter gave up: the order of the rest stands
    assert [store.tickets_ahead("c", t) for t in (first, third)] == [0, 1]
    store.cleanup("c", first)
    assert store.tickets_ahead("c", third) == 0
    assert [t.number for t in store.get_lock("c").tickets] == [third]
    store.cleanup("c", third)
    assert store.get_lock("c") is None and not store.is_someone_waiting("c")
    assert store.issue_ticket("c", 10) == 4  # numbers never repeat


def test_concurrent_tasks_through_rasas_lock_api(store_factory: StoreFactory) -> None:
    replicas = [store_factory(), store_factory()]  # two replicas in one event loop
    inside: list[int] = []
    served: list[int] = []

    async def message(number: int) -> None:
        async with replicas[number % 2].lock("sender") as lock:
            assert isinstance(lock, TicketLock)
            inside.append(number)
            assert len(inside) == 1, inside
            served.append(lock.now_serving)
            await asyncio.sleep(0.002)
            inside.remove(number)

    async def burst() -> None:
        await asyncio.gather(*(message(n) for n in range(12)))

    asyncio.run(burst())
    assert served == list(range(1, 13))
    assert not replicas[0].is_someone_waiting("sender")


def _die_holding(port: int, held: "multiprocessing.Event") -> None:
    store = AtomicRedisLockStore(host="127.0.0.1", port=port, lock_lifetime=0.6)

    async def hold() -> None:
        async with store.lock("dead"):
            held.set()
            await asyncio.sleep(60)

    asyncio.run(hold())


def test_a_dead_holder_blocks_only_until_its_ticket_expires(
    redis_server: RedisServer, store: AtomicRedisLockStore
) -> None:
    held = FORK.Event()
    replica = FORK.Process(target=_die_holding, args=(redis_server.port, held))
    replica.start()
    assert held.wait(10)
    os.kill(replica.pid, signal.SIGKILL)  # no finally, no release
    replica.join()

    async def next_message() -> tuple[int, float]:
        started = time.monotonic()
        async with store.lock("dead", lock_lifetime=10) as lock:
            return lock.now_serving, time.monotonic() - started

    ticket, waited = asyncio.run(next_message())
    assert ticket == 2
    assert 0.3 < waited < 3  # waited for the dead ticket, then went ahead


def test_a_waiter_whose_ticket_expires_gets_a_lock_error(store: AtomicRedisLockStore) -> None:
    holder = store.issue_ticket("busy", 10)
    assert store.tickets_ahead("busy", holder) == 0
    started = time.monotonic()
    with pytest.raises(LockError, match="expired before its turn"):
        asyncio.run(enter(store, "busy", lock_lifetime=0.3))
    assert 0.25 < time.monotonic() - started < 2
    assert [t.number for t in store.get_lock("busy").tickets] == [holder]


def test_redis_stopped_fails_fast_and_recovers(own_redis: RedisServer) -> None:
    store = factory(own_redis)(socket_timeout=2)
    assert asyncio.run(enter(store, "c")) == 1
    own_redis.stop()

    started = time.monotonic()
    with pytest.raises(LockStoreUnavailable, match=f"127.0.0.1:{own_redis.port}"):
        asyncio.run(enter(store, "c"))
    assert time.monotonic() - started < 1  # refused at once, well inside the socket timeout

    own_redis.start()  # empty, without the scripts: they are loaded again
    assert asyncio.run(enter(store, "c")) == 1


def test_redis_hanging_fails_after_the_socket_timeout(own_redis: RedisServer) -> None:
    store = factory(own_redis)(socket_timeout=0.5)
    with own_redis.paused():
        started = time.monotonic()
        with pytest.raises(LockStoreUnavailable, match="Timeout"):
            store.issue_ticket("c", 10)
        assert 0.4 < time.monotonic() - started < 2
    assert asyncio.run(enter(store, "other")) == 1  # the pool reconnects by itself


def test_redis_lost_while_holding_does_not_fail_the_message(own_redis: RedisServer) -> None:
    store = factory(own_redis)(socket_timeout=1)
    processed: list[str] = []

    async def message() -> None:
        async with store.lock("c"):
            own_redis.stop()
            processed.append("c")

    asyncio.run(message())  # the failed release is logged, not raised
    assert processed == ["c"]


def test_endpoints_yml_loads_the_store(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_REDIS_PORT", str(redis_server.port))
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"lock_store:\n  type: {CLASS}\n  url: 127.0.0.1\n  port: ${{TEST_REDIS_PORT}}\n"
        "  db: 2\n  key_prefix: test\n  lock_lifetime: 30\n"
    )
    store = LockStore.create(AvailableEndpoints.read_endpoints(str(endpoints)).lock_store)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.lock_lifetime == 30
    store.issue_ticket("c")
    with redis.Redis(host="127.0.0.1", port=redis_server.port, db=2) as client:
        assert int(client.get("test:lock:{c}:counter")) == 1


@pytest.mark.parametrize("settings", [
    {"host": "127.0.0.1", "db": 3},
    {"url": "redis://127.0.0.1:{port}/3"},
])
def test_endpoint_config_creates_the_store(redis_server: RedisServer, settings: dict[str, object]) -> None:
    settings = {key: str(value).format(port=redis_server.port) for key, value in settings.items()}
    store = LockStore.create(EndpointConfig(type=CLASS, port=redis_server.port, **settings))
    assert isinstance(store, AtomicRedisLockStore)
    store.issue_ticket("c")
    with redis.Redis(host="127.0.0.1", port=redis_server.port, db=3) as client:
        assert client.exists("zhuqi:lock:{c}:counter")
        client.flushdb()


def test_a_mistyped_setting_fails_at_startup() -> None:
    with pytest.raises(TypeError, match="hots"):
        LockStore.create(EndpointConfig(type=CLASS, hots="redis"))
