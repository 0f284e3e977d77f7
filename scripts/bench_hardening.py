"""What the input bound, the flood guard and the action timeout hold and cost: `make bench-hardening`.

    python scripts/bench_hardening.py [--out reports/hardening] [--seconds 10] [--rounds 2]

Starts the assistant as `make run` does (scripts/run.sh on free ports, with its own SQLite
tracker store and DATABASE_URL in a temporary folder; no RASA_AUTH_TOKEN, so Rasa's API
answers 127.0.0.1 only) and measures, in this order (the last one kills the action server):

1. the largest message accepted (channels/limits.py MAX_CHARS): time and the Rasa process's
   peak RSS growth to answer one message at the limit, beside a short one; limit+1 refused;
2. another user's added wait while messages at the limit are answered back to back;
3. one conversation flooding REST, then socket.io, beside a client sending every 2 s
   (channels/flood.py); a flood of `rate` events for one answer; repeated case openings; one
   client (address) opening cases in many conversations beside a second client
   (CASES_PER_CLIENT); password guesses for one account while its owner logs in elsewhere;
4. the action server frozen (SIGSTOP, SIGCONT) and killed (SIGKILL): time to the apology
   (rasa_patches.UNAVAILABLE), time to answers again, and whether `make run` restarts it.

Prints a Markdown table (with the date, cores and load average: other work on the machine,
this script's own clients included, shows in every latency) and writes `hardening.json` and
`hardening.md` to --out. Takes about four minutes. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from channels import flood, limits  # noqa: E402 - the bound and the guard, as the server reads them

SHORT = ["简易注销公告要公示多少天", "办营业执照要交多少钱", "首贷续贷中心的电话是多少", "专利可以质押贷款吗",
         "劳动仲裁找哪个部门", "个体户注销要什么材料", "外资企业怎么登记", "施工许可多少个工作日"]
FILLER = ("我们是在解放碑经营火锅的一家小微企业，去年营业额下降，现在想在渝中区再开一家门店，"
          "之前办过营业执照和食品经营许可，消防检查也做过，员工有二十多人，社保按时缴纳。")
TARGET_ADDED_MS = 200.0
TARGET_APOLOGY_S = 5.0
PER_CONVERSATION = max(1, flood.GUARD.messages - 2)  # messages a load-generating sender sends, under the guard


def constant(name: str, default: Any = None, path: Path = ROOT / "rasa_patches.py") -> Any:
    """A constant of a module, read from its source: importing rasa_patches imports Rasa
    (14 s and 550 MB here) into the process that measures."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    if default is None:
        raise LookupError(f"{name} not in {path}")
    return default


