"""Handoff end to end on the real assistant: REST user → case → console → back to the bot,
and a restart that keeps the open case and the pause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from cases.repository import CaseRepository
from console.accounts import Accounts
from tests.e2e.servers import TOKEN, Servers, running

pytestmark = [pytest.mark.model, pytest.mark.servers]
PASSWORD = "handoff-e2e-pass"


def custom(replies: list[dict]) -> list[dict]:
    return [r["custom"] for r in replies if "custom" in r]


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def hand_over(servers: Servers, sender: str) -> dict:
    """Ask for a person and answer the three questions; the handoff payload."""
    asked = servers.say(sender, "转人工")
    assert "手机号" in texts(asked), asked
    assert "企业" in texts(servers.say(sender, "138 1234 5678"))
    assert "一句话" in texts(servers.say(sender, "重庆某某火锅有限公司"))
    opened = servers.say(sender, "想在解放碑开火锅店，<b>不知道</b>先办什么证")
    payload = custom(opened)
    assert len(payload) == 1 and payload[0]["type"] == "handoff", opened
    assert "案件 #" in texts(opened) and "63765360" in texts(opened)
    return payload[0]


def console_session(servers: Servers, username: str, department: str) -> requests.Session:
    Accounts(servers.channels_db).add(username, PASSWORD, "specialist", department, username)
    session = requests.Session()
    answer = session.post(f"{servers.console_url}/api/login", json={"username": username, "password": PASSWORD},
                          timeout=10)
    assert answer.status_code == 200, answer.text
    return session


def test_a_rest_user_is_handed_over_and_comes_back_to_the_bot(servers: Servers) -> None:
    payload = hand_over(servers, "handoff-rest-1")
    case = CaseRepository(servers.channels_db).get(payload["case_id"])
    assert (case.status, case.channel, case.reason) == ("waiting", "rest", "user_request")
    assert (case.contact, case.company) == ("13812345678", "重庆某某火锅有限公司")
    assert case.department == payload["department"] == "fagai"  # no topic: the 帮帮团's own office
    assert servers.say("handoff-rest-1", "在吗？公司注册要多久") == []  # paused: the bot stays silent

    staff = console_session(servers, "rest_fagai", "fagai")
    detail = staff.get(f"{servers.console_url}/api/cases/{case.id}", timeout=10).json()
    assert detail["conversation"]["messages"][-1] == {**detail["conversation"]["messages"][-1], "who": "user",
                                                      "text": "在吗？公司注册要多久"}
    assert staff.post(f"{servers.console_url}/api/cases/{case.id}/claim", json={}, timeout=30).status_code == 200
    reply = staff.post(f"{servers.console_url}/api/cases/{case.id}/reply", json={"text": "先办营业执照。"},
                       timeout=30).json()
    assert reply["delivered"] is False and "不能主动推送" in reply["message"]  # REST: recorded only
    assert staff.post(f"{servers.console_url}/api/cases/{case.id}/resolve", json={}, timeout=30).status_code == 200

    tracker = requests.get(f"{servers.url}/conversations/handoff-rest-1/tracker", params={"token": TOKEN},
                           timeout=10).json()
    asked = [e for e in tracker["events"] if e["event"] == "bot"][-1]  # the bot's own, after the resolve
    assert "请为这次人工服务评价" in asked["text"] and len(asked["data"]["buttons"]) == 5
    assert f'"case_id": "{case.id}"' in asked["data"]["buttons"][1]["payload"]
    answer = servers.say("handoff-rest-1", "公司注册要多久")  # the bot is back
    assert any(c.get("type") == "service_card" and c["department"]["name"] == "区市场监管局" for c in custom(answer))
    rated = servers.say("handoff-rest-1", "/rate_service" + json.dumps({"rating_level": "满意",
                                                                        "case_id": str(case.id)}))
    assert "谢谢" in texts(rated)
    assert CaseRepository(servers.channels_db).get(case.id).rating == "满意"


def test_a_dispute_is_answered_then_handed_to_its_lead_department(servers: Servers) -> None:
    replies = servers.say("handoff-dispute-1", "我们跟税务局对补税金额有争议，谁来调解")
    assert any(c.get("type") == "service_card" for c in custom(replies))
    assert "转人工" in texts(replies) and "区税务局" in texts(replies)
    assert "手机号" in texts(replies)  # the form asks straight away
    assert "已取消" in texts(servers.say("handoff-dispute-1", "取消"))
    assert CaseRepository(servers.channels_db).open_case_of("handoff-dispute-1") is None
    assert custom(servers.say("handoff-dispute-1", "开公司要多久"))  # not paused


def test_a_complaint_keeps_the_words_as_the_problem(servers: Servers) -> None:
    said = "办个执照跑了五趟都没办成，我要投诉你们"
    assert "跟进" in texts(servers.say("handoff-complaint-1", said))
    servers.say("handoff-complaint-1", "跳过")
    opened = servers.say("handoff-complaint-1", "跳过")
    case = CaseRepository(servers.channels_db).get(custom(opened)[0]["case_id"])
    assert (case.reason, case.problem, case.contact) == ("complaint", said, "未提供")


def test_an_open_case_survives_a_restart(tmp_path: Path) -> None:
    with running(tmp_path) as first:
        payload = hand_over(first, "restart-1")
    with running(tmp_path) as second:
        case = CaseRepository(second.channels_db).get(payload["case_id"])
        assert case.status == "waiting" and case.company == "重庆某某火锅有限公司"
        assert second.say("restart-1", "还在吗") == []  # still paused after the restart
        staff = console_session(second, "restart_fagai", "fagai")
        queue = staff.get(f"{second.console_url}/api/cases", timeout=10).json()["cases"]
        assert [c["id"] for c in queue] == [case.id]
        detail = staff.get(f"{second.console_url}/api/cases/{case.id}", timeout=10).json()
        said = [m["text"] for m in detail["conversation"]["messages"] if m["who"] == "user"]
        assert said == ["转人工", "138 1234 5678", "重庆某某火锅有限公司", "想在解放碑开火锅店，<b>不知道</b>先办什么证",
                        "还在吗"]


def test_a_user_who_stops_waiting_gets_the_bot_back(servers: Servers) -> None:
    """/restart, the one message a paused conversation takes, closes the case as the user's."""
    payload = hand_over(servers, "handoff-gave-up-1")
    assert servers.say("handoff-gave-up-1", "在吗") == []
    ended = servers.say("handoff-gave-up-1", "/restart")
    assert f"已结束人工服务（案件 #{payload['case_id']}）" in texts(ended)
    assert custom(ended) == [{**payload, "status": "resolved"}]
    case = CaseRepository(servers.channels_db).get(payload["case_id"])
    assert (case.status, case.outcome) == ("resolved", "handed_back")
    assert CaseRepository(servers.channels_db).events(case.id)[-1].actor == "user"
    assert any(c.get("type") == "service_card" for c in custom(servers.say("handoff-gave-up-1", "公司注册要多久")))
