"""The simulated businesses of scripts/bench_prod.py: one client per channel, each from its own address.

A business talks to the assistant through nginx on one channel, from a loopback address of its
own (127.x.y.z; Linux routes all of 127/8 to lo), so nginx's per-address rate limit applies to
each business as it would to real clients. `RestUser` posts to the REST webhook, `SocketUser`
speaks the widget's socket.io protocol (session_request → user_uttered → bot_uttered) and
`WeChatUser` posts safe-mode (AES) messages signed with wechatpy as WeChat's servers do, retrying
a message that got no answer within 5 s with the same MsgId as WeChat does. An answer too slow for
WeChat's passive reply goes out through the customer-service API: `WeChatAPIStandIn` is that API
here and hands each message to the user waiting for it (production/bench_wechat.py). Every
`send` returns a `Sent`: what was said, when, what came back and how long it took; nothing raises.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import socketio

ANSWER_TIMEOUT = 30.0  # nginx's proxy_read_timeout: after it nothing more will come
# What the topology says when it cannot answer (channels/wechat.py, rasa_patches.py); a reply
# holding one is an apology (a clear error the user can act on), not an answer.
APOLOGIES = ("系统暂时出了点问题", "暂时不可用", "请稍后再试", "没能处理您的问题", "服务繁忙")


@dataclass
class Sent:
    """One message and what became of it; `at` and `answered_at` count from the scenario's start.

    outcome: ok (an answer), apology (the assistant said it failed), error (the client saw a
    failure: HTTP status, dropped connection, socket disconnect; it could retry) or lost (no
    answer and no error: the client can only wait). `kind` says which, `via` how an answer came.
    """

    channel: str
    conversation: str
    text: str
    at: float
    outcome: str = "lost"
    kind: str = ""
    latency: float | None = None
    via: str = ""
    reply: str = ""
    message_id: str = ""  # socket.io: the id the widget gives a message (channels/redelivery.py)

    @property
    def answered(self) -> bool:
        return self.outcome in ("ok", "apology")

    def row(self) -> dict[str, Any]:
        return asdict(self)


class Addresses:
    """Loopback source addresses, one per business, never reused within a run. The third octet
    varies, since nginx's ip_hash (socket.io stickiness) hashes only the first three."""

    def __init__(self, start: int = 0) -> None:
        self.numbers = itertools.count(start)

    def next(self) -> str:
        n = next(self.numbers)
        return f"127.{1 + n // 62500}.{n % 250}.{2 + (n // 250) % 250}"


def session_from(address: str, limit: int = 8) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=limit, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT + 5))


def classify(texts: list[str]) -> tuple[str, str, str]:
    """(outcome, kind, reply) of what the assistant said."""
    reply = "\n".join(t for t in texts if t)
    if not texts:
        return "lost", "no reply", ""
    if any(word in reply for word in APOLOGIES):
        return "apology", "apology", reply
    return "ok", "", reply or "[card]"


