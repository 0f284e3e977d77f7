"""The WeChat side of scripts/bench_prod.py: followers pushed as WeChat's servers push, and the
customer-service API that late answers go out through.

`WeChatUser` sends safe-mode (AES) messages signed and encrypted with wechatpy, waits 5 s for
the passive reply as WeChat does and retries with the same MsgId (three pushes in all);
"success" means the answer comes through the customer-service API, which `WeChatAPIStandIn`
stands in for on 127.0.0.1 and hands to the follower waiting for it.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from channels.wechat_protocol import parse_xml, signature
from production.bench_clients import ANSWER_TIMEOUT, Clock, Sent, User, classify, failure_kind, session_from

WECHAT_TIMEOUT = 5.0  # WeChat waits this long for a passive reply, then retries
WECHAT_ATTEMPTS = 3  # the first push and WeChat's two retries
# The Official Account the bench's topology is started with (scripts/bench_prod.py up):
# fixed test values, not secrets.
WECHAT = {"WECHAT_TOKEN": "bench-wechat-token", "WECHAT_APPID": "wxbench0000000001",
          "WECHAT_APPSECRET": "bench-secret", "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}


class WeChatAPIStandIn:
    """WeChat's customer-service API on 127.0.0.1:`port`: tokens for anyone, each message handed
    to the bench user it is addressed to."""

    def __init__(self, port: int, clock: Clock) -> None:
        self.port, self.clock = port, clock
        self.inboxes: dict[str, asyncio.Queue[tuple[float, str]]] = {}
        self.runner: web.AppRunner | None = None

    def inbox(self, user: str) -> asyncio.Queue[tuple[float, str]]:
        return self.inboxes.setdefault(user, asyncio.Queue())

    async def _token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "bench-access-token", "expires_in": 7200})

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.inbox(str(body.get("touser", ""))).put_nowait((self.clock(), body.get("text", {}).get("content", "")))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


class WeChatUser(User):
    """A follower of the Official Account; WeChat's servers push for it (safe mode)."""

    channel = "wechat"

    def __init__(self, *args: Any, api: WeChatAPIStandIn, settings: dict[str, str] = WECHAT) -> None:
        super().__init__(*args)
        self.http = session_from(self.address, 4)
        self.token = settings["WECHAT_TOKEN"]
        self.crypto = WeChatCrypto(self.token, settings["WECHAT_ENCODING_AES_KEY"], settings["WECHAT_APPID"])
        self.api = api
        self.inbox = api.inbox(self.sender)

    async def close(self) -> None:
        await self.http.close()

    def new_conversation(self, sender: str) -> None:
        super().new_conversation(sender)
        self.inbox = self.api.inbox(sender)

    def _push(self, text: str, msg_id: int) -> tuple[dict[str, str], bytes]:
        xml = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{self.sender}]]>"
               f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content>{escape(text)}</Content><MsgId>{msg_id}</MsgId></xml>")
        stamp, nonce = str(int(time.time())), "".join(random.choices(string.ascii_letters, k=10))
        sealed = self.crypto.encrypt_message(xml, nonce, stamp)
        params = {"timestamp": stamp, "nonce": nonce, "encrypt_type": "aes",
                  "signature": signature(self.token, stamp, nonce),
                  "msg_signature": parse_xml(sealed)["MsgSignature"]}
        return params, sealed.encode()

    def _open(self, body: bytes) -> str:
        envelope = parse_xml(body)
        inner = self.crypto.decrypt_message(body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
        return parse_xml(inner).get("Content", "")

    async def send(self, text: str) -> Sent:
        self._drain(self.inbox)
        sent = await self._send(text)
        self.gave_up = not sent.answered
        return sent

    async def _send(self, text: str) -> Sent:
        sent = Sent(self.channel, self.sender, text, self.clock())
        msg_id, failures = random.randint(10**15, 10**16), []
        for _ in range(WECHAT_ATTEMPTS):
            params, body = self._push(text, msg_id)
            try:
                async with self.http.post(f"{self.base_url}/webhooks/wechat/webhook", params=params, data=body,
                                          timeout=aiohttp.ClientTimeout(total=WECHAT_TIMEOUT)) as answer:
                    status, content = answer.status, await answer.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                failures.append(failure_kind(error))
                continue
            if status != 200:
                failures.append(f"http {status}")
                if status == 429:  # WeChat retries as for any failure, but not in the same instant
                    await asyncio.sleep(1)
                continue
            if content.strip() not in (b"success", b""):
                try:
                    reply = self._open(content)
                except Exception as error:  # noqa: BLE001 - whatever makes the envelope unreadable
                    sent.outcome, sent.kind = "error", f"bad reply: {type(error).__name__}"
                    return sent
                sent.outcome, sent.kind, sent.reply = classify([reply])
                sent.via, sent.latency = "passive", self.clock() - sent.at
                return sent
            waited = await self._api_message(ANSWER_TIMEOUT)  # answered at once: it comes by the API
            if waited is None:
                sent.outcome, sent.kind = "lost", "success, no API message"
                return sent
            at, reply = waited
            sent.outcome, sent.kind, sent.reply = classify([reply])
            sent.via, sent.latency = "api", at - sent.at
            return sent
        # WeChat gives up after its retries and shows the follower that the service failed
        sent.outcome, sent.kind = "error", "wechat gave up: " + " / ".join(failures)
        return sent

    async def _api_message(self, timeout: float) -> tuple[float, str] | None:
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except asyncio.TimeoutError:
            return None
