"""The proof for the production topology: businesses talking to it through nginx, counted.

    RASA_AUTH_TOKEN=… python scripts/bench_prod.py up [--replicas 2] [--lock atomic|stock|none]
    RASA_AUTH_TOKEN=… python scripts/bench_prod.py load [--replicas 1,2] [--users 20] [--duration 60]
    RASA_AUTH_TOKEN=… python scripts/bench_prod.py saturation [--replicas 1,2] [--levels 1,2,4,8,16,32]
    RASA_AUTH_TOKEN=… python scripts/bench_prod.py burst [--locks atomic,stock,none] [-k 6]
    RASA_AUTH_TOKEN=… python scripts/bench_prod.py faults [--only a,b,c,d,e,f]
    RASA_AUTH_TOKEN=… python scripts/bench_prod.py security
    RASA_AUTH_TOKEN=… python scripts/bench_prod.py all --json reports/bench_prod.json

Every simulated business holds a multi-turn conversation (a topic question from
tests/answers/bench.yml or tests/nlu/bench.yml, then follow-ups such as 「那要多久」「在哪办」)
on one channel — REST, socket.io (the widget) or WeChat (safe mode, signed and encrypted with
wechatpy) — from a loopback address of its own, so nginx's per-address rate limit applies per
business. Afterwards every message is counted: answered, a clear error the client could retry,
or silently lost; and every conversation's tracker in PostgreSQL is read back (once it stops
growing) and compared turn by turn with what was sent. socket.io answers name no message, so each
socket message's answer and latency are settled from the tracker: the first bot event after its
user turn, matched in order to the bot_uttered events the client received. `up` (and --replicas / --locks) restart the topology with the
bench's WeChat account, whose customer-service API is a stand-in the bench runs on
$BENCH_WECHAT_API_PORT (8190), so late WeChat answers are counted too. Needs the topology
(`make up-prod` or `up`), RASA_AUTH_TOKEN, root for the PostgreSQL and process faults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from production import bench_checks as checks  # noqa: E402
from production.bench_faults import FaultBench  # noqa: E402
from production.bench_scenarios import API_PORT, CHANNELS  # noqa: E402

BASE_URL = os.environ.get("BENCH_URL", "http://127.0.0.1:8000")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


async def main_async(args: argparse.Namespace) -> None:
    bench = FaultBench(args.url)
    bench.json_path = args.json
    bench.results.update(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), code=checks.code_fingerprint(),
                         machine={"cores": os.cpu_count(), "memory_gib": round(
                             os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)})
    await bench.api.start()
    try:
        await bench.warm_up()
        await run_command(bench, args)
    finally:
        await bench.api.stop()
        bench.keep("finished", {"at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "code": checks.code_fingerprint()})


async def run_command(bench: FaultBench, args: argparse.Namespace) -> None:
    """The scenarios of `args.command`; `all` runs every one, on 1 and then 2 replicas."""
    command, channels = args.command, tuple(args.channels.split(","))
    wanted = _ints(args.replicas) if args.replicas else ([1, 2] if command == "all" else [0])
    for count in wanted if command in ("load", "saturation", "all") else []:
        if count:
            await bench.restart(count)
        size = bench.topology.current()["replicas"]
        if command in ("load", "all"):
            bench.keep(f"load_{size}_replicas", await bench.load(args.users, args.duration, args.interval, channels))
        if command in ("saturation", "all"):
            bench.keep(f"saturation_{size}_replicas", await bench.saturation(
                _ints(args.levels), args.step, tuple(args.saturation_channels.split(","))))
    if command in ("burst", "all"):
        rows = []
        for lock in args.locks.split(","):
            if bench.topology.lock_choice() != lock or bench.topology.current()["replicas"] != 2:
                await bench.restart(2, lock)
            result = bench.keep(f"burst_{lock}", await bench.burst(args.conversations, args.k, args.rounds))
            rows.append({"lock": lock, **{k: result[k] for k in ("conversations", "k", "rounds", "sent", "ok", "error",
                                                                   "lost", "p50_s", "p95_s", "max_s", "turns_lost",
                                                                   "conversations_losing_turns")},
                         "without_bot": result["tracker"]["without_bot"],
                         "out_of_order": result["tracker"]["out_of_order"], "cpu_others": result["cpu"]["others"]})
            bench.show(f"burst, {lock}: failures", result["failures"])
        bench.show("burst: k messages per conversation at the same instant, 2 replicas", rows)
        if bench.topology.lock_choice() != "atomic":
            await bench.restart(2, "atomic")
    if command in ("faults", "all"):
        for name in args.only.split(","):
            bench.keep(f"fault_{name}", await bench.fault(name, args.users, args.interval, args.before, args.hold,
                                                          args.after))
        if "f" in args.only.split(","):
            bench.keep("wechat_one_origin", await bench.wechat_one_origin(args.users, args.interval, 40))
    if command in ("security", "all"):
        bench.keep("security", bench.security())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "load", "saturation", "burst", "faults", "security", "all"])
    parser.add_argument("--url", default=BASE_URL, help="nginx (default %(default)s)")
    parser.add_argument("--json", help="write every result to this file")
    parser.add_argument("--replicas", help="restart the topology with each of these counts first (e.g. 1,2)")
    parser.add_argument("--lock", default="atomic", help="up: the lock store (atomic, stock, none)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between a user's messages")
    parser.add_argument("--channels", default=",".join(CHANNELS))
    parser.add_argument("--levels", default="1,2,4,8,16,32", help="saturation: workers at each step")
    parser.add_argument("--step", type=float, default=20.0, help="saturation: seconds a step")
    parser.add_argument("--saturation-channels", default="rest")
    parser.add_argument("--conversations", type=int, default=30, help="burst")
    parser.add_argument("-k", type=int, default=6, help="burst: messages per conversation at once")
    parser.add_argument("--rounds", type=int, default=2, help="burst")
    parser.add_argument("--locks", default="atomic,stock,none", help="burst: lock stores to compare")
    parser.add_argument("--only", default="a,b,c,d,e,f", help="faults to run")
    parser.add_argument("--before", type=float, default=20.0, help="faults: seconds of traffic before the fault")
    parser.add_argument("--hold", type=float, default=15.0, help="faults: seconds until the repair")
    parser.add_argument("--after", type=float, default=25.0, help="faults: seconds of traffic after the repair")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "up":
        checks.Topology(API_PORT).restart(int(args.replicas or 2), args.lock)
        return 0
    if args.command == "down":
        checks.Topology(API_PORT).down()
        return 0
    if not os.environ.get("RASA_AUTH_TOKEN"):
        raise SystemExit("set RASA_AUTH_TOKEN to the topology's token")
    # the REST users carry the topology's REST token (production/cluster.py keeps one when unset)
    os.environ["REST_TOKEN"] = checks.Topology(API_PORT).cluster.rest_token()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
