"""The web widget's channel: Rasa's socket.io protocol, with two things fixed.

Mounted as Rasa's own socket.io channel is (`socketio`, path /socket.io on the Rasa port)
and speaking the same protocol (session_request → session_confirm, user_uttered →
bot_uttered), so existing clients such as rasa-webchat keep working. Two differences:

- a custom payload (the service card) arrives as ONE bot_uttered event `{"custom": card}`.
  Rasa 3.6's SocketIOOutput.send_custom_json spreads the card into emit()'s keyword
  arguments, which raises on a card's keys and never reaches the client;
- cross-origin access is allowed only to the origins listed in $WIDGET_ORIGINS
  (comma-separated); unset, pages on http://localhost and http://127.0.0.1 at any port,
  so a developer's own test page works. `enter_room` is awaited when it is a coroutine.
With $SOCKETIO_REDIS_URL set, emits reach sockets on every replica (channels/socket_manager.py).
A message carrying a `message_id` is acknowledged once its turn is over, and a resent one whose
turn is already in the tracker gets that turn's answer again, not a second turn
(channels/redelivery.py): the widget resends what was not acknowledged when its socket is back.

Input is bounded as on every channel (channels/limits.py): a socket.io packet over
limits.MAX_BODY_BYTES closes the connection unread, user_uttered text is cleaned, and a
message over the limit is answered with limits.TOO_LONG (a bot_uttered) and goes no further;
so is a conversation over the flood guard's rate (channels/flood.py), with flood.TOO_FAST.
A socket joins only a conversation whose id this server issued (channels/session_ids.py); a
returning one gets the staff replies sent while it was closed (`staff_seen`, from the tracker).

Its SQL calls run in a thread (asyncio.to_thread), never on the event loop every
conversation of this replica shares.

It also takes the widget's `rate` event: a 好差评 rating of an answer, stored in SQL
(channels/store.py) with the conversation id, the answer, its topic and department; a 差评
opens a handoff to that department.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import re
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from cases.repository import BAD_RATINGS
import rasa_patches
from channels import clients, flood, limits, redelivery, session_ids
from channels.socket_manager import client_manager
from channels.store import store_for

logger = logging.getLogger(__name__)
LOCAL_ORIGIN = re.compile(r"^http://(localhost|127\.0\.0\.1)(:\d+)?$")


def origin_check(setting: str | None) -> Callable[[str | None], bool]:
    """The CORS rule for $WIDGET_ORIGINS: exact listed origins, else local pages only."""
    listed = {o.strip().rstrip("/") for o in (setting or "").split(",") if o.strip()}

    def allowed(origin: str | None) -> bool:
        if not origin:
            return True  # not a browser page (server-side clients send no Origin)
        return origin.rstrip("/") in listed if listed else bool(LOCAL_ORIGIN.match(origin))

    return allowed


def staff_message(text: str, staff: dict[str, Any], at: Any) -> dict[str, Any]:
    """A specialist's reply as the widget gets it: who wrote it, and when (the tracker event's
    timestamp, by which the widget knows which replies it has already shown)."""
    return {"text": text, "staff": {"name": str(staff.get("name", "")), "department": str(staff.get("department", "")),
                                    "at": at if isinstance(at, (int, float)) else None}}


class WebChatOutput(SocketIOOutput):
    """socket.io output whose custom payloads arrive whole, as one bot_uttered event; a staff
    member's reply (posted by the console with `staff` metadata) arrives as one message
    carrying who wrote it."""

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        staff = kwargs.get("staff")
        if isinstance(staff, dict):
            await self._send_message(recipient_id, staff_message(text, staff, kwargs.get("timestamp")))
            return
        await super().send_text_message(recipient_id, text, **kwargs)

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        if json_message.get("type") == "service_card":  # a rating must be of an answer shown
            try:
                await asyncio.to_thread(store_for().answered, recipient_id, str(json_message.get("topic", "")),
                                        str((json_message.get("department") or {}).get("id", "")))
            except Exception:  # noqa: BLE001 - the database restarting must not cost the user the turn
                logger.warning("socket.io: could not record the answer shown in %s (its rating will be "
                               "refused)", recipient_id, exc_info=True)
        await self._send_message(recipient_id, {"custom": json_message})


class WebChatInput(SocketIOInput):
    """Rasa's socket.io channel with whole custom payloads and an origin allow-list."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: dict[str, str] = {}  # socket id → the conversation it joined
        self.app: Any = None  # Rasa's Sanic app, once it runs: its agent holds the tracker store
        if self.jwt_key:
            raise ValueError("socketio: jwt_key is not supported by this channel; remove it from credentials.yml")

    def get_output_channel(self) -> WebChatOutput | None:
        return WebChatOutput(self.sio, self.bot_message_evt) if self.sio else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=origin_check(os.environ.get("WIDGET_ORIGINS")),
                          max_http_buffer_size=limits.MAX_BODY_BYTES, client_manager=client_manager())
        self.sio = sio
        bp = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)

        @bp.listener("after_server_start")
        async def keep_app(app: Any, _: Any) -> None:
            self.app = app

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any) -> None:
            await self.confirm_session(sid, data if isinstance(data, dict) else {})

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any) -> dict[str, Any] | None:
            return await self.handle(sid, data if isinstance(data, dict) else {}, on_new_message)

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: str) -> None:
            self.sessions.pop(sid, None)

        @sio.on("rate", namespace=self.namespace)
        async def rate(sid: str, data: Any) -> None:
            await self.rate(sid, data if isinstance(data, dict) else {}, on_new_message)

        return bp

    async def confirm_session(self, sid: str, data: dict) -> None:
        """Join the conversation the client asks for (a reconnect keeps its history) when this
        server issued its id (channels/session_ids.py), else a new one: a guessed, copied or
        made-up id never opens someone else's conversation."""
        asked = data.get("session_id")
        session_id = asked if session_ids.valid(asked) else session_ids.issue()
        self.sessions[sid] = session_id if self.session_persistence else sid
        if self.session_persistence:
            entered = self.sio.enter_room(sid, session_id, namespace=self.namespace)
            if inspect.isawaitable(entered):  # python-socketio >= 5.10
                await entered
        await self.sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
        if session_id == asked:  # a returning widget: the staff replies sent while it was closed
            for missed in await self.staff_replies_since(session_id, data.get("staff_seen")):
                await self.sio.emit(self.bot_message_evt, missed, room=sid, namespace=self.namespace)

    async def staff_replies_since(self, session_id: str, seen: Any) -> list[dict[str, Any]]:
        """Staff replies in the tracker after `seen` (the timestamp of the last one the widget
        showed; none shown: every one of this session), oldest first."""
        since = float(seen) if isinstance(seen, (int, float)) and not isinstance(seen, bool) else 0.0
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        if agent is None or agent.tracker_store is None:
            return []
        from rasa.shared.core.events import BotUttered

        try:
            tracker = await agent.tracker_store.retrieve(session_id)
        except Exception:  # noqa: BLE001 - the tracker store is down: the live path still works
            logger.exception("socket.io: could not read %s for missed staff replies", session_id)
            return []
        return [staff_message(event.text or "", event.metadata["staff"], event.timestamp)
                for event in (tracker.events if tracker else [])
                if isinstance(event, BotUttered) and isinstance((event.metadata or {}).get("staff"), dict)
                and event.timestamp > since]

    async def rate(self, sid: str, data: dict,
                   on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None) -> None:
        """Record a 好差评 rating of an answer this conversation was shown; acknowledge with
        rating_saved or rating_refused. A 差评 must be followed up: it reaches the dialogue
        as `/answer_rated_badly{…}`, which hands the conversation to the rated department."""
        store = store_for()
        session, topic = str(data.get("session_id") or ""), str(data.get("topic") or "")
        department = str(data.get("department") or "")
        if not session or self.sessions.get(sid) != session:  # only the conversation this socket is in
            await self.sio.emit("rating_refused", "not this socket's conversation", room=sid,
                                namespace=self.namespace)
            return
        if not await asyncio.to_thread(store.was_answered, session, topic, department):
            await self.sio.emit("rating_refused", "no such answer in this conversation", room=sid,
                                namespace=self.namespace)
            return
        try:
            rating_id, before = await asyncio.to_thread(store.rate_answer, session, self.name(),
                                                        str(data.get("level", "")), str(data.get("reason") or ""),
                                                        topic, department, str(data.get("answer") or ""))
        except ValueError as error:
            await self.sio.emit("rating_refused", str(error), room=sid, namespace=self.namespace)
            return
        await self.sio.emit("rating_saved", {"id": rating_id}, room=sid, namespace=self.namespace)
        if on_new_message and data.get("level") in BAD_RATINGS and before not in BAD_RATINGS:  # followed up once
            entities = {"rating_level": data["level"], "department": department, "topic": topic,
                        "rating_reason": str(data.get("reason") or "")[:200]}
            try:
                await on_new_message(UserMessage("/answer_rated_badly" + json.dumps(entities, ensure_ascii=False),
                                                 WebChatOutput(self.sio, self.bot_message_evt), session,
                                                 input_channel=self.name()))
            except Exception:  # noqa: BLE001 - socket.io drops a handler's exception silently
                logger.exception("the follow-up of a bad rating failed in %s", session)

    def client_of(self, sid: str) -> str:
        """The client of a socket: the address its handshake came from (channels/clients.py)."""
        try:
            request = (self.sio.get_environ(sid, namespace=self.namespace) or {}).get("sanic.request")
        except (KeyError, TypeError):
            request = None
        return clients.of_request(request) if request is not None else clients.client_id("unknown")

    async def handle(self, sid: str, data: dict,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> dict[str, Any] | None:
        """Take one user_uttered; returns its acknowledgement (channels/redelivery.py) when the
        message carried an id, which python-socketio sends back as the event's ack."""
        message_id = redelivery.message_id_of(data)
        if self.session_persistence and not isinstance(data.get("session_id"), str):
            logger.warning("socket.io message without session_id ignored")
            return redelivery.ack(redelivery.ACK_IGNORED, message_id)
        # a socket speaks only in the conversation it was confirmed in: a message naming another
        # session id is not taken into that conversation
        confirmed = self.sessions.get(sid)
        if confirmed is None or (self.session_persistence and data["session_id"] != confirmed):
            logger.warning("socket.io message for a session this socket was not confirmed in ignored")
            return redelivery.ack(redelivery.ACK_IGNORED, message_id)
        sender = confirmed
        message = data.get("message")
        if not isinstance(message, str):
            return redelivery.ack(redelivery.ACK_IGNORED, message_id)
        message = limits.clean(message)
        output = WebChatOutput(self.sio, self.bot_message_evt)
        if limits.too_long(message):  # answered here: NLU and the tracker never see it
            logger.info("socket.io: a message of %d characters in %.128s refused", len(message), sender)
            await output.send_text_message(sender, limits.TOO_LONG)
            return redelivery.ack(redelivery.ACK_REFUSED, message_id)
        key = f"{self.name()}:{sender}"
        if not flood.allow(key):
            refused = flood.refused_in_a_row(key)
            if refused == 1:  # told once; what follows in the same run costs nothing
                logger.info("socket.io: %.128s is sending faster than the flood guard allows", sender)
                await output.send_text_message(sender, flood.TOO_FAST)
            elif refused >= flood.DROP_AFTER:
                logger.warning("socket.io: %.128s went on flooding; its socket is closed", sender)
                await self.sio.disconnect(sid, namespace=self.namespace)
            return redelivery.ack(redelivery.ACK_REFUSED, message_id)
        try:
            if message_id and data.get("resent") is True and await self.replayed(sender, message_id, output):
                return redelivery.ack(redelivery.ACK_ANSWERED, message_id)
            metadata = data.get(self.metadata_key) or {}
            metadata = clients.stamped(metadata if isinstance(metadata, dict) else {}, self.client_of(sid))
            await on_new_message(UserMessage(message, output, sender, input_channel=self.name(),
                                             message_id=message_id, metadata=metadata))
        except Exception:  # noqa: BLE001 - the lock or tracker store failed: the user hears of it
            logger.exception("socket.io: the assistant failed on a message in %.128s", sender)
            await output.send_text_message(sender, rasa_patches.UNAVAILABLE)
            return redelivery.ack(redelivery.ACK_FAILED, message_id)
        return redelivery.ack(redelivery.ACK_ANSWERED, message_id)

    async def replayed(self, sender: str, message_id: str, output: WebChatOutput) -> bool:
        """A resent message already answered: send its answer again instead of a second turn."""
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        if agent is None or agent.tracker_store is None or agent.lock_store is None:
            return False
        answer = await redelivery.delivered_answer(agent, sender, message_id)
        if answer is None:
            return False
        logger.info("socket.io: message %s of %.128s was resent after its turn; its answer is sent again",
                    message_id, sender)
        for event in answer:
            await output.send_response(sender, event.message())
        return True