def failure_kind(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "client timeout"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connect refused"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "connection dropped"
    return type(error).__name__


class Clock:
    """Seconds since the scenario began."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


class User:
    """A business on one channel, holding one conversation (`sender`)."""

    channel = ""

    def __init__(self, base_url: str, address: str, sender: str, clock: Clock) -> None:
        self.base_url, self.address, self.sender, self.clock = base_url, address, sender, clock
        self.late = 0  # answers that came after their message was given up on
        self.gave_up = False  # the last message got no answer in time

    def _drain(self, queue: asyncio.Queue) -> None:
        """Drop what came after the last answer (a card after its text, or a late answer)."""
        drained = 0
        while not queue.empty():
            queue.get_nowait()
            drained += 1
        self.late += int(bool(drained) and self.gave_up)

    async def open(self) -> None:
        """Connect (socket.io); the HTTP channels connect per request."""

    def new_conversation(self, sender: str) -> None:
        """Go on as another conversation from the same address (HTTP channels only)."""
        self.sender = sender

    async def close(self) -> None:
        raise NotImplementedError

    async def send(self, text: str) -> Sent:
        raise NotImplementedError


class RestUser(User):
    channel = "rest"

    def __init__(self, *args: Any, limit: int = 8) -> None:
        super().__init__(*args)
        self.http = session_from(self.address, limit)
        token = os.environ.get("REST_TOKEN", "").strip()  # production's REST webhook needs it (channels/rest.py)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def close(self) -> None:
        await self.http.close()

    async def send(self, text: str) -> Sent:
        sent = Sent(self.channel, self.sender, text, self.clock())
        try:
            async with self.http.post(f"{self.base_url}/webhooks/rest/webhook", headers=self.headers,
                                      json={"sender": self.sender, "message": text}) as answer:
                body = await answer.json(content_type=None) if answer.status == 200 else None
                status = answer.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            sent.outcome, sent.kind = "error", failure_kind(error)
            return sent
        if status != 200:
            sent.outcome, sent.kind = "error", f"http {status}"
            return sent
        texts = [m.get("text") or ("[card]" if m.get("custom") else "") for m in body or [] if isinstance(m, dict)]
        sent.outcome, sent.kind, sent.reply = classify(texts)
        sent.latency = self.clock() - sent.at
        return sent


class SocketUser(User):
    """The widget: one socket.io connection that reconnects and rejoins its session by itself,
    and sends a message again (same `message_id`, marked `resent`) when its socket dropped
    before the answer came, as widget/widget.js does with a message not acknowledged.

    As the widget does, it asks for no conversation at first and goes on in the one the server
    confirms (its id, server-issued, becomes `sender`), asking for that one again on every
    reconnect; `sessions_changed` counts reconnects that were given another.
    """

    channel = "socketio"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.http = session_from(self.address, 4)
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2,
                                        handle_sigint=False, http_session=self.http, request_timeout=10)
        self.answers: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self.confirmed = asyncio.Event()
        self.dropped = asyncio.Event()
        self.disconnects = 0
        self.session: str | None = None
        self.sessions_changed = 0
        self.sio.on("connect", self._connected)
        self.sio.on("disconnect", self._disconnected)
        self.sio.on("session_confirm", self._session_confirmed)
        self.sio.on("bot_uttered", self._bot_uttered)
        self.received: list[tuple[float, str, str]] = []  # (when, "text" or "custom", text)
        self.sent: list[Sent] = []

    def new_conversation(self, sender: str) -> None:
        raise NotImplementedError("a socket.io user keeps its session")

    def _bot_uttered(self, data: Any) -> None:
        data = data if isinstance(data, dict) else {}
        at = self.clock()
        if data.get("text"):
            self.received.append((at, "text", str(data["text"])))
        if data.get("custom") is not None or not data.get("text"):
            self.received.append((at, "custom", ""))
        self.answers.put_nowait((at, data))

    async def _connected(self) -> None:
        await self.sio.emit("session_request", {"session_id": self.session})

    def _session_confirmed(self, session_id: Any = None) -> None:
        if isinstance(session_id, str):
            self.sessions_changed += int(self.session is not None and session_id != self.session)
            self.session = self.sender = session_id
        self.confirmed.set()

    def _disconnected(self) -> None:
        self.confirmed.clear()
        self.dropped.set()
        self.disconnects += 1

    async def open(self, url: str | None = None) -> None:
        await asyncio.wait_for(self.sio.connect(url or self.base_url, socketio_path="socket.io", wait_timeout=10), 15)
        await asyncio.wait_for(self.confirmed.wait(), 10)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.sio.disconnect(), 5)
        except (asyncio.TimeoutError, socketio.exceptions.SocketIOError):
            pass
        await self.http.close()

    async def next_answer(self, timeout: float) -> tuple[float, dict] | None:
        try:
            return await asyncio.wait_for(self.answers.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def send(self, text: str) -> Sent:
        self._drain(self.answers)
        sent = await self._send(text)
        self.gave_up = not sent.answered
        self.sent.append(sent)
        return sent

    async def _send(self, text: str) -> Sent:
        """What the client sees: the first bot_uttered after its message (sent again after a
        reconnect while unanswered). Provisional: `bench_checks.correlate_sockets` settles each
        message's answer from the tracker afterwards, by its message_id."""
        sent = Sent(self.channel, self.sender, text, self.clock(), message_id=uuid.uuid4().hex)
        deadline, attempts = sent.at + ANSWER_TIMEOUT, 0
        while True:
            left = deadline - self.clock()
            try:
                await asyncio.wait_for(self.confirmed.wait(), max(0.1, min(left, 10)))
                self.dropped.clear()
                payload = {"message": text, "session_id": self.sender, "message_id": sent.message_id}
                await self.sio.emit("user_uttered", {**payload, **({"resent": True} if attempts else {})})
                attempts += 1
            except asyncio.TimeoutError:
                sent.outcome, sent.kind = "error", "socket disconnected"
                return sent
            except socketio.exceptions.SocketIOError:  # the socket dropped as it was sent: once it is back
                if self.clock() < deadline:
                    await asyncio.sleep(0.1)
                    continue
                sent.outcome, sent.kind = "error", "socket disconnected"
                return sent
            answer = asyncio.ensure_future(self.answers.get())
            dropped = asyncio.ensure_future(self.dropped.wait())
            done, _ = await asyncio.wait({answer, dropped}, timeout=max(0.1, deadline - self.clock()),
                                         return_when=asyncio.FIRST_COMPLETED)
            dropped.cancel()
            if answer in done:
                break
            answer.cancel()
            if dropped not in done:
                sent.outcome, sent.kind = "lost", "no bot_uttered"
                return sent
            if self.clock() >= deadline:
                sent.outcome, sent.kind = "error", "socket disconnected"
                return sent
        at, data = answer.result()
        sent.outcome, sent.kind, sent.reply = classify([data.get("text") or "[card]"])
        sent.via = "resent" if attempts > 1 else ""
        sent.latency = at - sent.at
        return sent


@dataclass
class Conversations:
    """Multi-turn scripts: a topic question, then follow-ups such as 「那要多久」「在哪办」."""

    scripts: list[list[str]] = field(default_factory=list)

    def for_user(self, number: int) -> itertools.cycle:
        """The turns one user says, one script after another, starting at its own place."""
        order = self.scripts[number % len(self.scripts):] + self.scripts[: number % len(self.scripts)]
        return itertools.cycle([turn for script in order for turn in script])