UNAVAILABLE = constant("UNAVAILABLE")
# how long calls fail at once after the action server timed out (0: no such patch)
UNREACHABLE_SECONDS = float(constant("UNREACHABLE_SECONDS", 0.0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def long_message(chars: int, question: str = "请问简易注销公告要公示多少天？") -> str:
    """A business question of exactly `chars` characters: context, then the question last."""
    body = (FILLER * (chars // len(FILLER) + 1))[: max(0, chars - len(question))]
    return (body + question)[-chars:]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def summary(seconds: list[float]) -> dict[str, float]:
    """n, median, p95 and max in ms."""
    return {"n": len(seconds), "p50_ms": percentile(seconds, 0.5) * 1000, "p95_ms": percentile(seconds, 0.95) * 1000,
            "max_ms": max(seconds, default=float("nan")) * 1000}


def memory_kb(pid: int, field_name: str) -> int:
    """VmRSS or VmHWM (peak RSS) of a process, in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field_name}:\s+(\d+)", status, re.M).group(1))


def reset_peak(pid: int) -> bool:
    """Set the process's peak RSS (VmHWM) back to its current RSS (Linux clear_refs 5);
    False where the kernel does not let us."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --- the assistant ------------------------------------------------------------------------
@dataclass
class Assistant:
    """scripts/run.sh running on free ports in a folder of its own."""

    process: subprocess.Popen[bytes]
    folder: Path
    rasa_port: int
    actions_port: int
    actions_secret: str
    console_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def webhook(self) -> str:
        return f"{self.url}/webhooks/rest/webhook"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def channels_db(self) -> Path:
        return self.folder / "channels.db"

    def pid(self, pattern: str) -> int | None:
        """The process of run.sh's session whose command line matches pattern (pgrep -f)."""
        found = subprocess.run(["pgrep", "-s", str(self.process.pid), "-f", pattern], capture_output=True,
                               text=True, timeout=10).stdout.split()
        return int(found[0]) if found else None

    def rasa_pid(self) -> int | None:
        return self.pid(f"bin/rasa run .*--port {self.rasa_port} ")

    def actions_pid(self) -> int | None:
        return self.pid(f"actions.server --host 127.0.0.1 --port {self.actions_port}$")

    def log_tail(self, chars: int = 3000) -> str:
        return (self.folder / "run.log").read_text(errors="replace")[-chars:]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows from the channels' and cases' database (DATABASE_URL)."""
        with contextlib.closing(sqlite3.connect(self.channels_db, timeout=30)) as db:
            return db.execute(sql, params).fetchall()


@contextlib.contextmanager
def running(folder: Path) -> Iterator[Assistant]:
    """run.sh with its own ports, tracker database, DATABASE_URL and secrets; stopped after."""
    ports = {name: free_port() for name in ("RASA_PORT", "ACTIONS_PORT", "WIDGET_PORT", "CONSOLE_PORT")}
    endpoints = folder / "endpoints.yml"  # the tracker store only: run.sh adds the action endpoint
    endpoints.write_text(f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{folder / "tracker.db"}"\n',
                         encoding="utf-8")
    actions_secret = secrets.token_urlsafe(32)
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "VENV": str(ROOT / ".venv"),
           "ACTIONS_SECRET": actions_secret, "ENDPOINTS": str(endpoints),
           "DATABASE_URL": f"sqlite:///{folder / 'channels.db'}", "WIDGET_SESSION_SECRET": secrets.token_hex(32),
           "RASA_TELEMETRY_ENABLED": "false"}
    env.pop("RASA_AUTH_TOKEN", None)
    with (folder / "run.log").open("wb") as log:
        process = subprocess.Popen([str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield Assistant(process, folder, ports["RASA_PORT"], ports["ACTIONS_PORT"], actions_secret,
                        ports["CONSOLE_PORT"])
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop run.sh's whole session; SIGCONT first, so a stopped action server hears SIGTERM."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    deadline = time.monotonic() + 10  # run.sh's children finishing their own shutdown
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)  # what is still there after 10 s


# --- clients ------------------------------------------------------------------------------
@dataclass
class Reply:
    """One REST request: status (0: no answer), the bot's messages, seconds taken."""

    status: int
    messages: list[dict[str, Any]]
    seconds: float
    error: str = ""

    @property
    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages if m.get("text")]

    @property
    def answered(self) -> bool:
        """A real answer: not a refusal, not the apology."""
        refusals = {limits.TOO_LONG, flood.TOO_FAST, UNAVAILABLE}
        return self.status == 200 and bool(self.messages) and not refusals & set(self.texts)


async def say(http: aiohttp.ClientSession, url: str, sender: str, text: str, timeout: float = 30) -> Reply:
    started = time.perf_counter()
    try:
        async with http.post(url, json={"sender": sender, "message": text},
                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.json(content_type=None)
            return Reply(response.status, body if isinstance(body, list) else [], time.perf_counter() - started)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        return Reply(0, [], time.perf_counter() - started, type(error).__name__)


async def user_events(http: aiohttp.ClientSession, url: str, conversation: str) -> list[dict[str, Any]]:
    """The user events the tracker holds for a conversation (Rasa's HTTP API)."""
    async with http.get(f"{url}/conversations/{conversation}/tracker",
                        timeout=aiohttp.ClientTimeout(total=30)) as response:
        tracker = await response.json()
    return [e for e in tracker.get("events") or [] if e.get("event") == "user"]


async def user_turns(http: aiohttp.ClientSession, url: str, conversation: str) -> list[str]:
    """The user messages the tracker holds for a conversation."""
    return [e.get("text") or "" for e in await user_events(http, url, conversation)]


class Conversations:
    """Sender ids that stay under the flood guard: a new one every `per` messages."""

    def __init__(self, prefix: str, per: int = PER_CONVERSATION) -> None:
        self.prefix, self.per, self.sent = f"{prefix}-{time.time_ns()}", per, 0

    def next(self) -> tuple[str, bool]:
        """(sender, whether this is the conversation's first message: it runs the session start)."""
        number, turn = divmod(self.sent, self.per)
        self.sent += 1
        return f"{self.prefix}-{number}", turn == 0


class Widget:
    """One widget user: a socket.io connection in the conversation the server issued."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.acks: asyncio.Queue[str] = asyncio.Queue()
        self.session = ""
        self.closed_at: float | None = None  # when the connection closed (monotonic)

    async def open(self, timeout: float = 20) -> Widget:
        confirmed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        self.client.on("bot_uttered", lambda data: self.events.put_nowait(data if isinstance(data, dict) else {}))
        self.client.on("rating_saved", lambda data: self.acks.put_nowait("saved"))
        self.client.on("rating_refused", lambda data: self.acks.put_nowait("refused"))
        self.client.on("disconnect", lambda: setattr(self, "closed_at", time.monotonic()))
        await asyncio.wait_for(self.client.connect(self.url, socketio_path="/socket.io", transports=["websocket"]),
                               timeout)
        await self.client.emit("session_request", {"session_id": None})  # the server issues a signed id
        self.session = await asyncio.wait_for(confirmed, timeout)
        return self

    async def send(self, text: str) -> None:
        await self.client.emit("user_uttered", {"message": text, "session_id": self.session})

    def drain(self) -> list[dict[str, Any]]:
        drained = []
        while not self.events.empty():
            drained.append(self.events.get_nowait())
        return drained

    async def ask(self, text: str, timeout: float = 30,
                  until: Callable[[dict[str, Any]], bool] = lambda event: True) -> tuple[float | None, list[dict]]:
        """Send text; (seconds to the first bot event matching `until` or None, events seen)."""
        self.drain()
        started = time.perf_counter()
        await self.send(text)
        seen: list[dict[str, Any]] = []
        while (left := timeout - (time.perf_counter() - started)) > 0:
            try:
                event = await asyncio.wait_for(self.events.get(), left)
            except asyncio.TimeoutError:
                break
            seen.append(event)
            if until(event):
                return time.perf_counter() - started, seen
        return None, seen

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), 10)


def is_answer(event: dict[str, Any]) -> bool:
    """A bot event that is an answer (not the flood refusal, not the apology)."""
    return event.get("text") not in (flood.TOO_FAST, UNAVAILABLE, limits.TOO_LONG)


# --- 1. the largest message ---------------------------------------------------------------
async def largest_message(a: Assistant, http: aiohttp.ClientSession, repeats: int = 3) -> dict[str, Any]:
    """Time and peak RSS growth for a short message and one at the limit; limit+1 refused."""
    pid = a.rasa_pid()
    if pid is None:
        raise LookupError("no Rasa process in run.sh's session")
    at_limit = long_message(limits.MAX_CHARS)
    results: dict[str, Any] = {"max_chars": limits.MAX_CHARS}
    for kind, text in (("short", SHORT[0]), ("at_limit", at_limit)):
        sender = f"bench-size-{kind}-{time.time_ns()}"
        await say(http, a.webhook, sender, SHORT[1])  # the session start, not measured
        times, growth, answered = [], [], 0
        for _ in range(repeats):
            before = memory_kb(pid, "VmRSS")
            known = reset_peak(pid)
            reply = await say(http, a.webhook, sender, text)
            growth.append((memory_kb(pid, "VmHWM") - before) / 1024 if known else float("nan"))
            times.append(reply.seconds)
            answered += reply.answered
        turns = await user_turns(http, a.url, sender)
        results[kind] = {"chars": len(text), "p50_ms": statistics.median(times) * 1000, "times_ms": [
            t * 1000 for t in times], "peak_rss_growth_mb": max(growth), "answered": answered, "sent": repeats,
            "longest_turn_in_tracker": max(map(len, turns), default=0)}
    sender = f"bench-size-over-{time.time_ns()}"
    replies = [await say(http, a.webhook, sender, at_limit + "？") for _ in range(repeats)]
    results["over_limit"] = {
        "chars": limits.MAX_CHARS + 1, "p50_ms": statistics.median(r.seconds for r in replies) * 1000,
        "refused": sum(r.status == 200 and r.texts == [limits.TOO_LONG] for r in replies), "sent": repeats,
        "turns_in_tracker": len(await user_turns(http, a.url, sender))}
    return results


# --- 2. another user's wait ---------------------------------------------------------------
async def closed_loop(http: aiohttp.ClientSession, url: str, texts: list[str], prefix: str,
                      until: float) -> dict[str, Any]:
    """One user asking the next question as soon as it has its answer, until `until`; the
    latency of every turn but each conversation's first (which also runs the session start)."""
    senders, latencies, errors = Conversations(prefix), [], 0
    while time.monotonic() < until:
        sender, first = senders.next()
        reply = await say(http, url, sender, texts[senders.sent % len(texts)])
        if not reply.answered:
            errors += 1
        elif not first:
            latencies.append(reply.seconds)
    return {"latencies": latencies, "errors": errors}


async def other_users_wait(a: Assistant, http: aiohttp.ClientSession, seconds: float,
                           rounds: int) -> dict[str, Any]:
    """User B's latency alone and while user A sends messages at the limit back to back,
    interleaved `rounds` times so that the machine's other work falls on both alike."""
    heavy = [long_message(limits.MAX_CHARS, f"请问{q}？") for q in SHORT]
    alone, loaded, a_latencies, errors = [], [], [], 0
    for _ in range(rounds):
        b = await closed_loop(http, a.webhook, SHORT, "bench-b-alone", time.monotonic() + seconds)
        alone += b["latencies"]
        until = time.monotonic() + seconds
        b, heavy_user = await asyncio.gather(closed_loop(http, a.webhook, SHORT, "bench-b-loaded", until),
                                             closed_loop(http, a.webhook, heavy, "bench-a", until))
        loaded += b["latencies"]
        a_latencies += heavy_user["latencies"]
        errors += b["errors"] + heavy_user["errors"]
    without, with_a = summary(alone), summary(loaded)
    added = {"p50_ms": with_a["p50_ms"] - without["p50_ms"], "p95_ms": with_a["p95_ms"] - without["p95_ms"]}
    return {"b_alone": without, "b_with_a": with_a, "added": added, "a": summary(a_latencies), "errors": errors,
            "met": added["p95_ms"] <= TARGET_ADDED_MS}


# --- 3. floods ----------------------------------------------------------------------------
Ask = Callable[[], Awaitable[tuple[float | None, bool]]]  # (seconds to the answer or None, refused)


async def steady(ask: Ask, done: Callable[[], bool], every: float = 2.0) -> dict[str, Any]:
    """A person's pace until done(): one message every `every` s (or when the answer came,
    if later)."""
    latencies, refused, lost = [], 0, 0
    while not done():
        started = time.monotonic()
        took, was_refused = await ask()
        if took is None:
            lost += 1
        else:
            latencies.append(took)
        refused += was_refused
        await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))
    return {**summary(latencies), "refused": refused, "lost": lost}


async def beside(ask: Callable[[], Awaitable[Ask]], flooding: Callable[[], Awaitable[dict]]) -> tuple[dict, dict]:
    """(the steady client for as long as the flood and its aftermath last, the flood's result)."""
    task = asyncio.ensure_future(flooding())
    return await steady(await ask(), task.done), await task


async def alone_then_beside(ask: Callable[[], Awaitable[Ask]], flooding: Callable[[], Awaitable[dict]],
                            seconds: float) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the steady client alone for `seconds`, then `beside` the flood)."""
    until = time.monotonic() + seconds
    alone = await steady(await ask(), lambda: time.monotonic() >= until)
    return (alone, *await beside(ask, flooding))


async def rest_flood(a: Assistant, http: aiohttp.ClientSession, seconds: float, connections: int = 4) -> dict:
    """One conversation posting on `connections` connections as fast as answers come back."""
    sender, counts = f"bench-flood-rest-{time.time_ns()}", {"sent": 0, "accepted": 0, "refused": 0, "other": 0}
    refusal_times: list[float] = []
    started = time.monotonic()
    until = started + seconds

    async def worker(n: int) -> None:
        while time.monotonic() < until:
            reply = await say(http, a.webhook, sender, SHORT[(counts["sent"] + n) % len(SHORT)], timeout=30)
            counts["sent"] += 1
            if reply.status == 429 and reply.texts == [flood.TOO_FAST]:
                counts["refused"] += 1
                refusal_times.append(reply.seconds)
            elif reply.status == 200:
                counts["accepted"] += 1
            else:
                counts["other"] += 1

    await asyncio.gather(*(worker(n) for n in range(connections)))
    active = time.monotonic() - started
    turns = await user_events(http, a.url, sender)
    return {**counts, "flood_s": seconds, "turns_in_tracker": len(turns), "bound": guard_bound(active),
            "active_s": active,
            "refusal_p50_ms": percentile(refusal_times, 0.5) * 1000, "per_s": counts["sent"] / seconds}


def guard_bound(active_seconds: float) -> int:
    """The most turns the flood guard may let through while a flood is read for `active_seconds`:
    its limit for each window the reading spans (a sliding window admits no more)."""
    return flood.GUARD.messages * max(1, math.ceil(active_seconds / flood.GUARD.seconds))


async def socket_flood(a: Assistant, http: aiohttp.ClientSession, seconds: float, ahead: int | None = 100,
                       settle: float = 3.0) -> dict:
    """One widget conversation emitting user_uttered for `seconds`: at most `ahead` messages
    ahead of the replies (as fast as the server answers), or, with ahead None, as fast as its
    websocket carries them (the server reads them later). Then wait until the replies stop
    (`settle` s quiet, 60 s at most, or the connection drops) and count: turns in the
    tracker, refusals received, refusals the server logged (the rest it never read)."""
    widget = await Widget(a.url).open()
    sent, refused, answers, last_reply = 0, 0, 0, 0.0

    def count(event: dict[str, Any]) -> None:
        nonlocal refused, answers
        refused += event.get("text") == flood.TOO_FAST
        answers += bool(event.get("text")) and is_answer(event)

    try:
        started = time.monotonic()
        until = started + seconds
        while time.monotonic() < until and widget.closed_at is None:
            await widget.send(SHORT[sent % len(SHORT)])
            sent += 1
            await asyncio.sleep(0)  # let the socket's writer and reader run
            for event in widget.drain():
                count(event)
            while time.monotonic() < until and (widget.client.eio.queue.qsize() > 32 if ahead is None else
                                                sent - refused - answers > ahead):
                await asyncio.sleep(0.001)
                for event in widget.drain():
                    count(event)
        ended = time.monotonic()
        while time.monotonic() - ended < 60 and widget.closed_at is None:
            try:
                count(await asyncio.wait_for(widget.events.get(), settle))
            except asyncio.TimeoutError:
                break
            last_reply = time.monotonic() - ended
        closed = None if widget.closed_at is None else widget.closed_at - ended
        turns = await user_events(http, a.url, widget.session)
    finally:
        await widget.close()
    logged = sum(1 for line in (a.folder / "run.log").read_text(errors="replace").splitlines()
                 if "faster than the flood guard" in line and widget.session in line)
    first = turns[0].get("timestamp", 0.0) if turns else 0.0
    active = (ended - started) + (closed if closed is not None else last_reply)
    return {"sent": sent, "flood_s": seconds, "ahead": ahead, "accepted": len(turns), "bound": guard_bound(active),
            "active_s": active,
            "turn_times_s": [round(e.get("timestamp", 0.0) - first, 1) for e in turns], "refused": refused,
            "refused_by_server": logged, "never_read": sent - len(turns) - logged, "answer_events": answers,
            "per_s": sent / seconds, "last_reply_after_s": last_reply, "closed_after_s": closed}


async def rating_flood(a: Assistant, http: aiohttp.ClientSession, count: int = 50) -> dict[str, Any]:
    """`count` identical 差评 `rate` events for one answer, emitted back to back."""
    widget = await Widget(a.url).open()
    try:
        took, events = await widget.ask("开公司最快多久能拿到执照", until=lambda e: isinstance(e.get("custom"), dict))
        if took is None:
            return {"error": "no service card to rate", "events": events[:3]}
        card = next(e["custom"] for e in events if isinstance(e.get("custom"), dict))
        answer = next((e["text"] for e in events if e.get("text")), card.get("title", ""))
        rating = {"session_id": widget.session, "level": "非常不满意", "reason": "bench", "answer": answer,
                  "topic": card.get("topic"), "department": (card.get("department") or {}).get("id")}
        started = time.perf_counter()
        for _ in range(count):
            await widget.client.emit("rate", rating)
            await asyncio.sleep(0)
        acks: dict[str, int] = {"saved": 0, "refused": 0}
        with contextlib.suppress(asyncio.TimeoutError):
            while sum(acks.values()) < count:
                acks[await asyncio.wait_for(widget.acks.get(), 30)] += 1
        all_acked = time.perf_counter() - started
        await asyncio.sleep(3)  # the 差评's follow-up (a handoff) goes through the dialogue
        rows = a.query("SELECT level FROM ratings WHERE conversation_id = ?", widget.session)
        follow_ups = [t for t in await user_turns(http, a.url, widget.session) if t.startswith("/answer_rated_badly")]
    finally:
        await widget.close()
    return {"emitted": count, **acks, "acked_in_ms": all_acked * 1000, "ratings_stored": len(rows),
            "follow_ups": len(follow_ups), "met": len(rows) == 1 and len(follow_ups) == 1}


async def case_openings(a: Assistant, http: aiohttp.ClientSession, again: int = 4, racers: int = 10) -> dict:
    """A case opened through 「转人工」 and the form, then 「转人工」 again and again; then
    `racers` simultaneous action_open_case calls for one conversation, straight to the action
    server (with the secret, as Rasa calls it), which is where a race would show."""
    sender = f"bench-case-{time.time_ns()}"
    flow = [await say(http, a.webhook, sender, text) for text in ("转人工", "跳过", "跳过", "跳过")]
    opened = [m["custom"] for r in flow for m in r.messages if (m.get("custom") or {}).get("type") == "handoff"]
    repeats = []
    for _ in range(again):
        await asyncio.sleep(1)
        repeats.append(await say(http, a.webhook, sender, "转人工"))
    open_cases = a.query("SELECT id FROM cases WHERE conversation_id = ? AND status IN ('waiting', 'claimed')",
                         sender)

    racer = f"bench-case-race-{time.time_ns()}"
    call = {"next_action": "action_open_case", "sender_id": racer, "version": "3.6.21", "domain": {},
            "tracker": {"sender_id": racer, "slots": {"handoff_reason": "user_request"},
                        "latest_message": {"text": "跳过", "intent": {"name": "skip"}},
                        "events": [{"event": "user", "text": "转人工", "input_channel": "rest",
                                    "timestamp": time.time()}],
                        "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None}}
    headers = {"Authorization": f"Bearer {a.actions_secret}"}

    async def open_one() -> int:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with http.post(f"{a.actions_url}/webhook", json=call, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=30)) as response:
                await response.read()
                return response.status
        return 0

    statuses = await asyncio.gather(*(open_one() for _ in range(racers)))
    raced = a.query("SELECT id FROM cases WHERE conversation_id = ? AND status IN ('waiting', 'claimed')", racer)
    return {"case_opened": bool(opened), "case_id": opened[0]["case_id"] if opened else None,
            "flow_replies": [r.texts[:1] for r in flow],
            "again_sent": again, "again_replies": [r.texts for r in repeats], "open_cases": len(open_cases),
            "racers": racers, "racer_statuses": sorted(statuses), "raced_open_cases": len(raced),
            "met": len(open_cases) == 1 and len(raced) == 1}


def from_address(address: str) -> aiohttp.ClientSession:
    """A client at its own loopback address (127.0.0.0/8): the channels and the console tell
    clients apart by address, as they would two businesses."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0))


async def client_quota(a: Assistant, conversations: int = 6) -> dict[str, Any]:
    """One client (address) opening a case in each of `conversations` new conversations, then a
    second client opening one: the first is held to CASES_PER_CLIENT, the second is not."""
    run = time.time_ns()

    async def open_case(http: aiohttp.ClientSession, sender: str) -> str:
        flow = [await say(http, a.webhook, sender, text) for text in ("转人工", "跳过", "跳过", "跳过")]
        if any((m.get("custom") or {}).get("type") == "handoff" for r in flow for m in r.messages):
            return "opened"
        return "refused" if any("正在等待专员处理" in t for r in flow for t in r.texts) else "neither"

    async with from_address("127.0.0.31") as flooder, from_address("127.0.0.32") as other:
        first = [await open_case(flooder, f"bench-quota-{run}-a{n}") for n in range(conversations)]
        second = await open_case(other, f"bench-quota-{run}-b")
    open_rows = a.query("SELECT conversation_id FROM cases WHERE conversation_id LIKE ? AND status IN "
                        "('waiting', 'claimed')", f"bench-quota-{run}-%")
    quota = constant("DEFAULT_CASES_PER_CLIENT", 3, ROOT / "actions" / "handoff.py")
    opened_a = sum(1 for (c,) in open_rows if c.startswith(f"bench-quota-{run}-a"))
    return {"conversations": conversations, "quota": quota, "first_client": first, "second_client": second,
            "open_cases_first": opened_a, "open_cases_second": len(open_rows) - opened_a,
            "met": opened_a == quota and first.count("refused") == conversations - quota and second == "opened"}


async def login_guesses(a: Assistant, guesses: int = 30) -> dict[str, Any]:
    """An attacker guessing a colleague's password from one address, and the colleague logging
    in from her own desk meanwhile; an unknown name answered like a known one."""
    password = secrets.token_urlsafe(16)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{a.channels_db}"}
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "console.accounts", "add", "zhang", "--role",
                    "specialist", "--department", "scjg", "--name", "张三", "--password-stdin"], cwd=ROOT, env=env,
                   input=password + "\n", text=True, capture_output=True, check=True, timeout=60)
    url = f"{a.console_url}/api/login"

    async def log_in(http: aiohttp.ClientSession, name: str, word: str) -> tuple[int, float]:
        began = time.monotonic()
        async with http.post(url, json={"username": name, "password": word}) as answer:
            await answer.read()
            return answer.status, time.monotonic() - began

    async with from_address("127.0.0.41") as attacker, from_address("127.0.0.42") as colleague, \
            from_address("127.0.0.43") as prober:
        statuses, colleague_tries = [], []
        for n in range(guesses):
            statuses.append((await log_in(attacker, "zhang", f"wrong-guess-{n}"))[0])
            if n in (guesses // 3, 2 * guesses // 3, guesses - 1):
                colleague_tries.append(await log_in(colleague, "zhang", password))
        unknown = [(await log_in(prober, "nobody-here", f"wrong-guess-{n}"))[0] for n in range(7)]
        known = [(await log_in(prober, "zhang", f"wrong-guess-{n}"))[0] for n in range(7)]
    checked = statuses.count(401)
    return {"guesses": guesses, "checked": checked, "throttled": statuses.count(429),
            "colleague": [status for status, _ in colleague_tries],
            "colleague_ms": [round(took * 1000) for _, took in colleague_tries],
            "unknown_name": unknown, "known_name": known,
            "met": checked <= 5 and all(status == 200 for status, _ in colleague_tries) and unknown == known}


async def floods(a: Assistant, http: aiohttp.ClientSession, seconds: float) -> dict[str, Any]:
    """Each channel: the steady client alone, then beside a flood; then ratings and cases."""
    results: dict[str, Any] = {"guard": {"messages": flood.GUARD.messages, "seconds": flood.GUARD.seconds},
                               "seconds": seconds}

    async def rest_asker() -> Ask:
        sender = f"bench-steady-rest-{time.time_ns()}"

        async def ask() -> tuple[float | None, bool]:
            reply = await say(http, a.webhook, sender, SHORT[int(time.monotonic()) % len(SHORT)])
            return (reply.seconds if reply.answered else None), reply.status == 429
        return ask

    async def socket_asker() -> Ask:
        widget = await Widget(a.url).open()  # closed with the run (the flood's aftermath may outlast it)
        widgets.append(widget)

        async def ask() -> tuple[float | None, bool]:
            took, events = await widget.ask(SHORT[int(time.monotonic()) % len(SHORT)], timeout=30)
            refused = any(e.get("text") == flood.TOO_FAST for e in events)
            return (took if events and is_answer(events[0]) else None), refused
        return ask

    widgets: list[Widget] = []
    try:
        results["rest_baseline"], results["rest_steady"], results["rest_flood"] = await alone_then_beside(
            rest_asker, lambda: rest_flood(a, http, seconds), seconds)
        results["socket_baseline"], results["socket_steady"], results["socket_flood"] = await alone_then_beside(
            socket_asker, lambda: socket_flood(a, http, seconds), seconds)
        # the same, not waiting for replies, for half as long: the server reads it long after
        results["socket_unpaced_steady"], results["socket_unpaced_flood"] = await beside(
            socket_asker, lambda: socket_flood(a, http, seconds / 2, ahead=None))
    finally:
        for widget in widgets:
            await widget.close()
    results["ratings"] = await attempt(rating_flood(a, http))
    results["cases"] = await attempt(case_openings(a, http))
    results["client_quota"] = await attempt(client_quota(a))
    results["logins"] = await attempt(login_guesses(a))
    return results


# --- 4. the action server down --------------------------------------------------------------
def outcome(reply: Reply) -> str:
    if reply.answered:
        return "answered"
    if UNAVAILABLE in reply.texts:
        return "apology"
    return reply.error or (f"refused {reply.status}" if reply.status == 429 else f"HTTP {reply.status}")


async def probe(a: Assistant, http: aiohttp.ClientSession, senders: Conversations, limit: float,
                every: float = 1.0) -> dict[str, Any]:
    """A question every `every` s (as users keep asking) until one is answered or `limit` s
    pass: seconds until answered (None: never) and what each probe got."""
    started, outcomes = time.perf_counter(), []
    while time.perf_counter() - started < limit:
        sent = time.perf_counter()
        reply = await say(http, a.webhook, senders.next()[0], SHORT[len(outcomes) % len(SHORT)], timeout=10)
        outcomes.append(outcome(reply))
        if reply.answered:
            return {"answered_after_s": time.perf_counter() - started, "probes": outcomes}
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - sent)))
    return {"answered_after_s": None, "probes": outcomes}


