"""Start the assistant as `make run` does (scripts/run.sh) on free local ports, for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import MODEL, ROOT

TOKEN = "e2e-secret-token"
ACTIONS_SECRET = "e2e-actions-secret-0123456789"  # what Rasa shows the action server (actions/secret.py)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    """A running assistant: its URLs and tracker database."""

    def __init__(self, url: str, tracker_db: Path, widget_url: str = "", channels_db: str = "",
                 console_url: str = "", actions_url: str = "") -> None:
        self.url = url
        self.actions_url = actions_url  # the action server, on 127.0.0.1
        self.tracker_db = tracker_db
        self.widget_url = widget_url
        self.channels_db = channels_db  # DATABASE_URL: the channels' store and the cases
        self.console_url = console_url

    def say(self, sender: str, message: str) -> list[dict]:
        reply = requests.post(f"{self.url}/webhooks/rest/webhook",
                              json={"sender": sender, "message": message}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def user_turns(self, sender: str) -> list[str]:
        """The user messages the tracker holds for a conversation (via the HTTP API)."""
        tracker = requests.get(f"{self.url}/conversations/{sender}/tracker", params={"token": TOKEN}, timeout=10)
        tracker.raise_for_status()
        return [e.get("text") for e in tracker.json()["events"] if e["event"] == "user"]


@contextlib.contextmanager
def running(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Servers]:
    """scripts/run.sh with its own ports, tracker database and extra environment."""
    if not MODEL.exists():
        pytest.fail(f"no model at {MODEL}: run make train")
    rasa_port, actions_port, widget_port, console_port = free_port(), free_port(), free_port(), free_port()
    channels_db = f"sqlite:///{tmp / 'channels.db'}"
    # the tracker store only: run.sh adds the action endpoint from ACTIONS_PORT and ACTIONS_SECRET
    endpoints, tracker_db = tmp / "endpoints.yml", tmp / "tracker.db"
    endpoints.write_text(f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tracker_db}"\n', encoding="utf-8")
    full_env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent), "RASA_PORT": str(rasa_port),
                "ACTIONS_PORT": str(actions_port), "ACTIONS_SECRET": ACTIONS_SECRET,
                "ENDPOINTS": str(endpoints), "RASA_AUTH_TOKEN": TOKEN,
                "WIDGET_PORT": str(widget_port), "CONSOLE_PORT": str(console_port), "DATABASE_URL": channels_db,
                **(env or {})}
    log_path = tmp / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=full_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{rasa_port}"
        try:
            console_url = f"http://127.0.0.1:{console_port}"
            _wait_until_up(url, [f"http://127.0.0.1:{actions_port}/health", f"{console_url}/healthz"], process,
                           log_path)
            yield Servers(url, tracker_db, f"http://127.0.0.1:{widget_port}", full_env["DATABASE_URL"], console_url,
                          f"http://127.0.0.1:{actions_port}")
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _wait_until_up(url: str, health: list[str], process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"run.sh exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if (requests.get(f"{url}/status", params={"token": TOKEN}, timeout=2).ok
                    and all(requests.get(other, timeout=2).ok for other in health)):
                return
        except requests.RequestException:  # refused or slow while starting
            pass
        time.sleep(1)
    pytest.fail(f"servers did not start:\n{log.read_text()[-3000:]}")
