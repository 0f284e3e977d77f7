"""The console's database calls do not block its event loop (console/server.py `off_loop`).

The console app served in process on a free port, on a fresh SQLite database. One database
call is made to hang (as a connection does while PostgreSQL restarts) until the test lets it
go; meanwhile the health check and another staff member's API call must be answered. On an
event loop blocked by the hanging call they could only be answered after it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sanic import Sanic

from cases.repository import CaseRepository
from console.accounts import Accounts
from console.insight_views import Insight
from console.rasa_client import RasaClient
from console.server import COOKIE, Console, create_app
from tests.e2e.servers import free_port

PASSWORD = "correct horse 1"
HANG_SECONDS = 3.0  # the longest the hanging call waits for the test (on a blocked loop: all of it)


class Hang:
    """Makes the first call of a method wait until released; the later calls run as usual."""

    def __init__(self, owner: Any, method: str) -> None:
        self.real = getattr(owner, method)
        self.entered, self.release = threading.Event(), threading.Event()
        self.released_by_test: list[bool] = []
        setattr(owner, method, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.entered.is_set():
            self.entered.set()
            self.released_by_test.append(self.release.wait(HANG_SECONDS))
        return self.real(*args, **kwargs)


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Console, str, Insight]:
    """The console's state on a fresh database, a specialist's session token, and the insight part."""
    monkeypatch.setattr(Sanic, "test_mode", True)  # one app of this name per test
    db_url = f"sqlite:///{tmp_path / 'cases.db'}"
    accounts = Accounts(db_url)
    accounts.add("zhang", PASSWORD, "specialist", "scjg", "张三")
    _, token = accounts.login("zhang", PASSWORD)
    cases = CaseRepository(db_url)
    cases.open("web-1", "socketio", "user_request", "scjg", "company_opening", "", "", "想问开公司")
    insight = Insight.from_environ({"DATABASE_URL": db_url})
    return Console(cases, accounts, RasaClient(f"http://127.0.0.1:{free_port()}", None, 1.0)), token, insight


async def answered_in_order(console: Console, token: str, insight: Insight, hang: Hang) -> list[str]:
    """Start GET /api/cases (it reaches the hanging call), then ask /healthz and /api/me;
    release the hanging call only after both were answered. The paths in the order answered."""
    app = create_app(console, "zhuqi_console_off_loop", insight=insight)
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)  # listening
    await server.startup()
    answered: list[str] = []
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers={"Cookie": f"{COOKIE}={token}"},
                                         timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def get(path: str) -> None:
                async with http.get(path) as answer:
                    assert answer.status == 200, await answer.text()
                    await answer.read()
                answered.append(path)

            slow = asyncio.create_task(get("/api/cases"))
            for _ in range(500):  # until the slow request reaches the hanging call
                if hang.entered.is_set():
                    break
                await asyncio.sleep(0.01)
            assert hang.entered.is_set()
            await get("/healthz")
            await get("/api/me")
            hang.release.set()
            await slow
    finally:
        hang.release.set()
        server.close()
        await server.wait_closed()
    return answered


@pytest.mark.parametrize("owner, method", [
    ("cases", "queue"),  # a repository read of the queue
    ("accounts", "session"),  # the session check every request but the public ones makes
])
def test_a_hanging_database_call_holds_up_only_its_own_request(console: tuple[Console, str, Insight], owner: str,
                                                               method: str) -> None:
    state, token, insight = console
    hang = Hang(getattr(state, owner), method)
    answered = asyncio.run(answered_in_order(state, token, insight, hang))
    assert answered == ["/healthz", "/api/me", "/api/cases"]
    assert hang.released_by_test == [True]  # released by the test, not by running out of time
