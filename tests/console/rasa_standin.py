"""A local stand-in for Rasa's HTTP API, recording what the console asks of it.

It answers like `rasa run --enable-api`: trackers, appended events, executed actions; for a
conversation listed in `refuse` it fails an append with side effects the way Rasa does when
WeChat refuses a customer-service message (HTTP 500, the channel's error in the message).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


class RasaStandIn(BaseHTTPRequestHandler):
    trackers: dict[str, list[dict[str, Any]]] = {}
    calls: list[tuple[str, str, dict[str, list[str]], Any]] = []
    refuse: dict[str, int] = {}
    hang: set[str] = set()  # conversations whose requests take HANG seconds (Rasa stuck)
    intents = {"handoff_resolved"}  # what trigger_intent accepts, as Rasa's domain would
    HANG = 2.5

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlparse(self.path)
        parts = url.path.split("/")  # '', 'conversations', id, rest...
        return unquote(parts[2]), "/".join(parts[3:]), parse_qs(url.query)

    def do_GET(self) -> None:  # noqa: N802
        conversation, what, query = self._route()
        RasaStandIn.calls.append(("GET", f"{conversation}/{what}", query, None))
        if conversation in RasaStandIn.hang:
            time.sleep(RasaStandIn.HANG)
        self._reply(200, {"sender_id": conversation, "events": RasaStandIn.trackers.get(conversation, [])})

    def do_POST(self) -> None:  # noqa: N802
        conversation, what, query = self._route()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
        RasaStandIn.calls.append(("POST", f"{conversation}/{what}", query, body))
        if conversation in RasaStandIn.hang:
            time.sleep(RasaStandIn.HANG)
        if what == "trigger_intent" and body.get("name") not in RasaStandIn.intents:
            self._reply(404, {"status": "failure", "reason": "NotFound", "message": "no such intent"})
            return
        if what == "tracker/events":
            if query.get("execute_side_effects") == ["true"] and conversation in RasaStandIn.refuse:
                code = RasaStandIn.refuse[conversation]
                self._reply(500, {"status": "failure", "reason": "ConversationError",
                                  "message": f"An unexpected error occurred. Error: {code}: response out of time limit"})
                return
            RasaStandIn.trackers.setdefault(conversation, []).extend(body)
        self._reply(200, {"sender_id": conversation})

    def log_message(self, *args: Any) -> None:
        pass


def start() -> tuple[ThreadingHTTPServer, str]:
    RasaStandIn.trackers, RasaStandIn.calls, RasaStandIn.refuse, RasaStandIn.hang = {}, [], {}, set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), RasaStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"
