"""The security checks of scripts/bench_prod.py: the topology as seen from outside.

Through nginx: Rasa's HTTP API refuses requests without a (right) token, the action servers
are not reachable (nginx does not route to them publicly; their loopback listener wants the
secret), the console's API refuses requests without a session; from this machine's other
addresses nothing but nginx's public port answers; `ss -ltnp` lists what the topology's
processes listen on.
"""

from __future__ import annotations

import re
import socket
import subprocess
from typing import Any

import requests

from production.bench_checks import family, process_tree, processes
from production.cluster import Cluster


def _status_of(method: str, url: str, **options: Any) -> str:
    try:
        return str(requests.request(method, url, timeout=10, allow_redirects=False, **options).status_code)
    except requests.RequestException as error:
        return type(error).__name__


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def outside_addresses() -> list[str]:
    """This machine's IPv4 addresses beyond loopback."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    return [m for m in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", out) if not m.startswith("127.")]


def security(base_url: str, cluster: Cluster, token: str) -> list[dict[str, str]]:
    """Each check: what was tried, what came back, what should, and whether it did."""
    checks: list[dict[str, str]] = []

    def check(what: str, got: str, expected: set[str]) -> None:
        checks.append({"check": what, "got": got, "expected": "/".join(sorted(expected)),
                       "pass": "yes" if got in expected else "NO"})

    api = {"GET /status": ("GET", "/status"), "GET /version": ("GET", "/version"),
           "GET /domain": ("GET", "/domain"),
           "GET /conversations/x/tracker": ("GET", "/conversations/bench-sec/tracker"),
           "POST /conversations/x/tracker/events": ("POST", "/conversations/bench-sec/tracker/events"),
           "POST /conversations/x/trigger_intent": ("POST", "/conversations/bench-sec/trigger_intent"),
           "POST /model/parse": ("POST", "/model/parse"), "PUT /model": ("PUT", "/model"),
           "DELETE /model": ("DELETE", "/model"), "POST /model/train": ("POST", "/model/train")}
    for what, (method, path) in api.items():
        check(f"Rasa API, no token: {what}", _status_of(method, base_url + path, json={}), {"401"})
    check("Rasa API, wrong token: GET /status", _status_of("GET", f"{base_url}/status?token=wrong"), {"401"})
    check("Rasa API, Authorization: Bearer junk", _status_of(
        "GET", f"{base_url}/conversations/bench-sec/tracker", headers={"Authorization": "Bearer junk"}), {"401"})
    check("Rasa API, path tricks: //conversations/x/tracker",
          _status_of("GET", f"{base_url}//conversations/bench-sec/tracker"), {"401", "404"})
    check("Rasa API, path tricks: /webhooks/../status",
          _status_of("GET", f"{base_url}/webhooks/%2e%2e/status"), {"401", "404", "400"})
    check("Rasa API, right token: GET /status", _status_of("GET", f"{base_url}/status?token={token}"), {"200"})
    rest = f"{base_url}/webhooks/rest/webhook"
    check("REST webhook, no token (production's is for the district's systems)",
          _status_of("POST", rest, json={"sender": "bench-sec", "message": "你好"}), {"401"})
    check("REST webhook, wrong token", _status_of("POST", rest, json={"sender": "bench-sec", "message": "你好"},
                                                  headers={"Authorization": "Bearer wrong"}), {"401"})
    check("REST webhook, the topology's token", _status_of(
        "POST", rest, json={"sender": "bench-sec", "message": "你好"},
        headers={"Authorization": f"Bearer {cluster.rest_token()}"}), {"200"})
    check("action server via nginx: POST /webhook (the console's login redirect)",
          _status_of("POST", f"{base_url}/webhook", json={"next_action": "action_answer_topic"}),
          {"302", "401", "404", "405"})
    internal = f"http://127.0.0.1:{cluster.ports.internal}"
    check("action server, loopback listener, no secret: POST /webhook",
          _status_of("POST", f"{internal}/webhook", json={"next_action": "action_answer_topic"}), {"401"})
    for path, method in (("/api/cases", "GET"), ("/api/me", "GET"), ("/api/cases/1", "GET"),
                         ("/api/cases/1/reply", "POST"), ("/api/cases/1/resolve", "POST")):
        check(f"console API, no session: {method} {path}", _status_of(method, base_url + path, json={}), {"401", "403"})
    check("console API, forged session cookie: GET /api/cases",
          _status_of("GET", f"{base_url}/api/cases", cookies={"session": "forged", "zhuqi_session": "forged"}),
          {"401", "403"})
    ports = {"public (nginx)": cluster.ports.public, "internal (nginx)": cluster.ports.internal,
             "postgres": cluster.ports.postgres, "redis": cluster.ports.redis, "console": cluster.ports.console,
             **{f"rasa :{p}": p for p in cluster.ports.rasa(2)}, **{f"actions :{p}": p for p in cluster.ports.actions(2)}}
    for address in outside_addresses():
        for name, port in ports.items():
            expected = {"open"} if port == cluster.ports.public else {"refused"}
            check(f"from {address}: {name} :{port}", "open" if _reachable(address, port) else "refused", expected)
    return checks


def listeners(cluster: Cluster) -> list[dict[str, str]]:
    """`ss -ltnp` rows of the topology's processes: address, port, process; beyond_loopback."""
    tree = process_tree()
    ours = {p: name for name, pid in processes(cluster).items() for p in family(pid, tree)}
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        local = parts[3]
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        name = next((ours[p] for p in pids if p in ours), None)
        if name:
            address, port = local.rsplit(":", 1)
            rows.append({"process": name, "address": address, "port": port,
                         "beyond_loopback": "yes" if not address.startswith("127.") and address != "[::1]" else "no"})
    return sorted(rows, key=lambda r: int(r["port"]))