async def after_quiet(a: Assistant, http: aiohttp.ClientSession, senders: Conversations) -> str | None:
    """What one question gets after UNREACHABLE_SECONDS + 1 s in which nobody asked anything
    (rasa_patches' fail-fast window has then run out); None when there is no such window."""
    if not UNREACHABLE_SECONDS:
        return None
    await asyncio.sleep(UNREACHABLE_SECONDS + 1)
    return outcome(await say(http, a.webhook, senders.next()[0], SHORT[6], timeout=15))


async def action_server_down(a: Assistant, http: aiohttp.ClientSession, recovery: float) -> dict[str, Any]:
    """SIGSTOP then SIGCONT, then SIGKILL: what a user sees, and how soon answers come back."""
    results: dict[str, Any] = {"timeout_s": float(os.environ.get("ACTION_TIMEOUT_SECONDS", 4)),
                               "unreachable_s": UNREACHABLE_SECONDS}
    sender = f"bench-down-{time.time_ns()}"
    if not (await say(http, a.webhook, sender, SHORT[0])).answered:
        return {"error": "no answer before the action server was stopped"}
    widget = await Widget(a.url).open()
    try:
        await widget.ask(SHORT[1])  # its session started
        pid = a.actions_pid()
        if pid is None:
            raise LookupError("no action server process in run.sh's session")
        os.kill(pid, signal.SIGSTOP)
        try:
            existing, new, (socket_took, _) = await asyncio.gather(
                say(http, a.webhook, sender, SHORT[2]),
                say(http, a.webhook, f"bench-down-new-{time.time_ns()}", SHORT[2]),
                widget.ask(SHORT[2], until=lambda e: e.get("text") == UNAVAILABLE))
            results["stopped_process_restarted"] = a.actions_pid() != pid
        finally:
            os.kill(pid, signal.SIGCONT)
    finally:
        await widget.close()
    frozen = {"rest_existing": {"s": existing.seconds, "apology": UNAVAILABLE in existing.texts},
              "rest_new_conversation": {"s": new.seconds, "apology": UNAVAILABLE in new.texts},
              "socket_existing": {"s": socket_took, "apology": socket_took is not None}}
    results["frozen"] = {**frozen, "met": all(v["apology"] and v["s"] <= TARGET_APOLOGY_S for v in frozen.values())}
    senders = Conversations("bench-resume")
    results["resumed"] = await probe(a, http, senders, 20)
    if results["resumed"]["answered_after_s"] is None:
        results["resumed"]["after_quiet"] = await after_quiet(a, http, senders)
    results["killed"] = await killed(a, http, recovery)
    return results


