"""The client a message comes from, as the channels stamp it for the per-client case quota:
the server's view of the address (nginx's X-Real-IP from loopback), never what a client claims."""

from __future__ import annotations

import asyncio

import requests

from channels import clients
from tests.e2e.servers import TOKEN, Servers
from tests.e2e.test_webchat import converse


def stamped_clients(servers: Servers, sender: str) -> list[str | None]:
    tracker = requests.get(f"{servers.url}/conversations/{sender}/tracker", params={"token": TOKEN}, timeout=10)
    tracker.raise_for_status()
    return [(e.get("metadata") or {}).get(clients.CLIENT_KEY) for e in tracker.json()["events"] if e["event"] == "user"]


def test_rest_stamps_the_address_it_saw_over_a_forged_one(servers: Servers) -> None:
    reply = requests.post(f"{servers.url}/webhooks/rest/webhook", headers={"X-Real-IP": "203.0.113.7"},
                          json={"sender": "client-rest-1", "message": "开公司要多久",
                                "metadata": {clients.CLIENT_KEY: "ip:forged"}}, timeout=30)
    assert reply.status_code == 200
    assert stamped_clients(servers, "client-rest-1") == [clients.client_id("203.0.113.7")]


def test_socketio_stamps_the_address_of_the_socket(servers: Servers) -> None:
    session, events = asyncio.run(converse(servers.url, ["开公司要多久"], headers={"X-Real-IP": "203.0.113.8"}))
    assert events and stamped_clients(servers, session) == [clients.client_id("203.0.113.8")]


def test_with_a_rest_token_the_webhook_answers_only_who_carries_it(tmp_path) -> None:
    from tests.e2e.servers import running

    with running(tmp_path, {"REST_TOKEN": "district-systems-token"}) as servers:
        url = f"{servers.url}/webhooks/rest/webhook"
        body = {"sender": "token-1", "message": "开公司要多久"}
        assert requests.post(url, json=body, timeout=30).status_code == 401
        assert requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=30).status_code == 401
        answered = requests.post(url, json=body, headers={"Authorization": "Bearer district-systems-token"},
                                 timeout=30)
        assert answered.status_code == 200 and answered.json()
        assert servers.user_turns("token-1") == ["开公司要多久"]  # the refused ones made no turn
