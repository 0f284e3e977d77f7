"""actions/server.py: the app runs no action for a forged call, in process (ASGI, no socket)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sanic import Sanic

from actions import secret, server

SECRET = "unit-test-secret-0123456789"
RAN: list[str] = []  # sender ids the probe action ran for


class ActionProbe(Action):
    """Stands in for action_open_case / action_restart: records that it ran."""

    def name(self) -> str:
        return "action_probe_of_the_secret"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        RAN.append(tracker.sender_id)
        return []


def forged_call(sender: str) -> dict[str, Any]:
    """What an attacker posts: an action and a tracker they made up."""
    tracker = {"sender_id": sender, "slots": {}, "latest_message": {}, "events": [], "paused": False,
               "followup_action": None, "active_loop": {}, "latest_action_name": "action_listen"}
    return {"next_action": "action_probe_of_the_secret", "sender_id": sender, "tracker": tracker, "domain": {},
            "version": "3.6.21"}


async def call(app: Sanic, method: str, path: str, body: bytes = b"",
               headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """One request through the app's ASGI interface, after its lifespan startup."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 5055),
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         {"content-type": "application/json", **(headers or {})}.items()]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body_out or b"{}")


async def started(app: Sanic) -> None:
    events = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    done = asyncio.Event()

    async def send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            done.set()

    asyncio.get_running_loop().create_task(app({"type": "lifespan"}, events.get, send))
    await asyncio.wait_for(done.wait(), 10)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Sanic:
    monkeypatch.setattr(Sanic, "test_mode", True)  # one "rasa_sdk" app per test
    RAN.clear()
    return server.create_app(SECRET, sys.modules[__name__])


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-secret-0123456789"}, {"Authorization": SECRET},
    {"X-Actions-Secret": SECRET},
])
def test_a_forged_call_is_refused_and_runs_nothing(app: Sanic, headers: dict[str, str]) -> None:
    async def attack() -> tuple[int, dict]:
        await started(app)
        return await call(app, "POST", "/webhook", json.dumps(forged_call("victim")).encode(), headers)

    status, body = asyncio.run(attack())
    assert (status, body) == (401, {"error": "unauthorized"}) and RAN == []


def test_rasas_call_with_the_secret_runs_the_action_and_health_stays_open(app: Sanic) -> None:
    async def calls() -> list[tuple[int, dict]]:
        await started(app)
        return [await call(app, "POST", "/webhook", json.dumps(forged_call("user-1")).encode(),
                           secret.headers(SECRET)),
                await call(app, "GET", "/health")]

    (status, body), health = asyncio.run(calls())
    assert status == 200 and body["events"] == [] and RAN == ["user-1"]
    assert health == (200, {"status": "ok"})


@pytest.mark.parametrize("value", ["", "too-short"])
def test_no_app_without_a_usable_secret(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)
    with pytest.raises(ValueError):
        server.create_app(value, sys.modules[__name__])


def test_the_launcher_listens_on_loopback_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m actions.server` with no --host: 127.0.0.1 (compose passes 0.0.0.0 itself)."""
    assert server.argument_parser().parse_args([]).host == "127.0.0.1"
    assert server.argument_parser().parse_args([]).actions == "actions"
    monkeypatch.delenv(secret.SECRET_ENV, raising=False)
    with pytest.raises(SystemExit, match="ACTIONS_SECRET is not set"):
        server.main(["--port", "1"])