async def killed(a: Assistant, http: aiohttp.ClientSession, recovery: float) -> dict[str, Any]:
    """SIGKILL the action server: the next question's fate; then, while users keep asking,
    whether anything brings it back (a new process, healthy, answering) within `recovery` s."""
    old = a.actions_pid()
    if old is None:
        return {"error": "no action server process to kill"}
    os.kill(old, signal.SIGKILL)
    killed_at = time.perf_counter()
    senders = Conversations("bench-killed")
    reply = await say(http, a.webhook, senders.next()[0], SHORT[4], timeout=15)
    result: dict[str, Any] = {"reply_s": reply.seconds, "reply": outcome(reply), "apology": UNAVAILABLE in reply.texts,
                              "restarted_after_s": None, "healthy_after_s": None, "rasa_gone_after_s": None,
                              "run_sh_exited_after_s": None}

    async def watch() -> None:
        while (elapsed := time.perf_counter() - killed_at) < recovery and result["healthy_after_s"] is None:
            if result["run_sh_exited_after_s"] is None and a.process.poll() is not None:
                result["run_sh_exited_after_s"] = elapsed
            if result["rasa_gone_after_s"] is None and a.rasa_pid() is None:
                result["rasa_gone_after_s"] = elapsed
            if a.process.poll() is not None and result["rasa_gone_after_s"] is not None:
                return  # everything stopped: nothing left to come back
            new = a.actions_pid()
            if new and new != old:
                result["restarted_after_s"] = result["restarted_after_s"] or elapsed
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(f"{a.actions_url}/health", timeout=aiohttp.ClientTimeout(total=2)) as health:
                        if health.status == 200:
                            result["healthy_after_s"] = time.perf_counter() - killed_at
            await asyncio.sleep(0.25)

    _, asked = await asyncio.gather(watch(), probe(a, http, senders, recovery))
    result["answered_after_s"] = None if asked["answered_after_s"] is None else (
        asked["answered_after_s"] + reply.seconds)
    result["probes"] = asked["probes"]
    if asked["answered_after_s"] is None and result["healthy_after_s"] is not None:
        result["after_quiet"] = await after_quiet(a, http, senders)
    return result


