"""The console's one way to Rasa: its HTTP API (`rasa run --enable-api`).

- read a conversation: GET /conversations/{id}/tracker
- say something to the user as staff: POST …/tracker/events with a `bot` event,
  `execute_side_effects=true&output_channel=latest`, so Rasa delivers it on the channel the
  user last wrote from (widget: socket.io in real time; WeChat/WeCom: the customer-service API)
  and records it in the tracker;
- pause / resume the bot: `pause` / `resume` events. A resume is followed by `action_listen`:
  a paused conversation stopped predicting before its listen, and rules only match a user
  message that follows one;
- after resolution: POST …/trigger_intent `handoff_resolved`, whose rule asks for a rating
  (the prediction loop then ends in a listen, as after any user message).

A channel that refuses delivery (WeChat 45015: the 48-hour window is closed) makes Rasa answer
500 with the channel's error in the message; it is raised here as DeliveryRefused with the code.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import quote

import aiohttp

TIMEOUT_SECONDS = 20.0
# WeChat errors that mean the user can no longer be reached (see channels/wechat_api.py)
OUT_OF_WINDOW = {45015, 45047}
CHANNEL_ERROR = re.compile(r"Error: (\d{5}): ")


class RasaUnavailable(Exception):
    """Rasa did not answer, or answered with an error that is not the channel's."""


class DeliveryRefused(Exception):
    """The user's channel refused the message (`code` is WeChat's errcode)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def out_of_window(self) -> bool:
        return self.code in OUT_OF_WINDOW


class RasaClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(3.0, timeout))

    def _url(self, conversation_id: str, path: str) -> str:
        return f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/{path}"

    def _params(self, **params: str) -> dict[str, str]:
        return {**params, **({"token": self.token} if self.token else {})}

    async def _call(self, method: str, url: str, params: dict[str, str], body: Any = None) -> Any:
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                async with session.request(method, url, params=params, json=body) as answer:
                    payload = await answer.json(content_type=None)
                    if answer.status < 400:
                        return payload
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:  # a hang, too
            raise RasaUnavailable(f"{type(error).__name__}: {error}") from None
        message = str((payload or {}).get("message", "")) if isinstance(payload, dict) else ""
        found = CHANNEL_ERROR.search(message)
        if found:
            raise DeliveryRefused(int(found.group(1)), message)
        raise RasaUnavailable(f"HTTP {answer.status}: {message[:300]}")

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        """The whole conversation (every event since it began)."""
        return await self._call("GET", self._url(conversation_id, "tracker"),
                                self._params(include_events="ALL"))

    async def append(self, conversation_id: str, events: list[dict[str, Any]], deliver: bool) -> None:
        """Add events; with deliver, bot events are sent to the user's latest channel."""
        params = self._params(include_events="NONE")
        if deliver:
            params.update(execute_side_effects="true", output_channel="latest")
        await self._call("POST", self._url(conversation_id, "tracker/events"), params, events)

    async def say(self, conversation_id: str, text: str, staff: dict[str, Any] | None = None,
                  pause: bool = False, deliver: bool = True, custom: dict[str, Any] | None = None) -> None:
        """A message from staff (or about the handoff) on the user's own channel; with pause,
        the bot is paused in the same request (a refused delivery then pauses nothing)."""
        events: list[dict[str, Any]] = [{"event": "pause", "timestamp": time.time()}] if pause else []
        events.append({"event": "bot", "text": text, "timestamp": time.time(), "data": {"custom": custom} if custom else {},
                       "metadata": {"staff": staff} if staff else {}})
        await self.append(conversation_id, events, deliver)

    async def pause(self, conversation_id: str) -> None:
        await self.append(conversation_id, [{"event": "pause", "timestamp": time.time()}], deliver=False)

    @staticmethod
    def _resume_events() -> list[dict[str, Any]]:
        now = time.time()
        return [{"event": "resume", "timestamp": now}, {"event": "action", "name": "action_listen", "timestamp": now}]

    async def resume(self, conversation_id: str) -> None:
        await self.append(conversation_id, self._resume_events(), deliver=False)

    async def trigger(self, conversation_id: str, intent: str, entities: dict[str, str] | None = None) -> None:
        """Run the assistant as if the user had expressed `intent`, replying on the latest channel."""
        await self._call("POST", self._url(conversation_id, "trigger_intent"),
                         self._params(include_events="NONE", output_channel="latest"),
                         {"name": intent, "entities": entities or {}})
