"""The scenarios of scripts/bench_prod.py on the production topology: load, saturation, burst.

`Bench` holds one invocation's clock, source addresses, WeChat API stand-in and results; its
scenarios create the simulated businesses (production/bench_clients.py), let them talk,
then count what they got and what the trackers in PostgreSQL hold (production/bench_checks.py).
The faults are production/bench_faults.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp
import yaml

from production import bench_checks as checks
from production import bench_report as report
from production import bench_security
from production.bench_clients import Addresses, Clock, Conversations, RestUser, Sent, SocketUser, User
from production.bench_wechat import WeChatAPIStandIn, WeChatUser
from production.cluster import ROOT

API_PORT = int(os.environ.get("BENCH_WECHAT_API_PORT", "8190"))
CHANNELS = ("rest", "socketio", "wechat")
CLIENTS: dict[str, type[User]] = {"rest": RestUser, "socketio": SocketUser, "wechat": WeChatUser}
FOLLOW_UPS = ["那要多久", "在哪办", "找哪个部门", "要带什么材料", "可以网上办吗", "要钱不"]


def conversation_scripts(seed: int = 7) -> Conversations:
    """The benchmark questions as conversations: their own follow-up turns, or a question and
    two of FOLLOW_UPS. Questions for a person, in English or out of scope are left out."""
    answers = yaml.safe_load((ROOT / "tests/answers/bench.yml").read_text(encoding="utf-8"))["questions"]
    nlu = yaml.safe_load((ROOT / "tests/nlu/bench.yml").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    scripts = [q["turns"] for q in answers if "turns" in q] + [c["turns"] for c in nlu["conversations"]]
    singles = [q["text"] for q in answers if "text" in q and q["category"] in {"colloquial", "dialect", "typo", "yesno"}]
    singles += [q["text"] for q in nlu["questions"] if q["category"] in {"colloquial", "typo"}]
    scripts += [[text, *rng.sample(FOLLOW_UPS, 2)] for text in singles]
    scripts = [s for s in scripts if not any("人工" in turn for turn in s)]
    rng.shuffle(scripts)
    return Conversations(scripts)


class Bench:
    """One invocation: the clock, addresses, the WeChat API stand-in and every result."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.clock = Clock()
        self.addresses = Addresses()
        self.api = WeChatAPIStandIn(API_PORT, self.clock)
        self.topology = checks.Topology(API_PORT)
        self.scripts = conversation_scripts()
        self.run_id = time.strftime("%H%M%S")
        self.results: dict[str, Any] = {}
        self.users_made = 0
        self.groups = 0
        self.json_path: str | None = None

    def cpu(self) -> checks.CPUShare:
        return checks.CPUShare(self.topology.cluster).start()

    async def restart(self, replicas: int, lock: str = "atomic") -> None:
        took = await asyncio.get_running_loop().run_in_executor(None, self.topology.restart, replicas, lock)
        self.results.setdefault("restarts", []).append({"replicas": replicas, "lock": lock, **took})
        await self.warm_up()

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.topology.warm_up, self.scripts.scripts[:6])

    def keep(self, key: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record a scenario's result (and write every result so far to --json)."""
        self.results[key] = result
        if self.json_path:
            report.write_json(Path(self.json_path), self.results)
        return result

    def show(self, title: str, rows: list[dict[str, Any]]) -> None:
        print(report.table(title, rows), flush=True)

    async def wechat_mounted(self) -> bool:
        """Whether the replicas mount the WeChat channel (asked of the first directly, so that
        nginx's state does not matter)."""
        try:
            port = self.topology.replica_ports()[0]
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                async with http.get(f"http://127.0.0.1:{port}/webhooks/wechat/") as answer:
                    return answer.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def users(self, count: int, channels: tuple[str, ...], tag: str, address: str | None = None) -> list[User]:
        """`count` businesses, channels dealt in turn, each from its own address (or all from
        `address`), socket.io ones connected."""
        if "wechat" in channels and not await self.wechat_mounted():
            print("# WeChat is not mounted (start the topology with `up`): left out", file=sys.stderr)
            channels = tuple(c for c in channels if c != "wechat") or ("rest",)
        made: list[User] = []
        self.groups += 1  # in every sender id: no two scenarios share a conversation
        for i in range(count):
            channel = channels[i % len(channels)]
            sender = f"bench-{self.run_id}-{tag}-{self.groups}-{channel}-{i}"
            args = (self.base_url, address or self.addresses.next(), sender, self.clock)
            made.append(CLIENTS[channel](*args, api=self.api) if channel == "wechat" else CLIENTS[channel](*args))
        opened = await asyncio.gather(*(u.open() for u in made), return_exceptions=True)
        failed = [u for u, result in zip(made, opened) if isinstance(result, BaseException)]
        if failed:
            print(f"# {len(failed)} socket.io user(s) could not connect: {opened[made.index(failed[0])]!r}",
                  file=sys.stderr)
        return made

    async def traffic(self, users: list[User], seconds: Callable[[], float], interval: float) -> list[Sent]:
        """Each user says its next turn every `interval` seconds (or as soon as the answer came, if
        later) until `seconds()` of the clock; starts are spread over one interval."""
        sent: list[Sent] = []
        start = self.clock()

        async def talk(number: int, user: User) -> None:
            turns = self.scripts.for_user(self.users_made + number)
            next_at = start + number * interval / len(users)
            while True:
                await asyncio.sleep(max(0.0, next_at - self.clock()))
                if self.clock() >= seconds():
                    return
                sent.append(await user.send(next(turns)))
                next_at = max(next_at + interval, self.clock())

        await asyncio.gather(*(talk(i, u) for i, u in enumerate(users)))
        self.users_made += len(users)
        return sent

    async def close(self, users: list[User]) -> None:
        await asyncio.gather(*(u.close() for u in users), return_exceptions=True)

    async def settled(self, sent: list[Sent], users: list[User]) -> dict[str, Any]:
        """Wait for the trackers to stop growing, then settle the socket.io outcomes from them."""
        url = self.topology.cluster.database_url
        run = asyncio.get_running_loop().run_in_executor
        waited = await run(None, checks.settle, url, sent)
        revised = await run(None, checks.correlate_sockets, url, users)
        return {"trackers_settled_after_s": waited, "socket_outcomes_revised": revised}

    def tracker(self, sent: list[Sent], ordered: bool = True) -> dict[str, Any]:
        return checks.tracker_check(self.topology.cluster.database_url, sent, ordered)

    async def sample_memory(self, until: Callable[[], bool], into: dict[str, dict[str, float]]) -> None:
        """The largest RSS / PSS of each part seen, every 5 s."""
        while not until():
            for name, figures in checks.memory(self.topology.cluster).items():
                seen = into.setdefault(name, dict(figures))
                for key, value in figures.items():
                    seen[key] = max(seen[key], value)
            await asyncio.sleep(5)

    # -- scenarios ---------------------------------------------------------------------------
    async def load(self, users: int, duration: float, interval: float, channels: tuple[str, ...]) -> dict[str, Any]:
        """N users each sending a message every `interval` s for `duration` s, then counted."""
        cpu, share = cpu_seconds(), self.cpu()
        crowd = await self.users(users, channels, "load")
        peak: dict[str, dict[str, float]] = {}
        done = False
        sampler = asyncio.ensure_future(self.sample_memory(lambda: done, peak))
        began = self.clock()
        sent = await self.traffic(crowd, lambda: began + duration, interval)
        elapsed = self.clock() - began
        done = True
        sampler.cancel()
        machine = share.stop()
        counted = await self.settled(sent, crowd)
        result = {"topology": self.topology.current(), "users": users, "interval_s": interval, **counted,
                  "seconds": elapsed, "by_channel": report.by_channel(sent, elapsed),
                  "failures": report.failures(sent), "tracker": self.tracker(sent),
                  "late_answers": sum(u.late for u in crowd),
                  "socket_disconnects": sum(getattr(u, "disconnects", 0) for u in crowd),
                  "socket_sessions_changed": sum(getattr(u, "sessions_changed", 0) for u in crowd),
                  "memory_peak": [{"process": k, **v} for k, v in sorted(peak.items())],
                  "client_cpu_s": cpu_seconds() - cpu, "cpu": machine, "messages": message_rows(sent)}
        await self.close(crowd)
        title = f"load: {users} users, 1 msg / {interval:g} s each, {elapsed:.0f} s, {result['topology']}"
        self.show(title, result["by_channel"])
        self.show("load: failures by kind", result["failures"])
        self.show("load: trackers in PostgreSQL", [{**result["tracker"], **counted}])
        self.show("load: memory (MiB, peak over the run)", result["memory_peak"])
        self.show("load: CPU seconds per second (machine-wide)", [machine])
        return result

    async def saturation(self, levels: list[int], step: float, channels: tuple[str, ...],
                         per_worker: int = 6, turns: int = 8) -> dict[str, Any]:
        """Closed loop, no think time: `level` workers, each cycling over `per_worker` businesses
        (own addresses, so the per-address limit of 5/s is not what is measured), each business
        starting a new conversation after `turns` messages (so neither is the per-conversation
        flood guard of channels/flood.py, 12 messages in 20 s). REST and WeChat only."""
        rows, sent_all = [], []
        for level in levels:
            crowd = await self.users(level * per_worker, channels, f"sat{level}")
            sent: list[Sent] = []
            began = self.clock()
            cpu, share = cpu_seconds(), self.cpu()

            async def worker(mine: list[User], number: int) -> None:
                said = [self.scripts.for_user(self.users_made + number * per_worker + j) for j in range(len(mine))]
                names = [u.sender for u in mine]
                count = 0
                while self.clock() < began + step:
                    j = count % len(mine)
                    if count and j == 0 and (count // len(mine)) % turns == 0:
                        for user, name in zip(mine, names):
                            user.new_conversation(f"{name}.{count // len(mine) // turns}")
                    sent.append(await mine[j].send(next(said[j])))
                    count += 1

            await asyncio.gather(*(worker(crowd[w::level], w) for w in range(level)))
            elapsed = self.clock() - began
            self.users_made += len(crowd)
            machine = share.stop()
            rows.append({"workers": level, **report.outcomes(sent, elapsed), "client_cpu_s": cpu_seconds() - cpu,
                         "http_429": sum(1 for m in sent if m.kind.endswith("429")),
                         "cpu_topology": machine["topology"], "cpu_others": machine["others"]})
            sent_all += sent
            await self.close(crowd)
            print(report.table(f"saturation step {level}", rows[-1:]), flush=True)
            if rows[-1]["p95_s"] is None or rows[-1]["p95_s"] > 10 or rows[-1]["ok"] < 0.8 * rows[-1]["sent"]:
                break
        await self.settled(sent_all, [])
        best = max(rows, key=lambda r: r["answers_per_s"])
        result = {"topology": self.topology.current(), "channels": channels, "steps": rows,
                  "max_answers_per_s": best["answers_per_s"], "at_workers": best["workers"],
                  "tracker": self.tracker(sent_all)}
        self.show(f"saturation ({'/'.join(channels)}), {result['topology']}: "
                  f"max {best['answers_per_s']:.1f} answers/s at {best['workers']} workers", rows)
        self.show("saturation: trackers", [result["tracker"]])
        return result

    async def burst(self, conversations: int, k: int, rounds: int) -> dict[str, Any]:
        """Each conversation gets `k` messages at the same instant (round robin puts them on both
        replicas), `rounds` times; then every tracker must hold all k·rounds turns and answers."""
        crowd = [RestUser(self.base_url, self.addresses.next(), f"bench-{self.run_id}-burst{self.users_made}-{i}",
                          self.clock, limit=k) for i in range(conversations)]
        self.users_made += conversations
        firsts = [s[0] for s in self.scripts.scripts]
        sent: list[Sent] = []
        began, share = self.clock(), self.cpu()
        for round_number in range(rounds):
            questions = {u.sender: [firsts[(i * k * rounds + round_number * k + j) % len(firsts)] for j in range(k)]
                         for i, u in enumerate(crowd)}
            sent += await asyncio.gather(*(u.send(text) for u in crowd for text in questions[u.sender]))
        elapsed = self.clock() - began
        counted = await self.settled(sent, crowd)
        tracker = self.tracker(sent, ordered=False)
        await self.close(crowd)
        return {"topology": self.topology.current(), "conversations": conversations, "k": k, "rounds": rounds, **counted,
                  "seconds": elapsed, **report.outcomes(sent), "failures": report.failures(sent), "cpu": share.stop(),
                  "tracker": tracker, "turns_lost": tracker["answered_missing"],
                  "conversations_losing_turns": tracker["conversations_damaged"], "messages": message_rows(sent)}

    def security(self) -> dict[str, Any]:
        rows = bench_security.security(self.base_url, self.topology.cluster, self.topology.token)
        listening = bench_security.listeners(self.topology.cluster)
        self.show("security: through nginx and from outside", rows)
        self.show("security: ss -ltnp, the topology's listeners", listening)
        return {"checks": rows, "listeners": listening, "passed": all(r["pass"] == "yes" for r in rows)
                and all(r["beyond_loopback"] == "no" or r["process"] == "nginx" for r in listening)}



def message_rows(sent: list[Sent]) -> list[dict[str, Any]]:
    """Every message for --json, the reply cut short."""
    return [{**m.row(), "reply": m.reply[:40]} for m in sent]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