# --- the run ------------------------------------------------------------------------------
async def wait_ready(a: Assistant, http: aiohttp.ClientSession, timeout: float = 300) -> float:
    """Seconds until the assistant answers over REST (and the action server is healthy)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if a.process.poll() is not None:
            raise SystemExit(f"run.sh exited {a.process.returncode}:\n{a.log_tail()}")
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with http.get(f"{a.actions_url}/health", timeout=aiohttp.ClientTimeout(total=5)) as health:
                if health.status == 200 and (await say(http, a.webhook, "bench-warm-up", SHORT[0], 30)).answered:
                    return time.monotonic() - started
        await asyncio.sleep(1)
    raise SystemExit(f"the assistant did not answer within {timeout:.0f} s:\n{a.log_tail()}")


async def attempt(run: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A part of a scenario; its failure is recorded in its place."""
    try:
        return await run
    except Exception as error:  # noqa: BLE001 - the other parts still run
        return {"error": f"{type(error).__name__}: {error}"}


async def guarded(name: str, run: Awaitable[dict[str, Any]], timeout: float, results: dict[str, Any]) -> None:
    """Run one scenario with a time limit; a failure is recorded, and the next one runs."""
    results["load"][name] = os.getloadavg()
    started = time.monotonic()
    print(f"{name} …", file=sys.stderr, flush=True)
    try:
        results[name] = await asyncio.wait_for(run, timeout)
    except Exception as error:  # noqa: BLE001 - one broken scenario must not lose the others
        results[name] = {"error": f"{type(error).__name__}: {error}"}
    results[name]["wall_s"] = time.monotonic() - started


