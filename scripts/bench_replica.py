"""One replica side by side with a bare `rasa init` bot, in one interleaved run: `make bench-replica`.

    python scripts/bench_replica.py [--concurrency 1 4 16] [--messages 200] [--rounds 3]
                                    [--long-turns 100] [--out reports/replica]

Starts the assistant as `make run` does (scripts/run.sh on free ports: action server, SQLite
tracker store) and a bare bot made by `rasa init --no-prompt` (trained once, under
var/bench/barebot/; Rasa's defaults: in-memory tracker store, no action server), then for each
concurrency sends the same number of messages to each, alternating rounds between the two
so that whatever else the machine does falls on both alike. Each closed-loop client is one
conversation asking the next question as soon as it has its answer; our bot gets business
questions in Chinese, the bare bot the English small talk its stories know.

Reports per concurrency: messages/s, p50/p95/p99 (ms) for each bot and the ratio, then the
median latency of turns 1-20 and 81-100 of one long conversation with our bot. Writes
`replica.json` and prints a Markdown table. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
RASA = str(ROOT / ".venv" / "bin" / "rasa")
BARE = ROOT / "var" / "bench" / "barebot"
OURS = ["简易注销公告要公示多少天", "办营业执照要交多少钱", "首贷续贷中心的电话是多少", "专利可以质押贷款吗",
        "饭店要接天然气", "那要几天", "在哪办", "劳动仲裁找哪个部门", "个体户注销要什么材料", "外资企业怎么登记"]
THEIRS = ["hello", "I am sad", "yes", "bye", "are you a bot?", "great", "no", "hi there"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_bot() -> Path:
    """`rasa init`'s bot, trained once."""
    if not list((BARE / "models").glob("*.tar.gz")):
        shutil.rmtree(BARE, ignore_errors=True)
        BARE.mkdir(parents=True)
        subprocess.run([RASA, "init", "--no-prompt", "--init-dir", str(BARE)], cwd=BARE, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"})
    return BARE


def start(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "RASA_TELEMETRY_ENABLED": "false"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def wait_ready(url: str, probe: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.post(url, json={"sender": "warm-up", "message": probe},
                                        timeout=aiohttp.ClientTimeout(total=30)) as reply:
                    if reply.status == 200 and await reply.json():
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


async def closed_loop(url: str, questions: list[str], concurrency: int, messages: int, tag: str) -> dict[str, Any]:
    """`concurrency` conversations sending `messages` in all; latencies and wall time."""
    latencies: list[float] = []
    errors = 0
    remaining = itertools.count()

    async def conversation(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal errors
        sender = f"{tag}-{n}-{time.time_ns()}"
        for turn in itertools.count():
            if next(remaining) >= messages:
                return
            started = time.perf_counter()
            try:
                async with session.post(url, json={"sender": sender, "message": questions[(n + turn) % len(questions)]},
                                        timeout=aiohttp.ClientTimeout(total=60)) as reply:
                    await reply.read()
                    if reply.status != 200:
                        errors += 1
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(conversation(session, n) for n in range(concurrency)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "wall": wall, "errors": errors}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def long_conversation(url: str, turns: int) -> dict[str, float]:
    latencies = []
    sender = f"long-{time.time_ns()}"
    async with aiohttp.ClientSession() as session:
        for turn in range(turns):
            started = time.perf_counter()
            async with session.post(url, json={"sender": sender, "message": OURS[turn % len(OURS)]},
                                    timeout=aiohttp.ClientTimeout(total=60)) as reply:
                await reply.read()
            latencies.append(time.perf_counter() - started)
    first, last = statistics.median(latencies[:20]), statistics.median(latencies[-20:])
    return {"turns_1_20_ms": first * 1000, "turns_last_20_ms": last * 1000, "ratio": last / first}


async def measure(args: argparse.Namespace, ours: str, theirs: str) -> dict[str, Any]:
    results: dict[str, Any] = {"concurrency": {}}
    for concurrency in args.concurrency:
        runs: dict[str, dict[str, Any]] = {"ours": {"latencies": [], "wall": 0.0, "errors": 0},
                                           "bare": {"latencies": [], "wall": 0.0, "errors": 0}}
        per_round = max(1, args.messages // args.rounds)
        for round_ in range(args.rounds):  # interleaved: ours, bare, ours, bare, …
            order = [("ours", ours, OURS), ("bare", theirs, THEIRS)]
            for name, url, questions in (order if round_ % 2 == 0 else order[::-1]):
                run = await closed_loop(url, questions, concurrency, per_round, f"{name}-{concurrency}-{round_}")
                runs[name]["latencies"] += run["latencies"]
                runs[name]["wall"] += run["wall"]
                runs[name]["errors"] += run["errors"]
        row = {}
        for name, run in runs.items():
            row[name] = {"messages_per_s": len(run["latencies"]) / run["wall"], "errors": run["errors"],
                         **{f"p{int(q * 100)}_ms": percentile(run["latencies"], q) * 1000 for q in (0.5, 0.95, 0.99)}}
        row["ratio"] = row["ours"]["messages_per_s"] / row["bare"]["messages_per_s"]
        results["concurrency"][str(concurrency)] = row
        print(f"concurrency {concurrency}: ours {row['ours']['messages_per_s']:.1f}/s, "
              f"bare {row['bare']['messages_per_s']:.1f}/s, ratio {row['ratio']:.2f}", file=sys.stderr)
    results["long_conversation"] = await long_conversation(ours, args.long_turns)
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = ["| concurrency | ours msg/s | bare msg/s | ratio | ours p50/p95/p99 ms | bare p50/p95/p99 ms | errors |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for concurrency, row in results["concurrency"].items():
        o, b = row["ours"], row["bare"]
        lines.append(f"| {concurrency} | {o['messages_per_s']:.1f} | {b['messages_per_s']:.1f} | {row['ratio']:.2f} | "
                     f"{o['p50_ms']:.0f}/{o['p95_ms']:.0f}/{o['p99_ms']:.0f} | "
                     f"{b['p50_ms']:.0f}/{b['p95_ms']:.0f}/{b['p99_ms']:.0f} | {o['errors']}/{b['errors']} |")
    long = results["long_conversation"]
    lines.append(f"\nlong conversation: turns 1-20 median {long['turns_1_20_ms']:.0f} ms, last 20 "
                 f"{long['turns_last_20_ms']:.0f} ms ({long['ratio']:.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_replica.py", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--messages", type=int, default=240, help="per bot and concurrency")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--long-turns", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "replica")
    args = parser.parse_args(argv)
    bare = bare_bot()
    ours_port, bare_port = free_port(), free_port()
    folder = ROOT / "var" / "bench"
    processes = [
        start([str(ROOT / "scripts" / "run.sh")], ROOT, {
            "RASA_PORT": str(ours_port), "ACTIONS_PORT": str(free_port()), "WIDGET_PORT": str(free_port()),
            "CONSOLE_PORT": str(free_port()), "DATABASE_URL": f"sqlite:///{folder / 'replica-cases.db'}",
            "FLOOD_MESSAGES": "1000000"}),  # a closed loop is a flood by design: measure throughput
        start([RASA, "run", "--port", str(bare_port), "--interface", "127.0.0.1"], bare, {}),
    ]
    try:
        ours = f"http://127.0.0.1:{ours_port}/webhooks/rest/webhook"
        theirs = f"http://127.0.0.1:{bare_port}/webhooks/rest/webhook"
        asyncio.run(wait_ready(ours, OURS[0]))
        asyncio.run(wait_ready(theirs, THEIRS[0]))
        results = asyncio.run(measure(args, ours, theirs))
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except OSError:
                pass
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    results.update(date=time.strftime("%Y-%m-%d"), cores=os.cpu_count())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replica.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
