"""A Redis lock store whose tickets are issued, checked and released atomically.

Replaces `rasa.core.lock_store.RedisLockStore` of Rasa Open Source 3.6 for several Rasa
replicas. That store issues a ticket by reading the lock's JSON, appending a ticket and
writing it back, so two replicas handling messages of one conversation at the same moment
can both read the same lock, both get the same ticket and both go ahead: a turn is lost
when the second tracker save overwrites the first (`scripts/bench_lock.py` measures it).
Rasa's own fix, `ConcurrentRedisLockStore` (RasaHQ/rasa#11256), was reverted from Open
Source (RasaHQ/rasa#11428). Drop this module when the Rasa in use issues tickets atomically.

Here a ticket is an `INCR` on a per-conversation counter, and the queue of waiting tickets
changes only inside Lua scripts, so issuing, checking and releasing are each one atomic
Redis command. Expiry times come from Redis's clock, so replicas with skewed clocks agree.
Calls are synchronous, as in Rasa's store: one round trip each, bounded by socket_timeout;
Redis down raises `LockStoreUnavailable` and the connection pool reconnects when it returns.

    lock_store:
      type: production.lock_store.AtomicRedisLockStore
      url: redis            # a host, as for Rasa's store, or redis://host:port/db
      port: 6379
      lock_lifetime: 60     # seconds a ticket lives; default TICKET_LOCK_LIFETIME or 60
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncGenerator, Iterator

import redis
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import (
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    LockStore,
)
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "zhuqi"
# between two looks at the queue (Rasa: 1 s, which a waiting message waited whole: a burst's
# p50 was 2.5 s on an idle machine); a look is one short Lua call
DEFAULT_WAIT_TIME_IN_SECONDS = 0.1
# Ticket numbers must not repeat while a holder that overran its lifetime may still
# release its number, so the counter outlives every ticket by far.
COUNTER_TTL_SECONDS = 24 * 3600

# Shared by the scripts: Redis's time, and dropping the expired tickets at the head of
# the queue (their holders died or overran), which returns the live head or nil.
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live_head(queue, expires, now)
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then return nil end
    local until_ms = tonumber(redis.call('HGET', expires, head))
    if until_ms and until_ms > now then return head end
    redis.call('ZREM', queue, head)
    redis.call('HDEL', expires, head)
  end
end
"""

# KEYS: counter, queue, expires. ARGV: lifetime ms, counter ttl ms. Returns the ticket.
_ISSUE = (
    _PRELUDE
    + """
local now = now_ms()
live_head(KEYS[2], KEYS[3], now)
local ticket = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local lifetime = tonumber(ARGV[1])
redis.call('ZADD', KEYS[2], ticket, ticket)
redis.call('HSET', KEYS[3], ticket, string.format('%d', now + lifetime))
if redis.call('PTTL', KEYS[2]) < lifetime then
  redis.call('PEXPIRE', KEYS[2], lifetime)
  redis.call('PEXPIRE', KEYS[3], lifetime)
end
return ticket
"""
)

# KEYS: queue, expires. ARGV: ticket. Returns {tickets ahead, expiry ms}: {0, t} is the
# holder's turn, {-1, 0} a ticket that expired (or was released) before its turn.
_TURN = (
    _PRELUDE
    + """
local now = now_ms()
local head = live_head(KEYS[1], KEYS[2], now)
local until_ms = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not until_ms or until_ms <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {-1, 0}
end
if head == ARGV[1] then return {0, until_ms} end
return {redis.call('ZRANK', KEYS[1], ARGV[1]), until_ms}
"""
)