async def measure(a: Assistant, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"load": {}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        results["started_in_s"] = await wait_ready(a, http)
        for _ in range(2):  # warm-up: the first answers and the first long message are slower
            await say(http, a.webhook, "bench-warm-up-long", long_message(limits.MAX_CHARS))
        await guarded("largest_message", largest_message(a, http), 120, results)
        await guarded("other_users_wait", other_users_wait(a, http, args.seconds, args.rounds),
                      4 * args.seconds * args.rounds + 60, results)
        await guarded("floods", floods(a, http, args.seconds), 8 * args.seconds + 180, results)
        await guarded("action_server_down", action_server_down(a, http, args.recovery), args.recovery + 120, results)
    return results


def ms(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.0f} ms"


def mb(value: float) -> str:
    return "unknown" if value != value else f"+{value:.0f} MB"


def secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


Row = tuple[str, str, str, str]  # what, measured, target, met


def size_rows(size: dict[str, Any]) -> list[Row]:
    short, big, over = size["short"], size["at_limit"], size["over_limit"]
    return [
        (f"1. a message at the limit ({big['chars']} chars), REST",
         f"{ms(big['p50_ms'])} (short message: {ms(short['p50_ms'])}); Rasa's peak RSS {mb(big['peak_rss_growth_mb'])} "
         f"(short: {mb(short['peak_rss_growth_mb'])}); answered {big['answered']}/{big['sent']}, the tracker "
         f"holds all {big['longest_turn_in_tracker']} chars", "accepted whole",
         verdict(big["answered"] == big["sent"] and big["longest_turn_in_tracker"] == big["chars"])),
        (f"1. limit+1 ({over['chars']} chars), REST",
         f"refused {over['refused']}/{over['sent']} in {ms(over['p50_ms'])}; {over['turns_in_tracker']} turns in "
         "the tracker", "refused, never a turn",
         verdict(over["refused"] == over["sent"] and not over["turns_in_tracker"])),
    ]


def wait_rows(wait: dict[str, Any]) -> list[Row]:
    alone, loaded, added = wait["b_alone"], wait["b_with_a"], wait["added"]
    return [("2. user B's wait while user A sends messages at the limit back to back, REST (each starts a new "
             f"conversation every {PER_CONVERSATION} messages, under the flood guard)",
             f"B alone p50/p95 {ms(alone['p50_ms'])}/{ms(alone['p95_ms'])} (n={alone['n']}), with A "
             f"{ms(loaded['p50_ms'])}/{ms(loaded['p95_ms'])} (n={loaded['n']}): added {ms(added['p50_ms'])}/"
             f"{ms(added['p95_ms'])}; A's own p50 {ms(wait['a']['p50_ms'])}; errors {wait['errors']}",
             f"p95 added ≤ {TARGET_ADDED_MS:.0f} ms", verdict(wait["met"]))]


def flood_rows(f: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    guard = f["guard"]
    for key, label in (("rest", "REST, 4 connections"), ("socket", "socket.io, ≤ 100 messages ahead of the replies"),
                       ("socket_unpaced", "socket.io, not waiting for replies")):
        if f"{key}_flood" not in f:
            continue
        fl, base, st = f[f"{key}_flood"], f[f"{key.split('_')[0]}_baseline"], f[f"{key}_steady"]
        if key == "rest":
            extra = f"{fl['refused']} refused (429), refusal p50 {ms(fl['refusal_p50_ms'])}"
        else:
            closed = fl["closed_after_s"]
            extra = (f"{fl['refused_by_server']} refused ({fl['refused']} refusals received), {fl['never_read']} "
                     f"never read; replies went on {secs(fl['last_reply_after_s'])} after the flood"
                     + (f", then the connection dropped ({secs(closed)} after)" if closed is not None else ""))
        out.append((f"3. one conversation flooding for {fl['flood_s']:.0f} s, {label}",
                    f"{fl['sent']} sent ({fl['per_s']:.0f}/s): {fl['accepted']} accepted; {extra}",
                    f"≤ {guard['messages']} turns per {guard['seconds']:.0f} s (≤ {fl['bound']} in the "
                    f"{fl['active_s']:.0f} s the server read it)", verdict(fl["accepted"] <= fl["bound"])))
        unaffected = not st["refused"] and not st["lost"] and st["p50_ms"] - base["p50_ms"] <= TARGET_ADDED_MS
        out.append((f"3. beside it (the flood and its aftermath), a client sending every 2 s, {label.split(',')[0]}",
                    f"p50/max {ms(st['p50_ms'])}/{ms(st['max_ms'])}, n={st['n']} (alone {ms(base['p50_ms'])}/"
                    f"{ms(base['max_ms'])}, n={base['n']}); refused {st['refused']}, unanswered {st['lost']}",
                    f"0 refused; p50 ≤ alone + {TARGET_ADDED_MS:.0f} ms", verdict(unaffected)))
    rating = f.get("ratings", {})
    if "emitted" in rating:
        out.append(("3. a flood of socket.io `rate` events: one 差评 of one answer",
                    f"{rating['emitted']} emitted: {rating['saved']} rating_saved, {rating['refused']} rating_refused "
                    f"(in {ms(rating['acked_in_ms'])}); {rating['ratings_stored']} rating stored, "
                    f"{rating['follow_ups']} handoff follow-up", "1 rating, 1 follow-up", verdict(rating["met"])))
    elif rating:
        out.append(("3. a flood of socket.io `rate` events", f"failed: {rating.get('error')}", "1 rating", "**no**"))
    cases = f.get("cases", {})
    if "open_cases" in cases:
        silent = sum(not texts for texts in cases["again_replies"])
        out.append(("3. case openings: 「转人工」 and the form, then 「转人工」 again; simultaneous action_open_case",
                    f"case opened: {'yes' if cases['case_opened'] else 'no'}; {cases['again_sent']} more 「转人工」: "
                    f"{silent} unanswered (paused), {cases['open_cases']} open case; {cases['racers']} simultaneous "
                    f"calls ({cases['racer_statuses'].count(200)}× 200) → {cases['raced_open_cases']} open case",
                    "one open case per conversation", verdict(cases["met"])))
    quota = f.get("client_quota", {})
    if "first_client" in quota:
        out.append((f"3. one client (address) opening a case in each of {quota['conversations']} new conversations, "
                    "then a second client",
                    f"first: {quota['first_client'].count('opened')} opened, {quota['first_client'].count('refused')} "
                    f"told its {quota['quota']} cases are waiting; second: {quota['second_client']}",
                    f"{quota['quota']} open cases for the first (CASES_PER_CLIENT), the second opens one",
                    verdict(quota["met"])))
    elif quota:
        out.append(("3. cases per client", f"failed: {quota.get('error')}", "CASES_PER_CLIENT", "**no**"))
    logins = f.get("logins", {})
    if "checked" in logins:
        out.append((f"3. {logins['guesses']} password guesses for one account from one address; its owner "
                    "logging in from her desk meanwhile",
                    f"{logins['checked']} checked (401), {logins['throttled']} throttled (429); the owner: "
                    f"{', '.join(map(str, logins['colleague']))} in {', '.join(f'{t} ms' for t in logins['colleague_ms'])}"
                    f"; an unknown name {'answered like' if logins['unknown_name'] == logins['known_name'] else 'NOT like'} "
                    "a known one", "≤ 5 checked, the owner logs in, names not told apart", verdict(logins["met"])))
    elif logins:
        out.append(("3. login guesses", f"failed: {logins.get('error')}", "≤ 5 checked", "**no**"))
    return out


def recovery_text(got: dict[str, Any]) -> str:
    """When probing users were answered again, and what a question gets after a quiet spell."""
    if got.get("answered_after_s") is not None:
        return f"answered again after {secs(got['answered_after_s'])}"
    probes = got.get("probes") or []
    text = f"not answered again while asked every 1 s ({len(probes)} probes: {', '.join(sorted(set(probes)))})"
    if got.get("after_quiet"):
        text += f"; after {UNREACHABLE_SECONDS + 1:.0f} s with no message: {got['after_quiet']}"
    return text


def down_rows(down: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    if "frozen" in down:
        fr = down["frozen"]
        seen = {k: secs(v["s"]) + ("" if v["apology"] else " (no apology)") for k, v in fr.items() if k != "met"}
        out.append(("4. action server frozen (SIGSTOP): time to the apology",
                    f"REST, a started conversation {seen['rest_existing']}; REST, a new conversation "
                    f"{seen['rest_new_conversation']}; socket.io {seen['socket_existing']}",
                    f"≤ {TARGET_APOLOGY_S:.0f} s", verdict(fr["met"])))
        resumed = down["resumed"]
        out.append(("4. after SIGCONT, users asking every 1 s", recovery_text(resumed), "≤ 2 s",
                    verdict(resumed["answered_after_s"] is not None and resumed["answered_after_s"] < 2)))
    k = down.get("killed", {})
    if "error" in k:
        out.append(("4. action server killed (SIGKILL)", f"failed: {k['error']}", "", "**no**"))
    elif k:
        fate = f"{k['reply']} in {secs(k['reply_s'])}"
        if k["restarted_after_s"] is None:
            restart = (f"not restarted (run.sh exited after {secs(k['run_sh_exited_after_s'])}, Rasa gone after "
                       f"{secs(k['rasa_gone_after_s'])})")
        else:
            restart = (f"restarted by run.sh after {secs(k['restarted_after_s'])}, healthy after "
                       f"{secs(k['healthy_after_s'])}; users asking every 1 s: {recovery_text(k)}")
        out.append(("4. action server killed (SIGKILL)", f"next question: {fate}; {restart}",
                    f"apology ≤ {TARGET_APOLOGY_S:.0f} s; restarted and answering",
                    verdict(k["apology"] and k["reply_s"] <= TARGET_APOLOGY_S and k["answered_after_s"] is not None)))
    return out


def rows(r: dict[str, Any]) -> list[Row]:
    """Every line of the table, scenario by scenario; a scenario that failed says so."""
    out: list[Row] = []
    for name, render in (("largest_message", size_rows), ("other_users_wait", wait_rows), ("floods", flood_rows),
                         ("action_server_down", down_rows)):
        result = r.get(name, {})
        try:
            out += [(name, f"failed: {result['error']}", "", "**no**")] if "error" in result else render(result)
        except KeyError as missing:  # a scenario cut short by its time limit
            out.append((name, f"incomplete (no {missing})", "", "**no**"))
    return out


def markdown(r: dict[str, Any]) -> str:
    load = ", ".join(f"{name} {v[0]:.1f}" for name, v in r["load"].items())
    lines = [f"hardening benchmark, {r['date']}, {r['cores']} cores; load average (1 min) at the start of each "
             f"scenario: {load}; assistant ready in {r['started_in_s']:.0f} s; whole run {r['wall_s']:.0f} s", "",
             "| measurement | result | target | met |", "|---|---|---|---|"]
    lines += [f"| {what} | {measured} | {target} | {met} |" for what, measured, target, met in rows(r)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_hardening.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "hardening")
    parser.add_argument("--seconds", type=float, default=10, help="length of each flood and load phase")
    parser.add_argument("--rounds", type=int, default=2, help="alone/loaded rounds of scenario 2")
    parser.add_argument("--recovery", type=float, default=30, help="seconds to wait for a killed action server")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-hardening-") as folder, running(Path(folder)) as assistant:
        results = asyncio.run(measure(assistant, args))
        results["log_tail"] = assistant.log_tail(2000)
    results.update(date=time.strftime("%Y-%m-%d %H:%M"), cores=os.cpu_count(), load_end=os.getloadavg(),
                   wall_s=time.monotonic() - started, max_chars=limits.MAX_CHARS,
                   flood={"messages": flood.GUARD.messages, "seconds": flood.GUARD.seconds})
    table = markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hardening.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    (args.out / "hardening.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
