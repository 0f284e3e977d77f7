"""The 差评 follow-up over the console's API: who may record 回访核实 / 整改 / 反馈, the 反馈 sent to
the business through the reply's own path (delivered, refused by WeChat, not pushable on REST,
Rasa hanging), and no solution before it.

A real console process and the stand-in for Rasa's API (tests/console/test_api.py's fixture).
"""

from __future__ import annotations

import time

import pytest
import requests

from console.server import NO_FEEDBACK, PHONE_FEEDBACK
from tests.console.rasa_standin import RasaStandIn
from tests.console.test_api import Console, console, posted  # noqa: F401 - console is a fixture

pytestmark = pytest.mark.servers


def bad_rating_case(console: Console, conversation: str, channel: str = "socketio", department: str = "scjg") -> int:
    """A case opened for a 差评, as actions/rating.py opens it after 「非常不满意」."""
    RasaStandIn.trackers[conversation] = [
        {"event": "user", "text": "营业执照办了三天还没好", "timestamp": time.time() - 120},
        {"event": "user", "text": "/rate_case", "timestamp": time.time() - 60},
    ]
    case, _ = console.cases.open(conversation, channel, "bad_rating", department, "company_opening",
                                 "13812345678", "重庆某某餐饮有限公司", "办理太慢")
    return case.id


def follow_up(console: Console, session, case_id: int, step: str, text: str):
    return console.post(session, f"/api/cases/{case_id}/followup", {"step": step, "text": text})


def steps(console: Console, session, case_id: int) -> dict[str, dict]:
    detail = session.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    return {s["step"]: s for s in detail["followup"]}


