"""Measure what the conversation lock protects when several Rasa replicas share Redis.

`python scripts/bench_lock.py` starts a redis-server of its own on a free port
(tests/redis_server.py), then for each variant forks `--replicas` processes. Every
conversation gets a burst of `--burst` messages within `--spread-ms`, dealt round-robin to
the replicas as a load balancer would; each message does what a tracker update does, a
read-modify-write of the conversation's counter in Redis taking `--work-ms`, under:

- none: no lock at all;
- rasa: Rasa 3.6's `RedisLockStore` (its ticket is a read-modify-write of the lock JSON);
- atomic: `production.lock_store.AtomicRedisLockStore`.

It prints one row per variant: updates lost (the count falls short of the messages that
ran), conversations that lost any, overlaps (a message entered while another message of its
conversation was inside), `LockError`s, the longest wait for the lock and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncContextManager, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rasa.core.lock_store import LockError, RedisLockStore  # noqa: E402

from production.lock_store import AtomicRedisLockStore  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

VARIANTS = ("none", "rasa", "atomic")
Visit = tuple[str, float, float, float]  # conversation, arrived, entered, left (monotonic)


@dataclass
class Settings:
    port: int
    replicas: int
    conversations: int
    burst: int
    work: float
    spread: float
    wait: float
    lifetime: float


def _locker(variant: str, settings: Settings) -> Callable[[str], AsyncContextManager[Any]]:
    """What one replica wraps a message in."""
    if variant == "none":
        return lambda conversation: contextlib.nullcontext()
    if variant == "rasa":
        rasa = RedisLockStore(host="127.0.0.1", port=settings.port, db=1)
        return lambda conversation: rasa.lock(conversation, settings.lifetime, settings.wait)
    atomic = AtomicRedisLockStore(host="127.0.0.1", port=settings.port, db=1,
                                  lock_lifetime=settings.lifetime, wait_time_in_seconds=settings.wait)
    return atomic.lock


def _replica(variant: str, settings: Settings, number: int, start_at: float,
             out: "multiprocessing.Queue[tuple[list[Visit], int]]") -> None:
    locked = _locker(variant, settings)
    shared = redis.Redis(host="127.0.0.1", port=settings.port, db=0)
    arrivals = random.Random(number)
    errors = 0

    async def message(conversation: str, delay: float) -> Visit | None:
        nonlocal errors
        await asyncio.sleep(delay)
        arrived = time.monotonic()
        try:
            async with locked(conversation):
                entered = time.monotonic()
                count = int(shared.get(conversation) or 0)
                await asyncio.sleep(settings.work)
                shared.set(conversation, count + 1)
                return conversation, arrived, entered, time.monotonic()
        except LockError:
            errors += 1
            return None

    async def burst() -> list[Visit]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        mine = [(f"c{c}", m) for c in range(settings.conversations) for m in range(settings.burst)
                if (c + m) % settings.replicas == number]
        visits = await asyncio.gather(*(message(c, arrivals.uniform(0, settings.spread)) for c, _ in mine))
        return [visit for visit in visits if visit is not None]

    out.put((asyncio.run(burst()), errors))


def measure(variant: str, settings: Settings) -> dict[str, float]:
    with redis.Redis(host="127.0.0.1", port=settings.port) as client:
        client.flushall()
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    start_at = time.time() + 0.5
    workers = [fork.Process(target=_replica, args=(variant, settings, n, start_at, out))
               for n in range(settings.replicas)]
    for worker in workers:
        worker.start()
    visits: list[Visit] = []
    errors = 0
    for _ in workers:
        got, failed = out.get(timeout=settings.lifetime * settings.burst + 120)
        visits += got
        errors += failed
    for worker in workers:
        worker.join()

    with redis.Redis(host="127.0.0.1", port=settings.port) as client:
        counts = {f"c{c}": int(client.get(f"c{c}") or 0) for c in range(settings.conversations)}
    ran: dict[str, list[Visit]] = {c: [] for c in counts}
    for visit in visits:
        ran[visit[0]].append(visit)
    overlaps = 0
    for conversation in ran.values():
        inside_until = float("-inf")
        for _, _, entered, left in sorted(conversation, key=lambda visit: visit[2]):
            overlaps += entered < inside_until
            inside_until = max(inside_until, left)
    return {
        "messages": settings.conversations * settings.burst,
        "lost": sum(len(ran[c]) - counts[c] for c in counts),
        "hit": sum(len(ran[c]) > counts[c] for c in counts),
        "overlaps": overlaps,
        "errors": errors,
        "max_wait": max((entered - arrived for _, arrived, entered, _ in visits), default=0.0),
        "seconds": max((left for *_, left in visits), default=0.0) - min((a for _, a, _, _ in visits), default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=24)
    parser.add_argument("--burst", type=int, default=5, help="messages per conversation")
    parser.add_argument("--work-ms", type=float, default=20, help="time a message holds the lock")
    parser.add_argument("--spread-ms", type=float, default=30, help="a burst arrives within this")
    parser.add_argument("--wait", type=float, default=0.1, help="seconds between looks at the queue (Rasa: 1)")
    parser.add_argument("--lifetime", type=float, default=10, help="ticket lifetime in seconds (Rasa: 60)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args()

    server = RedisServer().start()
    try:
        settings = Settings(server.port, args.replicas, args.conversations, args.burst, args.work_ms / 1000,
                            args.spread_ms / 1000, args.wait, args.lifetime)
        print(f"{args.replicas} replicas, {args.conversations} conversations x {args.burst} messages "
              f"within {args.spread_ms:g} ms, {args.work_ms:g} ms each, wait {args.wait:g} s, "
              f"lifetime {args.lifetime:g} s\n")
        print("| lock   | messages | lost updates | conversations hit | overlaps | LockErrors | max wait s | time s |")
        print("|--------|---------:|-------------:|------------------:|---------:|-----------:|-----------:|-------:|")
        for variant in args.variants:
            row = measure(variant, settings)
            print(f"| {variant:<6} | {row['messages']:>8} | {row['lost']:>12} | "
                  f"{row['hit']:>10} of {args.conversations:<3} | {row['overlaps']:>8} | {row['errors']:>10} | "
                  f"{row['max_wait']:>10.2f} | {row['seconds']:>6.2f} |", flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
