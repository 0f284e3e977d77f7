"""channels/webchat.py's output: what a turn sends when the channels' database hiccups."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels import webchat


class Emitter:
    """The socket.io server as the output sees it: what it emitted, to whom."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, str]] = []

    async def emit(self, event: str, data: Any, room: str) -> None:
        self.emitted.append((event, data, room))


class DownStore:
    def answered(self, *args: Any) -> None:
        raise ConnectionError("the database system is shutting down")


def test_a_card_reaches_the_user_while_the_database_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording that an answer was shown (for its rating) failed during a PostgreSQL restart and
    took the whole turn with it: no card, no tracker save (bench_prod fault b). The card goes out."""
    monkeypatch.setattr(webchat, "store_for", lambda: DownStore())
    sio = Emitter()
    output = webchat.WebChatOutput(sio, "bot_uttered")  # type: ignore[arg-type]
    card = {"type": "service_card", "topic": "company_opening", "department": {"id": "scjg"}}
    asyncio.run(output.send_custom_json("sid-1", card))
    assert sio.emitted == [("bot_uttered", {"custom": card}, "sid-1")]
