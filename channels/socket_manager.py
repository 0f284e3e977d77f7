"""socket.io delivery across Rasa replicas: python-socketio's Redis manager, local first.

A widget's socket lives on one replica, but its answer may be produced on another (a staff
reply posted through the HTTP API lands on whichever replica nginx picks). With
$SOCKETIO_REDIS_URL set, every emit is published on a Redis channel that all replicas
listen on (python-socketio's `AsyncRedisManager`), and the replica holding the socket
delivers it. Unset, the default in-process manager serves `make run`'s single server.

Two changes to the stock manager, both about what happens on the emitting replica:
- it delivers to its own sockets at once and skips its own message when it comes back from
  Redis, instead of waiting for the round trip: a reply never waits on Redis, and nothing is
  lost in the moment after the first connection, before the listener has subscribed;
- Redis down is a degraded mode, not an error: sockets on the emitting replica still get
  their messages, the others get them again when Redis is back (the listener reconnects by
  itself); each failure is logged once per outage. Redis calls time out after
  REDIS_TIMEOUT_SECONDS rather than hanging the reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from socketio import AsyncManager, AsyncRedisManager

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 1.0
CHANNEL = "zhuqi-socketio"


class LocalFirstRedisManager(AsyncRedisManager):
    """AsyncRedisManager that delivers locally first and keeps working without Redis."""

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.redis_down = False
        super().__init__(url, channel=channel)

    def _redis_connect(self) -> None:
        """Publishing times out; the listener's connection may idle (a read timeout would
        drop it every few seconds) and is checked with pings instead."""
        from redis import asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # a pooled connection Redis closed (a restart) is retried once on a new one, so the
        # first message after Redis is back is not lost; a timeout is not (it may have gone out)
        self.redis = aioredis.Redis.from_url(self.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                             socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                             retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
        listener = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                           health_check_interval=10)
        self.pubsub = listener.pubsub(ignore_subscribe_messages=True)

    async def _redis_listen_with_retries(self) -> Any:
        """The stock loop, retrying every second instead of backing off to a minute: a
        replica hears the others again within RETRY_SECONDS of Redis coming back."""
        from redis.exceptions import RedisError

        connect = False
        while True:
            try:
                if connect:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    connect = False
                    logger.warning("socket.io: listening on Redis again")
                async for message in self.pubsub.listen():
                    yield message
            except (RedisError, OSError) as error:
                if not connect:
                    logger.error("socket.io: lost Redis (%s); retrying every %s s", error, RETRY_SECONDS)
                connect = True
                await asyncio.sleep(RETRY_SECONDS)

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: str | None = None,
                   skip_sid: Any = None, callback: Any = None, **kwargs: Any) -> None:
        if callback is not None or kwargs.get("ignore_queue"):  # acks stay the stock way
            await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                               callback=callback, **kwargs)
            return
        await AsyncManager.emit(self, event, data, namespace=namespace or "/", room=room, skip_sid=skip_sid)
        await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("host_id") == self.host_id and message.get("callback") is None:
            return  # delivered locally when it was emitted
        await super()._handle_emit(message)

    async def _publish(self, data: Any) -> Any:
        try:
            result = await self.redis.publish(self.channel, self._encode(data))
        except Exception as error:  # noqa: BLE001 - any Redis failure: degraded, not broken
            if not self.redis_down:
                logger.error("socket.io: Redis unavailable (%s); only this replica's sockets get "
                             "messages until it is back", error)
            self.redis_down = True
            return None
        if self.redis_down:
            logger.warning("socket.io: Redis is back; delivery across replicas resumed")
            self.redis_down = False
        return result

    @staticmethod
    def _encode(data: Any) -> bytes:
        import pickle  # the stock manager's own wire format: every replica must speak it

        return pickle.dumps(data)


def client_manager() -> AsyncManager | None:
    """The manager for this process: Redis-backed when $SOCKETIO_REDIS_URL is set."""
    url = os.environ.get("SOCKETIO_REDIS_URL", "").strip()
    return LocalFirstRedisManager(url) if url else None
