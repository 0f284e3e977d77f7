"""WeChat Official Account (公众号) input channel, mounted at /webhooks/wechat/webhook.

GET verifies the server URL (signature over token/timestamp/nonce, echoes echostr).
POST takes a pushed message in plain or safe (AES) mode and answers it with a passive XML
reply when the assistant is done within the reply window (4 s of WeChat's 5), otherwise
answers at once and delivers the reply through the customer-service API as soon as it is
ready (a retry WeChat already sent may carry it passively instead). WeChat's retries
of a message (same MsgId, or FromUserName + CreateTime for events) make one bot turn and
one answer, across processes, through the shared ChannelStore. The conversation id is the
channel's namespace and the user's OpenID, `wechat:<OpenID>` (`conversation_id`): no other
channel can address it (REST refuses such senders, socket.io ids are signed). Text is cleaned and bounded as on every channel (channels/limits.py):
a longer message gets limits.TOO_LONG as its passive reply and makes no turn, as does a
message over the flood guard's rate (channels/flood.py, flood.TOO_FAST). `WeComInput`
(channels/wecom.py) reuses all of this. Its SQL calls (the store, open cases) run in a thread,
never on the event loop every conversation of this replica shares.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from cases.repository import Case, repository_for
from channels import flood, limits, render
from channels.store import ChannelStore, store_for
from channels.wechat_api import CustomerServiceAPI, DeliveryError
from channels.wechat_protocol import (
    AESEnvelope, ProtocolError, check_fresh, check_signature, parse_xml, text_reply,
)

logger = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
REPLY_WINDOW = float(os.environ.get("WECHAT_REPLY_WINDOW", "4.0"))
# While a person has the conversation the bot is paused and says nothing; a WeChat user would
# see only silence, so a message then is acknowledged, at most once in this many seconds.
WAITING_NOTICE_EVERY = 600.0
# what ends a handoff from WeChat (sent on as /restart, the one message a paused bot takes)
END_HANDOFF = re.compile(r"^(取消|取消人工|结束人工|结束人工服务|不等了|退出人工|回到智能助手)[。！!.~～]*$")
# how long a retry of a message still being answered waits for its reply (WeChat waits 5 s)
RETRY_WINDOW = float(os.environ.get("WECHAT_RETRY_WINDOW", str(REPLY_WINDOW)))
UNSUPPORTED = "目前我只能看懂文字和语音消息。请直接用文字描述您要办的事，比如「开公司要多久」。"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


@dataclass
class Settings:
    token: str
    app_id: str = ""
    secret: str = ""
    encoding_aes_key: str = ""
    api_base: str = ""
    agent_id: str = ""


def conversation_id(kind: str, user: str) -> str:
    """The tracker's id of a WeChat/WeCom user: in the channel's own namespace."""
    return f"{kind}:{user}"


def user_of(kind: str, conversation: str) -> str:
    """The OpenID / userid a conversation id names (an id from before the namespace: itself)."""
    prefix = f"{kind}:"
    return conversation[len(prefix):] if conversation.startswith(prefix) else conversation


class WeChatOutput(OutputChannel):
    """Sends through the customer-service API (staff replies, late answers)."""

    def __init__(self, api: CustomerServiceAPI, channel: str) -> None:
        self.api = api
        self.kind = channel

    @classmethod
    def name(cls) -> str:
        return "wechat"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.api.send_text, user_of(self.kind, recipient_id),
                                                         text)

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        staff = message.get("staff")
        if isinstance(staff, dict) and message.get("text"):  # a specialist's reply from the console
            message = {**message, "text": f"【{staff.get('department', '')} {staff.get('name', '')}】\n{message['text']}"}
        text, payloads = render.to_text([message])
        if text:
            # numbered choices (the rating asked after a case is resolved): 「1」 must mean them
            await asyncio.to_thread(self.api.store.offer,
                                    conversation_id(self.kind, user_of(self.kind, recipient_id)), payloads)
            await self.send_text_message(recipient_id, text)


class WeChatInput(InputChannel):
    """The Official Account webhook."""

    kind = "wechat"

    @classmethod
    def name(cls) -> str:
        return "wechat"

    # Settings field → (credentials.yml key, environment variable); the environment fills
    # whatever credentials.yml leaves empty, so secrets never need to be in a file.
    SETTINGS = {
        "token": ("token", "WECHAT_TOKEN"),
        "app_id": ("app_id", "WECHAT_APPID"),
        "secret": ("app_secret", "WECHAT_APPSECRET"),
        "encoding_aes_key": ("encoding_aes_key", "WECHAT_ENCODING_AES_KEY"),
        "api_base": ("api_base", "WECHAT_API_BASE"),
    }
    DEFAULT_API_BASE = "https://api.weixin.qq.com"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "WeChatInput":
        credentials = credentials or {}
        values = {field: str(credentials.get(key) or os.environ.get(env, ""))
                  for field, (key, env) in cls.SETTINGS.items()}
        values["api_base"] = values["api_base"] or cls.DEFAULT_API_BASE
        return cls(Settings(**values))

    def __init__(self, settings: Settings, store: ChannelStore | None = None) -> None:
        self.settings = settings
        self.configured = bool(settings.token)
        if not self.configured:
            logger.warning("%s: no token set, the webhook answers 503 until it is", self.name())
        self.store = store or store_for()
        self.envelope = (AESEnvelope(settings.token, settings.encoding_aes_key, settings.app_id)
                         if settings.encoding_aes_key else None)
        self.api = CustomerServiceAPI(self.kind, settings.api_base, settings.app_id, settings.secret,
                                      self.store, settings.agent_id)
        self._tasks: set[asyncio.Task] = set()
        self._noticed: dict[str, float] = {}  # user → when they were last told a person has it

    def get_output_channel(self) -> OutputChannel:
        return WeChatOutput(self.api, self.name())

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        bp = Blueprint(f"{self.name()}_webhook", __name__)

        @bp.get("/")
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.get("/webhook")
        async def verify(request: Request) -> HTTPResponse:
            return self.verify(request) if self.configured else self.not_configured()

        @bp.post("/webhook", stream=True)  # streamed, so an oversized body is never read whole
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request, on_new_message) if self.configured else self.not_configured()

        return bp

    def not_configured(self) -> HTTPResponse:
        return response.text(f"{self.name()} is not configured", status=503)

    # --- verification ---------------------------------------------------------------

    def verify(self, request: Request) -> HTTPResponse:
        args = request.args
        try:
            check_fresh(args.get("timestamp"))
            check_signature(args.get("signature"), self.settings.token, args.get("timestamp", ""),
                            args.get("nonce", ""))
        except ProtocolError as error:
            return response.text(str(error), status=error.status)
        return response.text(args.get("echostr", ""))

    # --- messages -------------------------------------------------------------------

    def open(self, request: Request, body: bytes) -> dict[str, str]:
        """Check and read a pushed message (plain only when no EncodingAESKey is set)."""
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        check_fresh(timestamp)
        if self.envelope:
            if args.get("encrypt_type") != "aes":
                raise ProtocolError(403, "plain message refused in safe mode")
            # the plain signature is checked too: WeChat sends both in safe mode
            check_signature(args.get("signature"), self.settings.token, timestamp, nonce)
            return self.envelope.open(body, args.get("msg_signature"), timestamp, nonce)
        check_signature(args.get("signature"), self.settings.token, timestamp, nonce)
        return parse_xml(body)

    def seal(self, request: Request, reply_xml: str) -> HTTPResponse:
        if self.envelope:
            reply_xml = self.envelope.seal(reply_xml, request.args.get("nonce", ""))
        return response.text(reply_xml, content_type="application/xml")

    async def receive(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        body = await limits.read_limited(request, MAX_BODY)
        if body is None:
            return response.text("too large", status=413)
        try:
            message = self.open(request, body)
        except ProtocolError as error:
            logger.info("%s refused a request: %s", self.name(), error)
            return response.text(str(error), status=error.status)
        user, account = message.get("FromUserName", ""), message.get("ToUserName", "")
        if not user:
            return response.text("no FromUserName", status=400)
        text = await asyncio.to_thread(self.user_text, message)  # it may read the store
        if text is None:  # unsubscribe and other silent events
            return response.text("success")
        if text == UNSUPPORTED:
            return self.seal(request, text_reply(user, account, UNSUPPORTED))
        if limits.too_long(text):  # before NLU, the tracker and the retry bookkeeping
            logger.info("%s: a message of %d characters from %s refused", self.name(), len(text), user)
            return self.seal(request, text_reply(user, account, limits.TOO_LONG))
        key = f"{self.kind}:{self.message_key(message)}"
        if not await asyncio.to_thread(self.store.claim, key, self.kind, user):
            return await self.answer_retry(request, key, user, account)
        if not flood.allow(conversation_id(self.kind, user)):  # after the claim: WeChat's retries are one message
            if flood.refused_in_a_row(conversation_id(self.kind, user)) == 1:
                logger.info("%s: %s is sending faster than the flood guard allows", self.name(), user)
            await asyncio.to_thread(self.store.finish, key, "", "none")
            return self.seal(request, text_reply(user, account, flood.TOO_FAST))
        return await self.answer_first(request, key, user, account, text, on_new_message)

    @staticmethod
    def message_key(message: dict[str, str]) -> str:
        """MsgId; events have none: FromUserName + CreateTime (+ the event, so that two
        events of one user in the same second stay two)."""
        if message.get("MsgId"):
            return message["MsgId"]
        parts = ("FromUserName", "CreateTime", "Event", "EventKey")
        return ":".join(message.get(p, "") for p in parts)

    def user_text(self, message: dict[str, str]) -> str | None:
        """What the user says to the assistant, UNSUPPORTED, or None for a silent event."""
        kind = message.get("MsgType", "")
        user = message.get("FromUserName", "")
        if kind == "text":
            content = limits.clean(message.get("Content", "")).strip()
            picked = render.choice(content, self.store.offered(conversation_id(self.kind, user)))
            if not picked and END_HANDOFF.match(content) and self._open_case(user) is not None:
                return "/restart"
            return picked or content
        if kind == "voice":
            return limits.clean(message.get("Recognition", "")).strip() or UNSUPPORTED
        if kind == "event":
            event = message.get("Event", "").lower()
            if event == "subscribe":
                return "/greet"
            if event == "unsubscribe":
                self.store.unsubscribed(conversation_id(self.kind, user))
                return None
            if event == "click" and message.get("EventKey"):
                return "/" + limits.clean(message["EventKey"]).strip().lstrip("/")
            return None
        return UNSUPPORTED

    async def _run_bot(self, text: str, user: str, on_new_message: OnNewMessage) -> str:
        collector = CollectingOutputChannel()
        await on_new_message(UserMessage(text, collector, sender_id=conversation_id(self.kind, user),
                                         input_channel=self.name()))
        reply, payloads = render.to_text(collector.messages)
        await asyncio.to_thread(self.store.offer, conversation_id(self.kind, user), payloads)
        return reply or await asyncio.to_thread(self.waiting_notice, user)

    def _open_case(self, user: str) -> Case | None:
        try:
            cases = repository_for()  # a case opened before the namespace names the bare id
            return cases.open_case_of(conversation_id(self.kind, user)) or cases.open_case_of(user)
        except Exception:  # noqa: BLE001 - no cases database: as if there were no case
            logger.exception("%s: cases database unavailable", self.name())
            return None

    def waiting_notice(self, user: str) -> str:
        """For a message the paused bot did not answer: that a person has it (rate-limited)."""
        case = self._open_case(user)
        now = time.monotonic()
        if case is None or now - self._noticed.get(user, -WAITING_NOTICE_EVERY) < WAITING_NOTICE_EVERY:
            return ""
        self._noticed[user] = now
        state = "正在排队等工作人员接手" if case.status == "waiting" else "工作人员正在处理"
        return (f"您的消息已转给工作人员（案件 #{case.id}，{state}），请稍候，回复会发到这里。"
                f"不想等了可回复「取消」，回到智能助手。")

    async def answer_first(self, request: Request, key: str, user: str, account: str, text: str,
                           on_new_message: OnNewMessage) -> HTTPResponse:
        task = asyncio.ensure_future(self._run_bot(text, user, on_new_message))
        try:
            reply = await asyncio.wait_for(asyncio.shield(task), timeout=REPLY_WINDOW)
        except (asyncio.TimeoutError, asyncio.CancelledError) as waited:
            # too slow, or WeChat dropped the connection: the API delivers the answer
            background = asyncio.ensure_future(self._deliver_late(task, key, user))
            self._tasks.add(background)
            background.add_done_callback(self._tasks.discard)
            if isinstance(waited, asyncio.CancelledError):
                raise
            return response.text("success")
        except Exception:  # the bot failed: say so rather than leave the user waiting
            logger.exception("%s: assistant failed on %s", self.name(), key)
            await asyncio.to_thread(self.store.finish, key, "", "failed")
            return self.seal(request, text_reply(user, account, "抱歉，系统暂时出了点问题，请稍后再试。"))
        if not reply:
            await asyncio.to_thread(self.store.finish, key, "", "none")
            return response.text("success")
        # through `pending`, so that exactly one request carries it: this one, or a retry
        # WeChat sent because this connection was too slow for it
        await asyncio.to_thread(self.store.finish, key, reply, "pending")
        reply = await asyncio.to_thread(self.store.take_reply, key, "passive")
        return self.seal(request, text_reply(user, account, reply)) if reply else response.text("success")

    async def _deliver_late(self, task: asyncio.Future, key: str, user: str) -> None:
        """The reply missed the window: once ready, a waiting retry may carry it; else the API."""
        try:
            reply = await task
        except Exception:
            logger.exception("%s: assistant failed on %s", self.name(), key)
            await asyncio.to_thread(self.store.finish, key, "", "failed")
            return
        if not reply:
            await asyncio.to_thread(self.store.finish, key, "", "none")
            return
        await asyncio.to_thread(self.store.finish, key, reply, "pending")
        await asyncio.sleep(0.3)  # a retry already waiting takes it passively (it polls every 0.2 s)
        reply = await asyncio.to_thread(self.store.take_reply, key, "api")
        if reply is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.api.send_text, user, reply)
        except (DeliveryError, OSError) as error:
            logger.warning("%s: could not deliver %s: %s", self.name(), key, error)
            await asyncio.to_thread(self.store.finish, key, reply, "failed")

    async def answer_retry(self, request: Request, key: str, user: str, account: str) -> HTTPResponse:
        """A retry of a message being answered: carry its reply if it is ready in time."""
        deadline = asyncio.get_running_loop().time() + RETRY_WINDOW
        while asyncio.get_running_loop().time() < deadline:
            reply = await asyncio.to_thread(self.store.take_reply, key, "passive")
            if reply:
                return self.seal(request, text_reply(user, account, reply))
            if (await asyncio.to_thread(self.store.state, key))[1] not in (None, "pending"):
                break  # delivered, failed or nothing to say
            await asyncio.sleep(0.2)
        return response.text("success")