def test_the_claimer_records_each_step_and_the_feedback_reaches_the_business(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-flow-1")
    zhang, wang, boss, li = (console.login(name) for name in ("zhang", "wang", "boss", "li"))
    detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    assert [(s["step"], s["label"], s["done"], s["at"]) for s in detail["followup"]] == [
        ("verify", "回访核实", False, None), ("rectify", "整改", False, None), ("feedback", "反馈", False, None)]
    assert detail["permissions"]["followup"] is False  # not claimed yet
    assert follow_up(console, zhang, case_id, "verify", "已回访").status_code == 403
    assert console.post(zhang, f"/api/cases/{case_id}/claim").status_code == 200
    assert zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()["permissions"]["followup"] is True
    for other in (wang, boss):  # a colleague, a supervisor: the claimer's work
        assert follow_up(console, other, case_id, "verify", "我来回访").status_code == 403
    assert follow_up(console, li, case_id, "verify", "别的部门").status_code == 403

    calls = len(posted("fu-flow-1"))
    verified = follow_up(console, zhang, case_id, "verify", "电话回访：窗口要求重复提交材料")
    assert verified.status_code == 200 and verified.json()["recorded"] is True
    assert follow_up(console, zhang, case_id, "rectify", "窗口改为一次性告知").json()["recorded"] is True
    assert len(posted("fu-flow-1")) == calls  # 回访核实 and 整改 are the staff's record: nothing sent
    shown = steps(console, zhang, case_id)
    assert shown["verify"]["done"] and shown["verify"]["note"] == "电话回访：窗口要求重复提交材料"
    assert shown["verify"]["actor_name"] == "张三" and shown["verify"]["at"] > time.time() - 60
    assert not shown["feedback"]["done"]

    refused = console.post(zhang, f"/api/cases/{case_id}/resolve")
    assert refused.status_code == 409 and refused.json()["error"] == NO_FEEDBACK
    assert len(posted("fu-flow-1")) == calls  # refused before the bot was resumed
    assert console.cases.get(case_id).status == "claimed"

    sent = follow_up(console, zhang, case_id, "feedback", "您反映的问题已核实并整改，欢迎再来办理。")
    assert sent.json() == {**sent.json(), "recorded": True, "delivered": True, "message": "已送达用户。"}
    query, events = posted("fu-flow-1")[-1]
    assert query["execute_side_effects"] == ["true"] and query["output_channel"] == ["latest"]
    assert [(e["event"], e["text"]) for e in events] == [("bot", "您反映的问题已核实并整改，欢迎再来办理。")]
    assert events[0]["metadata"] == {"staff": {"username": "zhang", "name": "张三", "department": "区市场监管局"}}
    assert len(posted("fu-flow-1")) == calls + 1  # one reply message
    assert [s["done"] for s in sent.json()["followup"]] == [True, True, True]

    detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    trail = [(e["action"], e["label"]) for e in detail["events"]]
    assert trail[3:] == [("followup_verify", "差评跟进：回访核实"), ("followup_rectify", "差评跟进：整改"),
                         ("replied", "回复已送达"), ("followup_feedback", "差评跟进：反馈（已回复企业）")]
    assert [action for action, _ in trail[:3]] == ["opened", "claimed", "replied"]  # the claim's greeting
    assert detail["conversation"]["messages"][-1]["text"] == "您反映的问题已核实并整改，欢迎再来办理。"
    resolved = console.post(zhang, f"/api/cases/{case_id}/resolve")
    assert resolved.status_code == 200 and resolved.json()["case"]["outcome"] == "solved"
    assert follow_up(console, zhang, case_id, "rectify", "办结后").status_code == 403


def test_a_step_recorded_again_shows_its_latest_record(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-again-1")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    follow_up(console, zhang, case_id, "verify", "第一次回访：未接电话")
    follow_up(console, zhang, case_id, "verify", "第二次回访：已核实")
    shown = steps(console, zhang, case_id)["verify"]
    assert (shown["note"], shown["times"]) == ("第二次回访：已核实", 2)
    assert [e.detail for e in console.cases.events(case_id, "followup_verify")] == [
        "第一次回访：未接电话", "第二次回访：已核实"]  # both rows kept


def test_follow_up_changes_must_be_json_from_the_console_itself(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-csrf-1")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    url = f"{console.url}/api/cases/{case_id}/followup"
    form = zhang.post(url, data={"step": "verify", "text": "x"}, timeout=10)
    foreign = zhang.post(url, json={"step": "verify", "text": "x"}, timeout=10,
                         headers={"Origin": "https://evil.example"})
    anonymous = console.post(requests.Session(), f"/api/cases/{case_id}/followup", {"step": "verify", "text": "x"})
    assert (form.status_code, foreign.status_code, anonymous.status_code) == (403, 403, 401)
    assert console.cases.followup(case_id)["verify"] is None


def test_other_cases_unknown_steps_and_empty_notes_are_refused(console: Console) -> None:
    other = console.open_case("fu-other-1")  # user_request: no follow-up
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{other}/claim")
    detail = zhang.get(f"{console.url}/api/cases/{other}", timeout=10).json()
    assert detail["followup"] is None and detail["permissions"]["followup"] is False
    assert follow_up(console, zhang, other, "verify", "核实").status_code == 403
    assert console.post(zhang, f"/api/cases/{other}/resolve").status_code == 200  # unchanged for other reasons

    case_id = bad_rating_case(console, "fu-bad-1")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    for step, text in (("call", "核实"), ("", "核实"), ("verify", "  "), ("verify", "长" * 2001)):
        assert follow_up(console, zhang, case_id, step, text).status_code == 400, (step, text)
    assert console.cases.followup(case_id) == {"verify": None, "rectify": None, "feedback": None}
    assert len(posted("fu-bad-1")) == 1  # the claim's greeting only


def test_a_feedback_wechat_refuses_is_not_recorded(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-wx-1", channel="wechat")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    RasaStandIn.refuse["fu-wx-1"] = 45015
    sent = follow_up(console, zhang, case_id, "feedback", "已整改").json()
    assert (sent["recorded"], sent["delivered"]) == (False, False)
    assert "48 小时" in sent["message"] and "13812345678" in sent["message"]
    assert console.cases.followup(case_id)["feedback"] is None
    assert [e.action for e in console.cases.events(case_id)][-1] == "reply_failed"
    assert console.cases.get(case_id).unreachable_at is not None  # as the reply path marks it
    assert console.post(zhang, f"/api/cases/{case_id}/resolve").json()["error"] == NO_FEEDBACK
    del RasaStandIn.refuse["fu-wx-1"]  # the user wrote again: the window is open
    assert follow_up(console, zhang, case_id, "feedback", "已整改").json()["recorded"] is True
    assert console.cases.get(case_id).unreachable_at is None


def test_a_rest_user_gets_no_feedback_so_none_is_recorded(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-rest-1", channel="rest")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    sent = follow_up(console, zhang, case_id, "feedback", "已整改").json()
    assert (sent["recorded"], sent["delivered"]) == (False, False) and "不能主动推送" in sent["message"]
    query, events = posted("fu-rest-1")[-1]
    assert "execute_side_effects" not in query and events[-1]["text"] == "已整改"  # in the record only
    assert console.cases.followup(case_id)["feedback"] is None
    assert [e.action for e in console.cases.events(case_id)][-1] == "reply_recorded"


def test_a_feedback_given_by_phone_is_recorded_as_such_and_closes_the_case(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-phone-1", channel="rest")  # no way to push a reply
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    before = len(posted("fu-phone-1"))
    sent = console.post(zhang, f"/api/cases/{case_id}/followup",
                        {"step": "feedback", "text": "已电话告知整改结果", "via": "phone"}).json()
    assert sent["recorded"] is True and sent["delivered"] is False
    assert len(posted("fu-phone-1")) == before  # nothing went to the conversation
    assert console.cases.followup(case_id)["feedback"].note == PHONE_FEEDBACK + "已电话告知整改结果"
    assert steps(console, zhang, case_id)["feedback"]["done"]
    assert console.post(zhang, f"/api/cases/{case_id}/resolve").status_code == 200


def test_a_hanging_assistant_records_no_feedback(console: Console) -> None:
    case_id = bad_rating_case(console, "fu-hang-1")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    RasaStandIn.hang.add("fu-hang-1")
    try:
        stuck = follow_up(console, zhang, case_id, "feedback", "已整改")
    finally:
        RasaStandIn.hang.discard("fu-hang-1")
    assert stuck.status_code == 502 and "智能助手" in stuck.json()["error"]
    assert console.cases.followup(case_id)["feedback"] is None
