"""The REST channel: Rasa's, with its input checked at the door. Mounted at /webhooks/rest/webhook.

Rasa's own `rest` channel hands whatever it is posted to the assistant: a JSON list or
string answered 500, a missing sender put the message in one conversation ("default")
shared by everyone who forgot it, list-valued metadata got no reply at all, and a message of
any size went to NLU, the log and the tracker. This subclass keeps its URL, its reply format
(the list of bot messages; `?stream=true` for JSON lines) and its name, so trackers still say
`rest`, and adds what it lacked:

- a body over `limits.MAX_BODY_BYTES` is refused with 413 before it is read whole or parsed;
- a body that is not a JSON object, a missing, empty or non-string `sender` or `message`, a
  sender over `limits.MAX_SENDER_CHARS` or holding control characters, and metadata that is
  not an object get 400 with the reason;
- the text is cleaned (`limits.clean`) and a message over `limits.MAX_CHARS` is answered
  with `limits.TOO_LONG` and goes no further;
- a conversation over the flood guard's rate (channels/flood.py) gets 429 with
  `flood.TOO_FAST` as its one message, and no turn;
- a sender in another channel's namespace (`wechat:…`, `wecom:…`, a widget's signed id) gets
  400: REST cannot speak in, or `/restart`, a WeChat user's or a widget's conversation;
- when the assistant fails on a message (the lock store or the tracker store down) and said
  nothing, 503 with `Retry-After` and the apology (`rasa_patches.UNAVAILABLE`), not `200 []`;
- the input channel is always `rest`: Rasa let the body name another one, which a case then
  took for the channel its replies go out on;
- with `REST_TOKEN` set (production: the REST webhook is then for the district's own systems,
  the public speaks through the widget and WeChat), a request without `Authorization: Bearer
  <token>` (or `?token=`) gets 401 before its body is read. Production sets
  `REST_TOKEN_REQUIRED=1` (`make up-prod`, compose's prod profile): a replica started there
  without a token refuses to start rather than open the webhook to anyone.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import rasa.utils.endpoints
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

import rasa_patches
from channels import clients, flood, limits, session_ids

# Rasa imports this module whenever it starts with credentials.yml: the moment to patch it
rasa_patches.apply()

logger = logging.getLogger(__name__)

OTHER_NAMESPACES = ("wechat:", "wecom:")
OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class BadRequest(ValueError):
    """A body the channel will not pass on; the message is the reason given with the 400."""


def configured_token() -> str:
    """$REST_TOKEN; where production requires one ($REST_TOKEN_REQUIRED) and it is empty, the
    server does not start: an open webhook there would be a silent hole, not a degraded mode."""
    token = os.environ.get("REST_TOKEN", "").strip()
    if not token and os.environ.get("REST_TOKEN_REQUIRED", "").strip() not in ("", "0"):
        raise RuntimeError("REST_TOKEN_REQUIRED is set but REST_TOKEN is empty: set REST_TOKEN, the token "
                           "the district's systems send the REST webhook (Authorization: Bearer …)")
    return token


def authorized(request: Request, token: str) -> bool:
    """No token configured, or the request carries it (compared in constant time)."""
    if not token:
        return True
    given = request.headers.get("authorization", "")
    given = given[7:].strip() if given.lower().startswith("bearer ") else request.args.get("token", "")
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


@dataclass
class Posted:
    """What a REST client posted, checked: who, what (cleaned) and the metadata object."""

    sender: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def belongs_to_another_channel(sender: str) -> bool:
    """Ids in another channel's namespace: `wechat:`/`wecom:` users and the widget's signed ids.
    REST may not speak in their conversations (nor /restart them and close their cases)."""
    return sender.startswith(OTHER_NAMESPACES) or bool(session_ids.SHAPE.match(sender))


def read_body(body: bytes) -> Posted:
    """Check a webhook body and take out its fields; BadRequest says what is wrong."""
    try:
        fields = json.loads(body.decode("utf-8"), strict=False)  # raw control characters: cleaned below
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[…]]]] nested deep
        raise BadRequest("the body is not JSON") from None
    if not isinstance(fields, dict):
        raise BadRequest('the body must be a JSON object {"sender": …, "message": …}')
    sender, text, metadata = fields.get("sender"), fields.get("message"), fields.get("metadata")
    if not isinstance(sender, str) or not sender:
        raise BadRequest("sender is required and must be a non-empty string")
    if len(sender) > limits.MAX_SENDER_CHARS:
        raise BadRequest(f"sender is longer than {limits.MAX_SENDER_CHARS} characters")
    if not limits.is_clean(sender):
        raise BadRequest("sender holds control characters")
    if belongs_to_another_channel(sender):
        raise BadRequest("sender names a conversation of another channel (WeChat, WeCom or the widget)")
    if not isinstance(text, str):
        raise BadRequest("message is required and must be a string")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("metadata must be a JSON object")
    return Posted(sender, limits.clean(text), metadata or {})


class RestInput(RasaRestInput):
    """Rasa's REST channel with bounded, checked and cleaned input."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        configured_token()  # at start-up: production without a token fails here, loudly
        bp = Blueprint(f"{self.name()}_webhook", __name__)

        @bp.get("/")
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.post("/webhook", stream=True)  # streamed, so an oversized body is never read whole
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request, on_new_message)

        return bp

    async def receive(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        if not authorized(request, configured_token()):
            return response.json({"error": "this REST webhook needs its token (Authorization: Bearer …)"},
                                 status=401)
        body = await limits.read_limited(request, limits.MAX_BODY_BYTES)
        if body is None:
            return response.json({"error": f"the body is larger than {limits.MAX_BODY_BYTES} bytes"}, status=413)
        try:
            posted = read_body(body)
        except BadRequest as error:
            return response.json({"error": str(error)}, status=400)
        stream = rasa.utils.endpoints.bool_arg(request, "stream", default=False)
        posted.metadata = clients.stamped(posted.metadata, clients.of_request(request))
        if limits.too_long(posted.text):
            logger.info("rest: a message of %d characters from %s refused", len(posted.text), posted.sender)
            refusal = [{"recipient_id": posted.sender, "text": limits.TOO_LONG}]
            if stream:
                return response.text(json.dumps(refusal[0]) + "\n", content_type="text/event-stream")
            return response.json(refusal)
        if not flood.allow(f"{self.name()}:{posted.sender}"):
            if flood.refused_in_a_row(f"{self.name()}:{posted.sender}") == 1:  # logged once a run
                logger.info("rest: %s is sending faster than the flood guard allows", posted.sender)
            refusal = [{"recipient_id": posted.sender, "text": flood.TOO_FAST}]
            if stream:
                return response.text(json.dumps(refusal[0]) + "\n", content_type="text/event-stream")
            return response.json(refusal, status=429)
        if stream:
            return response.stream(self.stream_response(on_new_message, posted.text, posted.sender, self.name(),
                                                        posted.metadata), content_type="text/event-stream")
        collector = CollectingOutputChannel()
        try:
            await on_new_message(UserMessage(posted.text, collector, posted.sender, input_channel=self.name(),
                                             metadata=posted.metadata))
        except asyncio.CancelledError:
            logger.error("rest: the message from %s timed out", posted.sender)
        except Exception:  # noqa: BLE001 - the lock or tracker store failed: say so, retryably
            logger.exception("rest: the assistant failed on a message from %s", posted.sender)
            if not collector.messages:  # not `200 []`, which a client cannot tell from silence
                return response.json([{"recipient_id": posted.sender, "text": rasa_patches.UNAVAILABLE}],
                                     status=503, headers={"Retry-After": "5"})
        return response.json(collector.messages)
