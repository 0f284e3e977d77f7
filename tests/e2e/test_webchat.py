"""The widget's socket.io channel: Rasa's protocol, whole cards, origins allow-listed."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
import requests
import socketio

from channels import limits
from channels.webchat import origin_check
from tests.e2e.servers import TOKEN, Servers

pytestmark = [pytest.mark.model, pytest.mark.servers]


async def converse(url: str, messages: list[str], session_id: str | None = None,
                   origin: str | None = None, headers: dict[str, str] | None = None) -> tuple[str, list[dict]]:
    """Speak the standard Rasa socket.io protocol; return the session id and bot events."""
    client = socketio.AsyncClient()
    received: list[dict] = []
    confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
    client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
    client.on("bot_uttered", lambda data: received.append(data))
    headers = {**(headers or {}), **({"Origin": origin} if origin else {})}
    await client.connect(url, socketio_path="/socket.io", transports=["websocket"], headers=headers)
    try:
        await client.emit("session_request", {"session_id": session_id})
        session = await asyncio.wait_for(confirmed, 10)
        for message in messages:
            before = len(received)
            await client.emit("user_uttered", {"message": message, "session_id": session})
            quiet = 0  # tenths of a second since the last event: a first answer may be slow, its card is not
            for _ in range(150):
                count = len(received)
                await asyncio.sleep(0.1)
                if len(received) > before and any("custom" in r or "buttons" in r for r in received[before:]):
                    break
                quiet = 0 if len(received) != count else quiet + 1
                if len(received) > before and quiet > 15:
                    break
    finally:
        await client.disconnect()
    return session, received


def test_a_card_arrives_as_one_bot_uttered_event(servers: Servers) -> None:
    session, events = asyncio.run(converse(servers.url, ["开公司最快多久能拿到执照"]))
    cards = [e["custom"] for e in events if isinstance(e.get("custom"), dict)]
    assert len(cards) == 1 and cards[0]["type"] == "service_card"
    assert cards[0]["department"] == {"id": "scjg", "name": "区市场监管局"} and cards[0]["policies"][0]["item"] == 2
    assert any("区市场监管局" in e.get("text", "") for e in events)
    assert servers.user_turns(session) == ["开公司最快多久能拿到执照"]  # the session id is the conversation


def test_buttons_and_the_same_session_after_a_reconnect(servers: Servers) -> None:
    session, events = asyncio.run(converse(servers.url, ["你好"]))
    buttons = [b for e in events for b in e.get("quick_replies", []) + e.get("buttons", [])]
    assert {"title": "开办企业", "payload": "/company_opening"} in [
        {"title": b["title"], "payload": b["payload"]} for b in buttons]
    same, events = asyncio.run(converse(servers.url, ["/first_loan_renewal"], session_id=session))
    assert same == session and any("区金融办" in e.get("text", "") for e in events)
    assert servers.user_turns(session) == ["你好", "/first_loan_renewal"]


def test_pages_from_unlisted_origins_are_refused(servers: Servers) -> None:
    poll = f"{servers.url}/socket.io/?EIO=4&transport=polling"
    assert requests.get(poll, headers={"Origin": "http://localhost:8080"}, timeout=10).status_code == 200
    assert requests.get(poll, headers={"Origin": "https://evil.example"}, timeout=10).status_code == 400


@pytest.mark.parametrize("setting, origin, allowed", [
    (None, "http://localhost:8080", True), (None, "http://127.0.0.1:3000", True),
    (None, "https://yuzhong.example", False), (None, "http://localhost.evil.example", False),
    ("https://yuzhong.example, https://b.example/", "https://b.example", True),
    ("https://yuzhong.example", "http://localhost:8080", False), ("https://yuzhong.example", None, True),
])
def test_widget_origins(setting, origin, allowed) -> None:
    assert origin_check(setting)(origin) is allowed


def test_a_rating_must_be_of_an_answer_the_conversation_was_shown(servers: Servers) -> None:
    async def rate(joined: str | None, session: str, topic: str, department: str) -> str:
        """A socket that joined conversation `joined` rates an answer of conversation `session`."""
        client = socketio.AsyncClient()
        loop = asyncio.get_running_loop()
        answer, confirmed = loop.create_future(), loop.create_future()
        client.on("rating_saved", lambda data: answer.done() or answer.set_result("saved"))
        client.on("rating_refused", lambda data: answer.done() or answer.set_result("refused"))
        client.on("session_confirm", lambda data: confirmed.done() or confirmed.set_result(data))
        await client.connect(servers.url, socketio_path="/socket.io", transports=["websocket"])
        try:
            if joined:
                await client.emit("session_request", {"session_id": joined})
                await asyncio.wait_for(confirmed, 10)
            await client.emit("rate", {"session_id": session, "level": "非常不满意", "topic": topic,
                                       "department": department, "answer": "…"})
            return await asyncio.wait_for(answer, 10)
        finally:
            await client.disconnect()

    session, _ = asyncio.run(converse(servers.url, ["施工许可多少个工作日"]))
    assert asyncio.run(rate(None, session, "construction_permit", "zhujian")) == "refused"  # joined nothing
    assert asyncio.run(rate("someone-else", session, "construction_permit", "zhujian")) == "refused"
    assert asyncio.run(rate(session, session, "tax", "shuiwu")) == "refused"  # never answered here
    assert asyncio.run(rate(session, session, "construction_permit", "zhujian")) == "saved"
    # a 差评 is followed up: the conversation is handed to the rated answer's department
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tracker = requests.get(f"{servers.url}/conversations/{session}/tracker", params={"token": TOKEN},
                               timeout=10).json()
        if (tracker.get("active_loop") or {}).get("name") == "handoff_form":
            break
        time.sleep(0.5)
    assert (tracker.get("active_loop") or {}).get("name") == "handoff_form", tracker.get("latest_message")
    assert tracker["slots"]["handoff_reason"] == "bad_rating" and tracker["slots"]["handoff_department"] == "zhujian"
    assert "「非常不满意」" in tracker["slots"]["handoff_problem"]


def test_a_message_over_the_limit_gets_a_polite_refusal_and_the_next_is_answered(servers: Servers) -> None:
    started = time.monotonic()
    session, events = asyncio.run(converse(servers.url, ["开公司要多久" * 1667]))  # 10,002 characters
    assert [e.get("text") for e in events] == [limits.TOO_LONG]
    assert time.monotonic() - started < 5  # converse itself waits 1.6 s for more
    _, events = asyncio.run(converse(servers.url, ["注销公司找哪个部门"], session_id=session))
    assert any("区市场监管局" in e.get("text", "") for e in events)
    assert servers.user_turns(session) == ["注销公司找哪个部门"]  # the long one never reached the tracker


def test_control_characters_and_lone_surrogates_are_cleaned(servers: Servers) -> None:
    session, events = asyncio.run(converse(servers.url, ["开公司\0要多久", "开公司\ud800\x1f要多久"]))
    answers = [e["text"] for e in events if "区市场监管局" in e.get("text", "")]
    assert len(answers) == 2
    assert servers.user_turns(session) == ["开公司要多久", "开公司要多久"]


def test_an_oversized_packet_closes_the_connection_unread(servers: Servers) -> None:
    async def flood() -> tuple[str, list[dict], bool]:
        client = socketio.AsyncClient(reconnection=False)
        received: list[dict] = []
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        client.on("bot_uttered", lambda data: received.append(data))
        await client.connect(servers.url, socketio_path="/socket.io", transports=["websocket"])
        await client.emit("session_request", {"session_id": None})
        session = await asyncio.wait_for(confirmed, 10)
        await client.emit("user_uttered", {"message": "开" * 70_000, "session_id": session})  # 210 KB
        for _ in range(50):
            await asyncio.sleep(0.1)
            if not client.connected:
                break
        dropped = not client.connected
        await client.disconnect()
        return session, received, dropped

    session, received, dropped = asyncio.run(flood())
    assert dropped and received == []
    _, events = asyncio.run(converse(servers.url, ["注销公司找哪个部门"], session_id=session))
    assert any("区市场监管局" in e.get("text", "") for e in events)
    assert servers.user_turns(session) == ["注销公司找哪个部门"]


def test_a_socket_speaks_only_in_the_conversation_it_was_confirmed_in(servers: Servers) -> None:
    async def intrude(victim: str) -> list[dict]:
        client = socketio.AsyncClient()
        received: list[dict] = []
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        client.on("bot_uttered", lambda data: received.append(data))
        await client.connect(servers.url, socketio_path="/socket.io", transports=["websocket"])
        try:
            await client.emit("session_request", {"session_id": None})
            await asyncio.wait_for(confirmed, 10)
            await client.emit("user_uttered", {"message": "我要注销公司", "session_id": victim})
            await asyncio.sleep(2)
        finally:
            await client.disconnect()
        return received

    victim, _ = asyncio.run(converse(servers.url, ["你好"]))
    assert asyncio.run(intrude(victim)) == []  # no answer, and nothing said in the victim's conversation
    assert servers.user_turns(victim) == ["你好"]


@pytest.mark.parametrize("asked", ["x" * 129, "bad\x00id", 12345, "", "0123456789abcdef0123456789abcdef",
                                   "0123456789abcdef0123456789abcdef-0123456789abcdef"])
def test_a_session_id_the_server_did_not_issue_gets_a_fresh_one(servers: Servers, asked) -> None:
    from channels import session_ids

    session, received = asyncio.run(converse(servers.url, ["开公司要多久"], session_id=asked))
    assert session != asked and re.fullmatch(r"[0-9a-f]{32}-[0-9a-f]{16}", session)
    assert session_ids.valid(session)  # the servers sign with the same kept secret (var/)
    assert any("区市场监管局" in (r.get("text") or "") for r in received)


def test_a_staff_reply_sent_while_the_widget_was_closed_is_shown_when_it_comes_back(servers: Servers) -> None:
    session, _ = asyncio.run(converse(servers.url, ["你好"]))
    at = time.time()
    staff = {"name": "张三", "department": "区市场监管局"}
    requests.post(f"{servers.url}/conversations/{session}/tracker/events", params={"token": TOKEN},
                  json=[{"event": "bot", "text": "您好，您的问题已记录，明天回复您。", "timestamp": at, "data": {},
                         "metadata": {"staff": staff}}], timeout=10).raise_for_status()  # nobody connected

    async def come_back(seen: float) -> list[dict]:
        client = socketio.AsyncClient()
        received: list[dict] = []
        client.on("bot_uttered", received.append)
        await client.connect(servers.url, socketio_path="/socket.io", transports=["websocket"])
        try:
            await client.emit("session_request", {"session_id": session, "staff_seen": seen})
            await asyncio.sleep(2)
        finally:
            await client.disconnect()
        return received

    missed = asyncio.run(come_back(0))
    assert [m["text"] for m in missed] == ["您好，您的问题已记录，明天回复您。"]
    assert missed[0]["staff"] == {**staff, "at": at}
    assert asyncio.run(come_back(at)) == []  # already shown: not again


def test_a_socket_that_floods_is_told_once_then_dropped(servers: Servers) -> None:
    from channels import flood

    async def flooding() -> tuple[list[dict], bool]:
        client = socketio.AsyncClient(reconnection=False)
        received: list[dict] = []
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        client.on("bot_uttered", received.append)
        await client.connect(servers.url, socketio_path="/socket.io", transports=["websocket"])
        await client.emit("session_request", {"session_id": None})
        session = await asyncio.wait_for(confirmed, 10)
        for n in range(flood.DEFAULT_MESSAGES + flood.DROP_AFTER + 20):
            if not client.connected:
                break
            await client.emit("user_uttered", {"message": f"你好{n}", "session_id": session})
        for _ in range(100):
            if not client.connected:
                break
            await asyncio.sleep(0.1)
        dropped = not client.connected
        if client.connected:
            await client.disconnect()
        return received, dropped

    received, dropped = asyncio.run(flooding())
    assert [r.get("text") for r in received].count(flood.TOO_FAST) == 1 and dropped


async def acknowledged(url: str, session: str | None, messages: list[dict]) -> tuple[str, list[dict], list[dict]]:
    """A fresh socket (a reconnect) joining `session`: each message sent with an ack awaited,
    as widget/widget.js does; returns the session, the acks and what came as bot_uttered."""
    client = socketio.AsyncClient()
    received: list[dict] = []
    confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
    client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
    client.on("bot_uttered", received.append)
    await client.connect(url, socketio_path="/socket.io", transports=["websocket"])
    try:
        await client.emit("session_request", {"session_id": session})
        session = await asyncio.wait_for(confirmed, 10)
        acks = [await client.call("user_uttered", {**m, "session_id": session}, timeout=60) for m in messages]
        await asyncio.sleep(0.5)
    finally:
        await client.disconnect()
    return session, acks, received


def test_a_message_is_acknowledged_once_answered_and_its_turn_carries_its_id(servers: Servers) -> None:
    session, acks, received = asyncio.run(acknowledged(servers.url, None, [
        {"message": "开公司最快多久能拿到执照", "message_id": "e2e-ack-000001"},
        {"message": "x" * (limits.MAX_CHARS + 1), "message_id": "e2e-ack-000002"}]))
    assert acks == [{"message_id": "e2e-ack-000001", "status": "answered"},
                    {"message_id": "e2e-ack-000002", "status": "refused"}]  # too long: told, and not to resend
    assert any("区市场监管局" in (r.get("text") or "") for r in received)
    tracker = requests.get(f"{servers.url}/conversations/{session}/tracker", params={"token": TOKEN}, timeout=10).json()
    assert [e["message_id"] for e in tracker["events"] if e["event"] == "user"] == ["e2e-ack-000001"]


def test_a_message_resent_after_its_turn_gets_that_answer_again_and_no_second_turn(servers: Servers) -> None:
    """The widget resends what no socket acknowledged (its replica died with the answer under
    way): the turn is in the tracker, so the answer is sent again and nothing is processed twice.
    A resent message the tracker never saw is processed."""
    question = {"message": "开公司最快多久能拿到执照", "message_id": "e2e-resend-0001"}
    session, _, first = asyncio.run(acknowledged(servers.url, None, [question]))
    _, acks, again = asyncio.run(acknowledged(servers.url, session, [
        {**question, "resent": True}, {"message": "要带什么材料", "message_id": "e2e-resend-0002", "resent": True}]))
    assert acks == [{"message_id": "e2e-resend-0001", "status": "answered"},
                    {"message_id": "e2e-resend-0002", "status": "answered"}]
    first_texts = [r.get("text") for r in first if r.get("text")]
    assert first_texts and [r.get("text") for r in again if r.get("text")][:len(first_texts)] == first_texts
    assert servers.user_turns(session) == ["开公司最快多久能拿到执照", "要带什么材料"]
