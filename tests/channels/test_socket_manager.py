"""channels/socket_manager.py: an emit on one replica reaches a socket on another, through a
real redis-server, and Redis down degrades to local delivery instead of losing everything."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator

import pytest
import socketio
from aiohttp import web

from channels.socket_manager import LocalFirstRedisManager, client_manager
from tests.redis_server import RedisServer, installed

pytestmark = pytest.mark.skipif(installed() is None, reason="redis-server is not installed (system-packages.txt)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Replica:
    """A socket.io server like one Rasa replica's, on its own port, sharing Redis."""

    def __init__(self, redis_url: str) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=LocalFirstRedisManager(redis_url))
        self.port = free_port()
        self.app = web.Application()
        self.sio.attach(self.app)
        self.runner = web.AppRunner(self.app)

        @self.sio.on("join")
        async def join(sid: str, room: str) -> None:
            self.sio.enter_room(sid, room)
            await self.sio.emit("joined", room, room=sid)

    async def start(self) -> "Replica":
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()


class Widget:
    """A socket.io client in one conversation's room, recording what it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[Any] = []
        self.joined = asyncio.Event()
        self.client.on("bot_uttered", self.received.append)
        self.client.on("joined", lambda room: self.joined.set())

    async def connect(self, replica: Replica, room: str) -> "Widget":
        await self.client.connect(f"http://127.0.0.1:{replica.port}", transports=["websocket"])
        await self.client.emit("join", room)
        await asyncio.wait_for(self.joined.wait(), 5)
        return self

    async def got(self, count: int, timeout: float = 5.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        return self.received


@pytest.fixture
def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


async def listening(server: RedisServer, *replicas: Replica) -> None:
    """Until each replica's listener has subscribed (it starts with the first connection)."""
    with server.client() as client:
        for _ in range(250):
            counts = client.pubsub_numsub(replicas[0].sio.manager.channel)
            if counts and counts[0][1] >= len(replicas):
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the replicas never subscribed")


def test_a_reply_made_on_another_replica_reaches_the_socket(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        a, b = await Replica(redis_server.url).start(), await Replica(redis_server.url).start()
        widget = await Widget().connect(a, "conversation-1")
        other = await Widget().connect(b, "conversation-2")
        await listening(redis_server, a, b)
        await b.sio.emit("bot_uttered", {"text": "staff reply from b"}, room="conversation-1")
        await a.sio.emit("bot_uttered", {"text": "answer from a"}, room="conversation-1")
        # both arrive (a's own, delivered locally, first: the other crossed Redis)
        assert sorted(m["text"] for m in await widget.got(2)) == ["answer from a", "staff reply from b"]
        await asyncio.sleep(0.3)  # nothing twice, nothing to the other conversation
        assert len(widget.received) == 2 and other.received == []
        for client in (widget, other):
            await client.client.disconnect()
        await a.stop()
        await b.stop()

    asyncio.run(scenario())


def test_redis_down_keeps_local_delivery_and_recovers(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        a, b = await Replica(redis_server.url).start(), await Replica(redis_server.url).start()
        widget = await Widget().connect(a, "conversation-1")
        warm_up = await Widget().connect(b, "warm-up")  # b's listener starts with its first socket
        await listening(redis_server, a, b)
        redis_server.stop()
        await a.sio.emit("bot_uttered", {"text": "local while redis is down"}, room="conversation-1")
        assert await widget.got(1) == [{"text": "local while redis is down"}]
        await b.sio.emit("bot_uttered", {"text": "lost while redis is down"}, room="conversation-1")
        assert b.sio.manager.redis_down is True
        redis_server.start()
        await listening(redis_server, a, b)  # listeners reconnect by themselves, within about a second
        await b.sio.emit("bot_uttered", {"text": "across replicas again"}, room="conversation-1")
        assert (await widget.got(2))[-1] == {"text": "across replicas again"}
        assert b.sio.manager.redis_down is False
        for client in (widget, warm_up):
            await client.client.disconnect()
        await a.stop()
        await b.stop()

    asyncio.run(scenario())


def test_without_a_redis_url_the_in_process_manager_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
    assert client_manager() is None
    monkeypatch.setenv("SOCKETIO_REDIS_URL", "redis://127.0.0.1:1/0")
    assert isinstance(client_manager(), LocalFirstRedisManager)
