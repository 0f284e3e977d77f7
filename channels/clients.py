"""Who a message comes from, beyond its conversation: the client, for quotas per client.

A flooding client opens a new conversation for each burst (a new widget session, a new REST
sender), so a limit per conversation does not hold it; the handoff's quota of open cases
(actions/handoff.py) counts per client instead. A client is the address a message came from —
nginx's X-Real-IP when nginx on this machine passed it on (a header from anyone else is not
believed), the peer's own address otherwise — as an HMAC under the widget session secret, so
neither the tracker nor the cases table holds an address. WeChat and WeCom users are their
OpenID: one person each, however many messages they send.

The channels write it into the message's metadata under CLIENT_KEY, over whatever the client
sent there; actions/handoff.py reads it back with `of_message`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from channels import session_ids

CLIENT_KEY = "zhuqi_client"
LOOPBACK = ("127.0.0.1", "::1")


def address(peer: str | None, real_ip: str | None) -> str:
    """The client's address: nginx's X-Real-IP from a loopback peer, else the peer."""
    if peer in LOOPBACK and real_ip and real_ip.strip():
        return real_ip.strip()[:64]
    return peer or "unknown"


def client_id(where: str) -> str:
    """An address as the stores keep it: a keyed hash, not the address."""
    return "ip:" + hmac.new(session_ids.secret(), where.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


def stamped(metadata: dict[str, Any] | None, client: str) -> dict[str, Any]:
    """The message's metadata with the client the server saw (never the one a client claims)."""
    return {**(metadata or {}), CLIENT_KEY: client}


def of_request(request: Any) -> str:
    """The client of a Sanic request (REST, and the socket.io handshake's)."""
    peer = request.conn_info.client_ip if getattr(request, "conn_info", None) else None
    return client_id(address(peer, request.headers.get("x-real-ip")))


def of_message(metadata: dict[str, Any] | None, sender: str) -> str:
    """The client a message's metadata names, else its conversation (WeChat: the OpenID)."""
    client = (metadata or {}).get(CLIENT_KEY)
    return client if isinstance(client, str) and client else sender
