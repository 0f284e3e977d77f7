"""A local stand-in for the WeChat / WeCom API that records what it receives."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator
from urllib.parse import parse_qs, urlparse

import pytest


class StandIn(BaseHTTPRequestHandler):
    """A local stand-in for api.weixin.qq.com recording what it receives."""

    calls: list[tuple[str, dict, dict]] = []
    tokens = iter(())
    send_answers: list[dict] = []

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        StandIn.calls.append((url.path, parse_qs(url.query), {}))
        self._reply({"access_token": next(StandIn.tokens), "expires_in": 7200})

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StandIn.calls.append((url.path, parse_qs(url.query), body))
        self._reply(StandIn.send_answers.pop(0) if StandIn.send_answers else {"errcode": 0})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    """The stand-in's base URL; StandIn.calls lists (path, query, json body) as received."""
    StandIn.calls, StandIn.tokens, StandIn.send_answers = [], iter(["TOKEN-1", "TOKEN-2"]), []
    server = HTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


