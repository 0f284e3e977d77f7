"""The faults of scripts/bench_prod.py, each injected under the load traffic and counted.

a. kill -9 Rasa replica 1, then `python -m production.cluster up` brings it back;
b. PostgreSQL restarted (pg_ctl restart);
c. Redis stopped, started again after `hold` seconds;
d. both action servers stopped, started again;
e. staff replies (bot events posted as the console does) to a socket held by the other replica;
f. one client flooding 100 messages a second from one address; then every WeChat follower from
   one address, as WeChat's servers push.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp

from production import bench_checks as checks
from production import bench_report as report
from production.bench_clients import RestUser, SocketUser
from production.bench_scenarios import CHANNELS, FOLLOW_UPS, Bench, message_rows

FAULTS = {"a": "kill -9 Rasa replica 1, then `cluster up`", "b": "pg_ctl restart", "c": "Redis stopped, then started",
          "d": "both action servers stopped, then started", "e": "staff replies across replicas",
          "f": "one client flooding 100 msgs/s"}


class FaultBench(Bench):
    """Bench with the faults."""

    async def fault(self, name: str, users: int, interval: float, before: float = 20, hold: float = 15,
                    after: float = 25) -> dict[str, Any]:
        """The load traffic, with one fault injected at `before` s and repaired `hold` s later."""
        crowd = await self.users(users, CHANNELS, f"fault{name}")
        marks: dict[str, float] = {}
        end = [before + hold + after]
        extra: dict[str, Any] = {}
        began, share = self.clock(), self.cpu()
        at = lambda seconds: asyncio.sleep(max(0.0, began + seconds - self.clock()))  # noqa: E731
        run = lambda function: asyncio.get_running_loop().run_in_executor(None, function)  # noqa: E731

        async def inject() -> None:
            await at(before)
            marks["fault"] = self.clock()
            if name == "a":
                extra["killed_pid"] = self.topology.kill_replica(1)
                await at(before + hold)
                marks["repair"] = self.clock()
                extra["up_took_s"] = await run(self.topology.bring_back)
            elif name == "b":
                marks["repair"] = self.clock()
                await run(self.topology.restart_postgres)
            elif name == "c":
                await run(self.topology.stop_redis)
                await at(before + hold)
                marks["repair"] = self.clock()
                await run(self.topology.start_redis)
            elif name == "d":
                await run(self.topology.stop_actions)
                await at(before + hold)
                marks["repair"] = self.clock()
                await run(self.topology.start_actions)
            elif name == "e":
                extra["staff_replies"] = await self.staff_replies()
                marks["repair"] = self.clock()
            elif name == "f":
                flooding = await self.flood(rate=100, seconds=hold)
                marks["repair"] = self.clock()
            marks["repaired"] = self.clock()
            end[0] = max(end[0], marks["repaired"] - began + after)
            if name == "f":
                extra["flood"] = await self.flood_outcome(flooding)

        injector = asyncio.ensure_future(inject())
        sent = await self.traffic(crowd, lambda: began + end[0] if injector.done() else float("inf"), interval)
        try:
            await injector
        except Exception as error:  # noqa: BLE001 - reported with what the traffic saw
            extra["fault_error"] = repr(error)
            print(f"# fault {name} failed: {error!r}", file=sys.stderr)
        fault = marks.setdefault("fault", began + before)
        repaired = marks.setdefault("repaired", self.clock())
        counted = await self.settled(sent, crowd)
        tracker = self.tracker(sent)
        result = {"fault": name, "topology": self.topology.current(), "users": users, **counted,
                  "marks_s": {k: v - began for k, v in marks.items()}, **extra,
                  "totals": report.outcomes(sent), "tracker": tracker,
                  "clear_errors": sum(1 for m in sent if m.outcome in ("error", "apology")),
                  "silently_lost": sum(1 for m in sent if m.outcome == "lost") + tracker["answered_missing"],
                  "windows": report.windows(sent, began, fault, repaired, self.clock()),
                  "recovery": report.recovery(sent, fault, repaired), "failures": report.failures(sent),
                  "during_replies": report.replies([m for m in sent if fault <= m.at < repaired + 5], 10),
                  "late_answers": sum(u.late for u in crowd), "cpu": share.stop(),
                  "socket_disconnects": sum(getattr(u, "disconnects", 0) for u in crowd),
                  "socket_sessions_changed": sum(getattr(u, "sessions_changed", 0) for u in crowd)}
        if name == "f":
            result["p95_others_s"] = {w["window"]: w["p95_s"] for w in result["windows"]}
        result["messages"] = message_rows(sent)
        await self.close(crowd)
        self.show_fault(result)
        return result

    def show_fault(self, result: dict[str, Any]) -> None:
        name = result["fault"]
        summary = {k: result[k] for k in ("fault", "clear_errors", "silently_lost", "late_answers",
                                          "socket_disconnects", "socket_sessions_changed")}
        marks = ", ".join(f"{k} {v:.1f} s" for k, v in result["marks_s"].items())
        self.show(f"fault {name} ({FAULTS[name]}): {marks}", [{**summary, **result["totals"], **result["recovery"]}])
        self.show(f"fault {name}: windows", result["windows"])
        self.show(f"fault {name}: failures by kind", result["failures"])
        self.show(f"fault {name}: what users got, from the fault until 5 s after repair", result["during_replies"])
        self.show(f"fault {name}: trackers", [{**result["tracker"], "trackers_settled_after_s":
                                               result["trackers_settled_after_s"],
                                               "socket_outcomes_revised": result["socket_outcomes_revised"]}])
        self.show(f"fault {name}: CPU seconds per second", [result["cpu"]])
        if "staff_replies" in result:
            self.show("fault e: staff replies", result["staff_replies"])
        if "flood" in result:
            self.show("fault f: the flooding client", [result["flood"]])
            self.show("fault f: p95 (s) of the other users", [result["p95_others_s"]])

    async def staff_replies(self) -> list[dict[str, Any]]:
        """A staff reply (a bot event posted as the console does) reaching a socket on one
        replica through another replica's HTTP API, and through nginx's."""
        ports = self.topology.replica_ports()
        rows = []
        for socket_port in ports:
            for api_port in ports:
                rows.append(await self._staff_reply(f"http://127.0.0.1:{socket_port}", f"http://127.0.0.1:{api_port}",
                                                    f"socket on :{socket_port}, reply via :{api_port}"))
        for number in range(4):  # through nginx both ways: round robin picks the replica of the API call
            rows.append(await self._staff_reply(self.base_url, self.base_url, f"via nginx #{number + 1}"))
        return rows

    async def _staff_reply(self, socket_url: str, api_url: str, what: str) -> dict[str, Any]:
        self.users_made += 1
        ports = self.topology.replica_ports()
        connections = checks.socket_connections(ports)
        user = SocketUser(socket_url, self.addresses.next(), "staff-reply", self.clock)
        row: dict[str, Any] = {"case": what, "holding_replica": "-", "delivered": "no", "delay_s": None}
        try:
            await user.open(socket_url)
            await asyncio.sleep(1)
            grown = checks.socket_connections(ports) - connections
            if socket_url == self.base_url and len(grown) == 1:
                row["holding_replica"] = f":{next(iter(grown))}"
            sender = user.sender  # the conversation the server confirmed
            first = await user.send("开公司要多久")  # the tracker's latest channel is now socketio
            row["first_answer"] = first.outcome
            text = f"【测试】工作人员回复 {sender}"
            params = {"token": self.topology.token, "execute_side_effects": "true", "output_channel": "latest",
                      "include_events": "NONE"}
            event = [{"event": "bot", "text": text, "timestamp": time.time(), "data": {},
                      "metadata": {"staff": {"name": "测试", "department": "区营商办"}}}]
            posted = self.clock()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
                async with http.post(f"{api_url}/conversations/{sender}/tracker/events", params=params,
                                     json=event) as answer:
                    row["api_status"] = answer.status
            while (got := await user.next_answer(max(0.1, posted + 10 - self.clock()))) is not None:
                if got[1].get("text") == text:
                    row["delivered"], row["delay_s"] = "yes", got[0] - posted
                    break
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            row["error"] = repr(error)
        finally:
            await user.close()
        return row

    async def flood(self, rate: float, seconds: float) -> tuple[RestUser, list[asyncio.Future]]:
        """One client posting `rate` messages a second from one address, in one conversation;
        returns it and the requests under way when the flood stops."""
        flooder = RestUser(self.base_url, self.addresses.next(), f"bench-{self.run_id}-flood", self.clock, limit=0)
        tasks = []
        began = self.clock()
        for number in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + number / rate - self.clock()))
            tasks.append(asyncio.ensure_future(flooder.send(FOLLOW_UPS[number % len(FOLLOW_UPS)])))
        return flooder, tasks

    async def flood_outcome(self, flooding: tuple[RestUser, list[asyncio.Future]]) -> dict[str, Any]:
        flooder, tasks = flooding
        sent = await asyncio.gather(*tasks)
        await flooder.close()
        kinds: dict[str, int] = {}
        for m in sent:
            kinds[m.kind or m.outcome] = kinds.get(m.kind or m.outcome, 0) + 1
        last = max((m.at + (m.latency or 0) for m in sent if m.outcome == "ok"), default=None)
        return {"sent": len(sent), "by_kind": kinds, "last_answer_s_after_flood_began": last - sent[0].at if last else None}

    async def wechat_one_origin(self, users: int, interval: float, seconds: float) -> dict[str, Any]:
        """WeChat's pushes come from WeChat's servers, a few addresses for every follower: all
        `users` followers from one address here."""
        crowd = await self.users(users, ("wechat",), "wxorigin", address=self.addresses.next())
        began = self.clock()
        sent = await self.traffic(crowd, lambda: began + seconds, interval)
        await self.close(crowd)
        result = {"users": users, "messages_per_s": users / interval, **report.outcomes(sent, self.clock() - began)}
        self.show("WeChat: every follower pushed from one address (as WeChat's servers do)", [result])
        self.show("WeChat from one address: failures by kind", report.failures(sent))
        return {**result, "failures": report.failures(sent), "messages": message_rows(sent)}