# KEYS: queue, expires. ARGV: ticket. Returns 1 if the ticket was still queued. Redis
# deletes the keys once they are empty.
_RELEASE = """
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

# KEYS: queue, expires. Returns the live head, or false.
_PRUNE = _PRELUDE + "return live_head(KEYS[1], KEYS[2], now_ms()) or false"


class LockStoreUnavailable(LockError):
    """Redis did not answer in time or refused the command.

    A `LockError`, so callers of Rasa's lock see the failure they already handle: the
    message is not processed (Rasa answers 500) rather than processed unlocked.
    """


class AtomicRedisLockStore(LockStore):
    """Rasa's ticket lock for conversations, kept in Redis and changed atomically."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        *,
        url: str | None = None,
        host: str = "localhost",
        port: int | str = 6379,
        db: int | str = 1,
        username: str | None = None,
        password: str | None = None,
        use_ssl: bool | str = False,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
        key_prefix: str | None = None,
        socket_timeout: float | str = DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
        lock_lifetime: float | str = LOCK_LIFETIME,
        wait_time_in_seconds: float | str = DEFAULT_WAIT_TIME_IN_SECONDS,
    ) -> None:
        """Connect lazily, so Rasa starts before Redis does and recovers when it returns.

        Args:
            endpoint_config: what Rasa passes for `type: production.lock_store...` in
                endpoints.yml; its `url` and keywords fill the arguments below.
            url: a host name (as Rasa's `RedisLockStore` reads `url`) or a
                `redis://`/`rediss://` URL, which wins over host, port and db.
            host, port, db, username, password, use_ssl, ssl_certfile, ssl_keyfile,
                ssl_ca_certs, socket_timeout: as for Rasa's `RedisLockStore`; the
                socket timeout bounds connecting too, so no call hangs longer.
            key_prefix: alphanumeric; keys are `<prefix>:lock:{<conversation>}:...`.
            lock_lifetime: seconds a ticket lives, waiting plus holding.
            wait_time_in_seconds: pause between two looks at the queue.
        """
        if endpoint_config is not None:  # Rasa's way: everything from endpoints.yml
            settings = {"url": endpoint_config.url, **endpoint_config.kwargs}
            self.__init__(**settings)  # type: ignore[misc]
            return
        timeout = float(socket_timeout)
        options: dict[str, Any] = dict(
            username=username,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        ssl = dict(ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, ssl_ca_certs=ssl_ca_certs)
        if url and "://" in url:
            tls = ssl if url.startswith("rediss://") else {}
            self.red = redis.Redis.from_url(url, **options, **tls)
        else:
            self.red = redis.Redis(
                host=url or host, port=int(port), db=int(db), ssl=_flag(use_ssl), **ssl, **options
            )
        server = self.red.connection_pool.connection_kwargs  # named in errors, without secrets
        self.where = f"{server.get('host')}:{server.get('port')}/{server.get('db')}"
        if key_prefix and not str(key_prefix).isalnum():
            raise ValueError(f"lock store key_prefix must be alphanumeric, not {key_prefix!r}")
        self.key_prefix = f"{key_prefix or DEFAULT_KEY_PREFIX}:lock:"
        self.lock_lifetime = float(lock_lifetime)
        self.wait_time_in_seconds = float(wait_time_in_seconds)
        self._issue = self.red.register_script(_ISSUE)
        self._turn = self.red.register_script(_TURN)
        self._release = self.red.register_script(_RELEASE)
        self._prune = self.red.register_script(_PRUNE)
        super().__init__()

    def keys(self, conversation_id: str) -> tuple[str, str, str]:
        """The counter, queue and expiry keys; the braces keep them on one cluster slot."""
        base = f"{self.key_prefix}{{{conversation_id}}}"
        return f"{base}:counter", f"{base}:queue", f"{base}:expires"

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float | None = None,
        wait_time_in_seconds: float | None = None,
    ) -> AsyncGenerator[TicketLock, None]:
        """Wait for this message's turn in the conversation, in ticket order.

        Raises `LockError` if the ticket expires before its turn (after `lock_lifetime`,
        as Rasa does) and `LockStoreUnavailable` when Redis fails. Defaults come from the
        store, since Rasa calls `lock(conversation_id)` alone.
        """
        wait = self.wait_time_in_seconds if wait_time_in_seconds is None else wait_time_in_seconds
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        held = False
        try:
            lock = await self._wait_for_turn(conversation_id, ticket, wait)
            held = True
            yield lock
        finally:
            self._release_quietly(conversation_id, ticket, held)

    async def _wait_for_turn(self, conversation_id: str, ticket: int, wait: float) -> TicketLock:
        while True:
            ahead, expires_ms = self._turn_of(conversation_id, ticket)
            if ahead == 0:
                logger.debug(f"Acquired lock for conversation '{conversation_id}'.")
                return TicketLock(conversation_id, deque([Ticket(ticket, expires_ms / 1000)]))
            if ahead < 0:
                raise LockError(
                    f"Could not acquire lock for conversation_id '{conversation_id}': "
                    f"ticket {ticket} expired before its turn."
                )
            logger.debug(
                f"Lock for conversation '{conversation_id}': {ahead} ticket(s) ahead of "
                f"{ticket}, retrying in {wait} seconds."
            )
            await asyncio.sleep(wait)

    def _release_quietly(self, conversation_id: str, ticket: int, held: bool) -> None:
        """Release without raising: a failed release must not turn a processed message
        into an error, and an unreleased ticket expires anyway."""
        try:
            still_queued = self._run(self._release, self.keys(conversation_id)[1:], [ticket])
        except LockStoreUnavailable as error:
            logger.warning(
                f"Could not release ticket {ticket} of conversation '{conversation_id}' "
                f"({error}); it expires after its lifetime."
            )
            return
        if held and not still_queued:
            logger.warning(
                f"Ticket {ticket} of conversation '{conversation_id}' expired (or Redis "
                f"lost it) while its message was processed: the next message may have "
                f"overlapped it. Raise TICKET_LOCK_LIFETIME / lock_lifetime if it expired."
            )

    def _run(self, script: Any, keys: tuple[str, ...], args: list[Any]) -> Any:
        with self._failures():
            return script(keys=list(keys), args=args)

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Redis errors as one clear `LockStoreUnavailable` naming the server."""
        try:
            yield
        except redis.RedisError as error:
            raise LockStoreUnavailable(
                f"Redis lock store at {self.where} failed: {error}"
            ) from error

    # Rasa's LockStore interface, each step atomic.

    def issue_ticket(self, conversation_id: str, lock_lifetime: float | None = None) -> int:
        """Queue a new ticket, numbered after every ticket issued before it."""
        lifetime = self.lock_lifetime if lock_lifetime is None else lock_lifetime
        lifetime_ms = max(1, int(lifetime * 1000))
        counter_ttl_ms = max(COUNTER_TTL_SECONDS * 1000, 2 * lifetime_ms)
        return int(self._run(self._issue, self.keys(conversation_id), [lifetime_ms, counter_ttl_ms]))

    def tickets_ahead(self, conversation_id: str, ticket: int) -> int | None:
        """How many live tickets come before `ticket`: 0 is its turn, None it expired."""
        ahead, _ = self._turn_of(conversation_id, ticket)
        return None if ahead < 0 else ahead

    def _turn_of(self, conversation_id: str, ticket: int) -> tuple[int, int]:
        ahead, expires_ms = self._run(self._turn, self.keys(conversation_id)[1:], [ticket])
        return int(ahead), int(expires_ms)

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """A snapshot of the queue (expiry times in Redis's clock, in seconds)."""
        _, queue, expires = self.keys(conversation_id)
        pipe = self.red.pipeline(transaction=True)
        pipe.zrange(queue, 0, -1)
        pipe.hgetall(expires)
        with self._failures():
            tickets, expiry = pipe.execute()
        if not tickets:
            return None
        return TicketLock(
            conversation_id,
            deque(Ticket(int(t), int(expiry.get(t, 0)) / 1000) for t in tickets),
        )

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets at the head of the queue."""
        self._run(self._prune, self.keys(conversation_id)[1:], [])

    def is_someone_waiting(self, conversation_id: str) -> bool:
        """Whether any ticket (held or waiting) is queued."""
        return self.get_lock(conversation_id) is not None

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove the ticket from the queue."""
        self._run(self._release, self.keys(conversation_id)[1:], [ticket_number])

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove the ticket; Redis drops the queue once it is empty."""
        self.finish_serving(conversation_id, ticket_number)

    def delete_lock(self, conversation_id: str) -> None:
        """Forget every ticket of the conversation (the counter stays, so numbers grow)."""
        with self._failures():
            deleted = self.red.delete(*self.keys(conversation_id)[1:])
        self._log_deletion(conversation_id, bool(deleted))

    def save_lock(self, lock: TicketLock) -> None:
        """Not supported: writing a whole lock back is the race this store removes."""
        raise NotImplementedError("AtomicRedisLockStore changes tickets only through its scripts")


def _flag(value: bool | str) -> bool:
    """endpoints.yml values substituted from the environment arrive as text."""
    return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes"}
