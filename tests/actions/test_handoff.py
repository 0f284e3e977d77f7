"""Handing a conversation to a specialist: the form, the case, the pause, and the 好差评 rating."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, FollowupAction, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clarify import ActionClarifyTopic
from actions.handoff import (DEFAULT_CASES_PER_CLIENT, FORM_SLOTS, HANDOFF_SLOTS, NOT_GIVEN, TEAM_CHANNEL,
                             ActionOpenCase,
                             ActionStartHandoff, ValidateHandoffForm)
from actions.rating import ActionAskServiceRating, ActionRateService
from actions.session import ActionSessionStart
from actions.topics import ActionAnswerTopic
from cases.repository import RATING_LEVELS, CaseRepository
from channels import clients

RESET = [SlotSet(slot, None) for slot in HANDOFF_SLOTS]
OFFICE_PHONE = "63765360"  # the 区营商办 contact the documents publish


def run(action, dispatcher, tracker):
    return asyncio.run(action.run(dispatcher, tracker, {}))


def user_event(text: str, intent: str = "human_handoff", channel: str | None = "socketio",
               entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"event": "user", "text": text, "input_channel": channel,
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or []}}


def make_tracker(sender: str = "u1", slots: dict[str, Any] | None = None, intent: str | None = "human_handoff",
                 text: str = "转人工", entities: list[dict[str, Any]] | None = None,
                 events: list[dict[str, Any]] | None = None, channel: str | None = "socketio") -> Tracker:
    """A tracker whose last user event is the latest message (unless events are given)."""
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9} if intent else {},
              "entities": entities or [], "intent_ranking": []}
    if events is None:
        events = [user_event(text, intent or "", channel, entities)]
    return Tracker(sender, slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def cases(tmp_path: Path) -> CaseRepository:
    return CaseRepository(f"sqlite:///{tmp_path}/cases.db")


@pytest.fixture
def team(knowledge_base) -> str:
    return knowledge_base.channels[TEAM_CHANNEL].operator


class BrokenCases:
    """A cases database that is down."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise RuntimeError("database is down")
        return fail


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def followups(events: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in events if e.get("event") == "followup"]


# the form's validation -------------------------------------------------------------------
CONTACTS = [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("+8613812345678", "+8613812345678"),
    ("023-63765360", "02363765360"),
    ("(023) 6376 5360", "02363765360"),
    ("63765360", "63765360"),
    ("微信号 zhang_san88", "微信 zhang_san88"),
    ("微信：zhang_san88", "微信 zhang_san88"),
    ("zhang_san88", "微信 zhang_san88"),
    ("a@b.cn", "a@b.cn"),
    ("li.si+work@example.com.cn", "li.si+work@example.com.cn"),
    # how people actually answer: a label before the number
    ("手机：13812345678", "13812345678"),
    ("我的手机13812345678", "13812345678"),
    ("我的电话是 138 1234 5678", "13812345678"),
    ("电话023-63765360", "02363765360"),
    ("4008123123", "4008123123"),
    ("邮箱 a@b.cn", "a@b.cn"),
]


@pytest.mark.parametrize("given, stored", CONTACTS)
def test_contact_accepted(dispatcher, tracker_factory, given: str, stored: str) -> None:
    result = ValidateHandoffForm().validate_handoff_contact(given, dispatcher, tracker_factory(), {})
    assert result == {"handoff_contact": stored}
    assert dispatcher.messages == []


@pytest.mark.parametrize("given", ["123", "1381234567", "23812345678", "电话", "zhang", "a@b", "", "   "])
def test_contact_refused_with_a_hint(dispatcher, tracker_factory, given: str) -> None:
    result = ValidateHandoffForm().validate_handoff_contact(given, dispatcher, tracker_factory(), {})
    assert result == {"handoff_contact": None}
    [message] = dispatcher.messages
    assert "跳过" in message["text"] and "023-63765360" in message["text"]


@pytest.mark.parametrize("given", ["wxid_abcdef123", "wxid_9k2m3n4p5q6r7s"])
def test_a_wechat_id_starting_with_wx_keeps_its_prefix(dispatcher, tracker_factory, given: str) -> None:
    result = ValidateHandoffForm().validate_handoff_contact(given, dispatcher, tracker_factory(), {})
    assert result == {"handoff_contact": f"微信 {given}"}, (
        f"BUG: WECHAT_ID in actions/handoff.py treats a leading 'wx' as the optional label, so the ID {given!r} "
        f"(WeChat's default wxid_… form) is stored as {result['handoff_contact']!r}")


VALIDATORS = [
    ("validate_handoff_contact", "handoff_contact"),
    ("validate_handoff_company", "handoff_company"),
    ("validate_handoff_problem", "handoff_problem"),
]


@pytest.mark.parametrize("method, slot", VALIDATORS)
@pytest.mark.parametrize("said", ["跳过", "不方便", "没有", "skip", "跳过。"])
def test_skip_leaves_a_field_not_given(dispatcher, tracker_factory, method: str, slot: str, said: str) -> None:
    result = getattr(ValidateHandoffForm(), method)(said, dispatcher, tracker_factory(), {})
    assert result == {slot: NOT_GIVEN}
    assert dispatcher.messages == []


@pytest.mark.parametrize("method, slot", VALIDATORS)
@pytest.mark.parametrize("said", ["取消", "不转了", "算了", "取消转人工！"])
def test_cancel_ends_the_form(dispatcher, tracker_factory, method: str, slot: str, said: str) -> None:
    result = getattr(ValidateHandoffForm(), method)(said, dispatcher, tracker_factory(), {})
    assert result == {"handoff_contact": NOT_GIVEN, "handoff_company": NOT_GIVEN, "handoff_problem": NOT_GIVEN,
                      "handoff_cancelled": True}


@pytest.mark.parametrize("given, stored", [
    ("重庆某某科技有限公司", "重庆某某科技有限公司"),
    ("  老张  火锅店 ", "老张 火锅店"),
    ("a", None),
    ("12345", None),
    ("！！！", None),
    ("长" * 61, None),
    ("不方便", NOT_GIVEN),
    ("不需要", NOT_GIVEN),
    ("保密", NOT_GIVEN),
    ("不用了", NOT_GIVEN),
])
def test_company(dispatcher, tracker_factory, given: str, stored: str | None) -> None:
    result = ValidateHandoffForm().validate_handoff_company(given, dispatcher, tracker_factory(), {})
    assert result == {"handoff_company": stored}
    assert bool(dispatcher.messages) is (stored is None)


@pytest.mark.parametrize("given, stored", [
    ("开", None),
    ("开餐馆", None),
    ("想在解放碑开餐馆不知道先办什么证", "想在解放碑开餐馆不知道先办什么证"),
    ("想开\n  餐馆", "想开 餐馆"),
    ("问" * 600, "问" * 500),
])
def test_problem(dispatcher, tracker_factory, given: str, stored: str | None) -> None:
    result = ValidateHandoffForm().validate_handoff_problem(given, dispatcher, tracker_factory(), {})
    assert result == {"handoff_problem": stored}
    assert bool(dispatcher.messages) is (stored is None)


# starting the handoff --------------------------------------------------------------------
def test_start_without_a_topic_goes_to_the_team(knowledge_base, dispatcher, cases, team: str) -> None:
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, make_tracker())
    assert events == [SlotSet("handoff_reason", "user_request"), SlotSet("handoff_department", team),
                      FollowupAction("handoff_form")]
    [message] = dispatcher.messages
    assert knowledge_base.departments[team].name in message["text"] and "跳过" in message["text"]
    assert cases.open_case_of("u1") is None  # the form comes first


@pytest.mark.parametrize("topic", ["tax", "company_opening", "labour_dispute"])
def test_start_on_a_topic_goes_to_its_lead(knowledge_base, dispatcher, cases, topic: str) -> None:
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, make_tracker(slots={"topic": topic}))
    lead = knowledge_base.lead_of(knowledge_base.topics[topic])[0]
    assert slot_events(events)["handoff_department"] == lead.id
    assert lead.name in dispatcher.messages[0]["text"]


def test_a_named_department_beats_the_topic(knowledge_base, dispatcher, cases) -> None:
    tracker = make_tracker(slots={"topic": "tax"}, text="找市场监管局的人",
                           entities=[{"entity": "department", "value": "scjg"}])
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    assert slot_events(events)["handoff_department"] == "scjg"


def test_a_department_set_by_the_trigger_beats_everything(knowledge_base, dispatcher, cases) -> None:
    tracker = make_tracker(slots={"topic": "tax", "handoff_department": "renshe", "handoff_reason": "needs_person"},
                           entities=[{"entity": "department", "value": "scjg"}])
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    assert slot_events(events)["handoff_department"] == "renshe"
    assert slot_events(events)["handoff_reason"] == "needs_person"
    assert "需要工作人员" in dispatcher.messages[0]["text"]


def test_an_unknown_department_falls_back(knowledge_base, dispatcher, cases, team: str) -> None:
    tracker = make_tracker(slots={"handoff_department": "nowhere"},
                           entities=[{"entity": "department", "value": "also_nowhere"}])
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    assert slot_events(events)["handoff_department"] == team


def test_a_complaint_keeps_the_words_the_user_typed(knowledge_base, dispatcher, cases) -> None:
    typed = "我要投诉，税务局窗口让我跑了三趟！"
    tracker = make_tracker(intent="complain", text="我要投诉 税务局窗口让我跑了三趟",  # the normalised text
                           events=[user_event("你好", "greet"), {"event": "bot", "text": "您好"},
                                   user_event(typed, "complain")])
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    slots = slot_events(events)
    assert slots["handoff_reason"] == "complaint"
    assert slots["handoff_problem"] == typed
    assert followups(events) == ["handoff_form"]
    assert "收到您的意见" in dispatcher.messages[0]["text"]


def test_a_bare_complaint_still_asks_for_the_problem(knowledge_base, dispatcher, cases) -> None:
    tracker = make_tracker(intent="complain", text="我要投诉你们")
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    assert slot_events(events)["handoff_reason"] == "complaint"
    assert "handoff_problem" not in slot_events(events)  # the form will ask what it is about


def test_a_bad_rating_of_an_answer_says_what_was_rated(knowledge_base, dispatcher, cases) -> None:
    entities = [{"entity": "department", "value": "shuiwu"}, {"entity": "topic", "value": "tax"},
                {"entity": "rating_level", "value": "非常不满意"}, {"entity": "rating_reason", "value": "答非所问"}]
    tracker = make_tracker(intent="answer_rated_badly", text="/answer_rated_badly", entities=entities)
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    slots = slot_events(events)
    assert (slots["handoff_reason"], slots["handoff_department"]) == ("bad_rating", "shuiwu")
    problem = slots["handoff_problem"]
    assert knowledge_base.topics["tax"].title in problem and "非常不满意" in problem and "答非所问" in problem
    assert events[-1] == FollowupAction("handoff_form")


def test_a_problem_set_by_the_trigger_is_kept(knowledge_base, dispatcher, cases) -> None:
    tracker = make_tracker(intent="complain", text="投诉", slots={"handoff_problem": "对案件 #3 的办理评价为「不满意」"})
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, tracker)
    assert slot_events(events)["handoff_problem"] == "对案件 #3 的办理评价为「不满意」"


def test_start_with_an_open_case_pauses_without_the_form(knowledge_base, dispatcher, cases) -> None:
    case, _ = cases.open("u1", "socketio", "user_request", "shuiwu")
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, make_tracker())
    assert events == [ConversationPaused(), ActionExecuted("action_listen")]  # paused, listening
    [message] = dispatcher.messages
    assert f"#{case.id}" in message["text"]
    assert message["custom"] == {"type": "handoff", "case_id": case.id, "department": "shuiwu",
                                 "department_name": knowledge_base.departments["shuiwu"].name,
                                 "status": "waiting"}
    assert [c.id for c in cases.queue()] == [case.id]  # no second case


def test_start_another_conversations_case_does_not_count(knowledge_base, dispatcher, cases) -> None:
    cases.open("someone-else", "socketio", "user_request", "shuiwu")
    events = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, make_tracker(sender="u1"))
    assert followups(events) == ["handoff_form"]


def test_start_with_the_database_down_gives_the_phone(knowledge_base, dispatcher) -> None:
    events = run(ActionStartHandoff(knowledge_base, cases=BrokenCases()), dispatcher, make_tracker())
    [message] = dispatcher.messages
    assert OFFICE_PHONE in message["text"] and "暂时不可用" in message["text"]
    assert events == RESET + [FollowupAction("action_listen")]


# opening the case ------------------------------------------------------------------------
FILLED = {"handoff_reason": "complaint", "handoff_department": "shuiwu", "topic": "tax",
          "handoff_contact": "13812345678", "handoff_company": "重庆某某科技有限公司",
          "handoff_problem": "发票开不出来", "requested_slot": None}


def test_open_case_writes_the_case_and_pauses(knowledge_base, dispatcher, cases) -> None:
    events = run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(slots=FILLED))
    case = cases.open_case_of("u1")
    assert case is not None
    assert (case.channel, case.reason, case.department, case.topic, case.status) == \
        ("socketio", "complaint", "shuiwu", "tax", "waiting")
    assert (case.contact, case.company, case.problem) == ("13812345678", "重庆某某科技有限公司", "发票开不出来")
    assert events == RESET + [ConversationPaused(), ActionExecuted("action_listen")]
    [message] = dispatcher.messages
    assert message["custom"] == {"type": "handoff", "case_id": case.id, "department": "shuiwu",
                                 "department_name": knowledge_base.departments["shuiwu"].name,
                                 "status": "waiting"}
    assert f"#{case.id}" in message["text"] and OFFICE_PHONE in message["text"]
    assert "48 小时" not in message["text"]
    assert [e.action for e in cases.events(case.id)] == ["opened"]


def test_one_client_may_have_only_a_few_cases_open(knowledge_base, cases, monkeypatch) -> None:
    """A flood of new conversations from one address cannot bury the queue (issue 12)."""
    monkeypatch.delenv("CASES_PER_CLIENT", raising=False)

    def open_from(sender: str, client: str) -> CollectingDispatcher:
        tracker = make_tracker(sender=sender, slots=FILLED)
        tracker.latest_message["metadata"] = {clients.CLIENT_KEY: client}
        dispatcher = CollectingDispatcher()
        run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, tracker)
        return dispatcher

    for n in range(DEFAULT_CASES_PER_CLIENT):
        open_from(f"flood-{n}", "ip:flooder")
    refused = open_from("flood-next", "ip:flooder")
    assert cases.open_case_of("flood-next") is None and cases.open_counts_of_clients(["ip:flooder"]) == {"ip:flooder": 3}
    assert "正在等待专员处理" in refused.messages[0]["text"] and OFFICE_PHONE in refused.messages[0]["text"]
    # another business is not affected; a conversation's own open case is still its own
    open_from("someone-else", "ip:other")
    assert cases.open_case_of("someone-else") is not None
    again = open_from("flood-0", "ip:flooder")
    assert f"#{cases.open_case_of('flood-0').id}" in again.messages[0]["text"]
    # one closed, one more may open
    first = cases.open_case_of("flood-1")
    cases.claim(first.id, "zhang")
    cases.resolve(first.id, "zhang")
    open_from("flood-next", "ip:flooder")
    assert cases.open_case_of("flood-next").client == "ip:flooder"


def test_a_message_without_a_client_counts_as_its_own_conversation(knowledge_base, dispatcher, cases) -> None:
    run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(sender="wechat:o123", slots=FILLED))
    assert cases.open_case_of("wechat:o123").client == "wechat:o123"


def test_open_case_takes_the_channel_of_the_latest_user_message(knowledge_base, dispatcher, cases) -> None:
    events = [user_event("你好", "greet", "socketio"), {"event": "bot", "text": "您好"},
              user_event("转人工", "human_handoff", "rest")]
    run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(slots=FILLED, events=events))
    assert cases.open_case_of("u1").channel == "rest"


def test_open_case_with_only_defaults(knowledge_base, dispatcher, cases, team: str) -> None:
    run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(events=[]))
    case = cases.open_case_of("u1")
    assert (case.channel, case.reason, case.department, case.topic) == ("unknown", "user_request", team, None)
    assert (case.contact, case.company, case.problem) == ("", "", "")


def test_skipped_fields_are_stored_as_not_given(knowledge_base, dispatcher, cases) -> None:
    slots = {**FILLED, **{slot: NOT_GIVEN for slot in FORM_SLOTS}}
    run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(slots=slots))
    case = cases.open_case_of("u1")
    assert (case.contact, case.company, case.problem) == (NOT_GIVEN, NOT_GIVEN, NOT_GIVEN)


def test_a_cancelled_handoff_opens_nothing(knowledge_base, dispatcher, cases) -> None:
    slots = {**FILLED, **{slot: NOT_GIVEN for slot in FORM_SLOTS}, "handoff_cancelled": True}
    events = run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(slots=slots))
    assert events == RESET
    assert cases.open_case_of("u1") is None
    assert "已取消" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("channel", ["wechat", "wecom"])
def test_wechat_users_are_told_of_the_48_hours(knowledge_base, dispatcher, cases, channel: str) -> None:
    run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(slots=FILLED, channel=channel))
    assert cases.open_case_of("u1").channel == channel
    assert "48 小时" in dispatcher.messages[0]["text"]


def test_open_case_with_the_database_down_apologises(knowledge_base, dispatcher) -> None:
    events = run(ActionOpenCase(knowledge_base, cases=BrokenCases()), dispatcher, make_tracker(slots=FILLED))
    assert events == RESET
    assert ConversationPaused() not in events
    [message] = dispatcher.messages
    assert "抱歉" in message["text"] and OFFICE_PHONE in message["text"]
    assert not message["custom"]


def test_the_whole_way_from_start_to_case(knowledge_base, dispatcher, cases, team: str) -> None:
    """start → (form answers, validated) → open: the slots one action sets are what the next reads."""
    slots: dict[str, Any] = {}
    for event in run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, make_tracker(slots=slots)):
        if event["event"] == "slot":
            slots[event["name"]] = event["value"]
    form = ValidateHandoffForm()
    for method, answer in [("validate_handoff_contact", "138 1234 5678"), ("validate_handoff_company", "跳过"),
                           ("validate_handoff_problem", "想在解放碑开餐馆不知道先办什么证")]:
        slots.update(getattr(form, method)(answer, dispatcher, make_tracker(slots=slots), {}))
    events = run(ActionOpenCase(knowledge_base, cases=cases), dispatcher, make_tracker(slots=slots))
    case = cases.open_case_of("u1")
    assert (case.department, case.reason, case.contact, case.company, case.problem) == \
        (team, "user_request", "13812345678", NOT_GIVEN, "想在解放碑开餐馆不知道先办什么证")
    assert events[-2:] == [ConversationPaused(), ActionExecuted("action_listen")]


# a new session ---------------------------------------------------------------------------
def test_a_new_session_stays_paused_while_a_case_is_open(dispatcher, cases) -> None:
    cases.open("u1", "socketio", "user_request", "shuiwu")
    events = run(ActionSessionStart(cases=cases), dispatcher, make_tracker(slots={"topic": "tax"}))
    assert events == [SessionStarted(), SlotSet("topic", "tax"), ConversationPaused(),
                      ActionExecuted("action_listen")]


def test_a_new_session_without_a_case_is_not_paused(dispatcher, cases) -> None:
    case, _ = cases.open("u1", "socketio", "user_request", "shuiwu")
    cases.resolve(case.id, "boss", "handed_back")
    events = run(ActionSessionStart(cases=cases), dispatcher, make_tracker())
    assert events == [SessionStarted(), ActionExecuted("action_listen")]


def test_a_new_session_with_the_database_down_is_not_paused(dispatcher) -> None:
    events = run(ActionSessionStart(cases=BrokenCases()), dispatcher, make_tracker(slots={"topic": "tax"}))
    assert events == [SessionStarted(), SlotSet("topic", "tax"), ActionExecuted("action_listen")]


# the 好差评 rating of a case -------------------------------------------------------------
def resolved_case(cases: CaseRepository, conversation: str = "u1", department: str = "shuiwu"):
    case, _ = cases.open(conversation, "socketio", "user_request", department, problem="开不了发票")
    cases.claim(case.id, "zhang")
    return cases.resolve(case.id, "zhang")


def rating_tracker(level: str | None, case_id: Any, sender: str = "u1") -> Tracker:
    entities = []
    if level is not None:
        entities.append({"entity": "rating_level", "value": level})
    if case_id is not None:
        entities.append({"entity": "case_id", "value": case_id})
    return make_tracker(sender=sender, intent="rate_service", text="/rate_service", entities=entities)


def test_ask_for_a_rating_after_a_case_is_resolved(knowledge_base, dispatcher, cases) -> None:
    case = resolved_case(cases)
    assert run(ActionAskServiceRating(knowledge_base, cases=cases), dispatcher, make_tracker()) == []
    [message] = dispatcher.messages
    assert f"#{case.id}" in message["text"]
    assert [b["title"] for b in message["buttons"]] == list(RATING_LEVELS)
    for button in message["buttons"]:
        assert button["payload"].startswith("/rate_service{")
        assert json.loads(button["payload"][len("/rate_service"):]) == \
            {"rating_level": button["title"], "case_id": str(case.id)}
    assert message["custom"]["case_id"] == case.id and message["custom"]["status"] == "resolved"


@pytest.mark.parametrize("resolve", [False, True])
def test_no_rating_asked_without_a_resolved_case(knowledge_base, dispatcher, cases, resolve: bool) -> None:
    cases.open("u1", "socketio", "user_request", "shuiwu")  # open, not resolved
    if resolve:
        resolved_case(cases, "someone-else")
    assert run(ActionAskServiceRating(knowledge_base, cases=cases), dispatcher, make_tracker()) == []
    assert dispatcher.messages == []


@pytest.mark.parametrize("level", RATING_LEVELS[:3])
def test_a_good_rating_is_recorded_with_thanks(dispatcher, cases, level: str) -> None:
    case = resolved_case(cases)
    events = run(ActionRateService(cases=cases), dispatcher, rating_tracker(level, str(case.id)))
    assert events == []
    assert cases.get(case.id).rating == level
    assert "谢谢您的评价" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("level", ["不满意", "非常不满意"])
def test_a_bad_rating_hands_over_again(knowledge_base, dispatcher, cases, level: str) -> None:
    case = resolved_case(cases, department="scjg")
    events = run(ActionRateService(cases=cases), dispatcher, rating_tracker(level, str(case.id)))
    assert cases.get(case.id).rating == level
    slots = slot_events(events)
    assert (slots["handoff_reason"], slots["handoff_department"]) == ("bad_rating", "scjg")
    assert f"#{case.id}" in slots["handoff_problem"] and level in slots["handoff_problem"]
    assert "开不了发票" in slots["handoff_problem"]
    assert events[-1] == FollowupAction("action_start_handoff")

    # and action_start_handoff takes it from there: same department, a new case after the form
    start = run(ActionStartHandoff(knowledge_base, cases=cases), dispatcher, make_tracker(slots=slots))
    assert slot_events(start)["handoff_department"] == "scjg" and followups(start) == ["handoff_form"]


def test_a_case_is_rated_once(dispatcher, cases) -> None:
    case = resolved_case(cases)
    run(ActionRateService(cases=cases), dispatcher, rating_tracker("满意", str(case.id)))
    dispatcher.messages.clear()
    assert run(ActionRateService(cases=cases), dispatcher, rating_tracker("非常不满意", str(case.id))) == []
    assert "已经评价过" in dispatcher.messages[0]["text"]
    assert cases.get(case.id).rating == "满意"


def test_another_conversation_cannot_rate_the_case(dispatcher, cases) -> None:
    case = resolved_case(cases, "u1")
    assert run(ActionRateService(cases=cases), dispatcher, rating_tracker("非常不满意", str(case.id), "u2")) == []
    assert cases.get(case.id).rating is None


@pytest.mark.parametrize("level, case_id", [
    (None, None),
    ("满意", None),
    (None, "1"),
    ("好", "1"),
    ("满意", "abc"),
    ("满意", ""),
])
def test_a_rating_without_level_or_case_asks_to_pick(dispatcher, cases, level, case_id) -> None:
    case = resolved_case(cases)
    assert run(ActionRateService(cases=cases), dispatcher, rating_tracker(level, case_id)) == []
    assert "请点选" in dispatcher.messages[0]["text"]
    assert cases.get(case.id).rating is None


# the triggers in other actions -----------------------------------------------------------
def _fallback(text: str) -> dict[str, Any]:
    return user_event(text, "nlu_fallback")


def test_misunderstood_twice_hands_over(knowledge_base, dispatcher) -> None:
    events = [_fallback("额那个"), {"event": "bot", "text": "请选一个"}, _fallback("就是那个证")]
    latest = {"text": "就是那个证", "intent": {"name": "nlu_fallback"},
              "intent_ranking": [{"name": "tax", "confidence": 0.3}]}
    tracker = Tracker("u1", {}, latest, events, False, None, {}, "action_listen")
    result = run(ActionClarifyTopic(knowledge_base), dispatcher, tracker)
    slots = slot_events(result)
    assert slots["handoff_reason"] == "misunderstood"
    assert "额那个" in slots["handoff_problem"] and "就是那个证" in slots["handoff_problem"]
    assert "handoff_department" not in slots  # start_handoff picks it
    assert result[-1] == FollowupAction("action_start_handoff")
    assert dispatcher.messages == []


def test_misunderstood_once_asks_back(knowledge_base, dispatcher) -> None:
    events = [user_event("怎么开公司", "company_opening"), {"event": "bot", "text": "…"}, _fallback("就是那个证")]
    latest = {"text": "就是那个证", "intent": {"name": "nlu_fallback"},
              "intent_ranking": [{"name": "tax", "confidence": 0.3}]}
    tracker = Tracker("u1", {}, latest, events, False, None, {}, "action_listen")
    assert followups(run(ActionClarifyTopic(knowledge_base), dispatcher, tracker)) == []
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/tax"]


def test_a_topic_that_needs_a_person_answers_then_hands_over(knowledge_base, dispatcher) -> None:
    typed = "和税务局对补税金额有争议怎么办"
    tracker = make_tracker(intent="tax_dispute", text=typed)
    events = run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    topic = knowledge_base.topics["tax_dispute"]
    assert topic.needs_person
    [message] = dispatcher.messages
    assert message["custom"]["type"] == "service_card" and message["custom"]["topic"] == "tax_dispute"
    assert events == [SlotSet("topic", "tax_dispute"), SlotSet("handoff_reason", "needs_person"),
                      SlotSet("handoff_department", knowledge_base.lead_of(topic)[0].id),
                      SlotSet("handoff_problem", typed), FollowupAction("action_start_handoff")]


def test_a_topic_without_a_person_only_answers(knowledge_base, dispatcher) -> None:
    events = run(ActionAnswerTopic(knowledge_base), dispatcher, make_tracker(intent="company_opening", text="怎么开公司"))
    assert not knowledge_base.topics["company_opening"].needs_person
    assert events == [SlotSet("topic", "company_opening")]
    assert followups(events) == []
    assert dispatcher.messages[0]["custom"]["type"] == "service_card"


def test_restart_closes_the_open_case_and_says_so(knowledge_base, dispatcher, cases) -> None:
    from rasa_sdk.events import Restarted

    from actions.session import ActionRestart

    case, _ = cases.open("u1", "socketio", "user_request", "scjg")
    events = run(ActionRestart(knowledge_base, cases=cases), dispatcher, make_tracker(intent="restart"))
    assert events == [Restarted()]
    closed = cases.get(case.id)
    assert (closed.status, closed.outcome) == ("resolved", "handed_back")
    assert [(e.actor, e.action) for e in cases.events(case.id)][-1] == ("user", "handed_back")
    [message] = dispatcher.messages
    assert f"案件 #{case.id}" in message["text"] and message["custom"]["status"] == "resolved"


@pytest.mark.parametrize("repository", ["none open", "database down"])
def test_restart_without_an_open_case_only_restarts(knowledge_base, dispatcher, cases, repository) -> None:
    from rasa_sdk.events import Restarted

    from actions.session import ActionRestart

    given = cases if repository == "none open" else BrokenCases()
    assert run(ActionRestart(knowledge_base, cases=given), dispatcher, make_tracker(intent="restart")) == [Restarted()]
    assert dispatcher.messages == []


def test_a_question_where_a_contact_was_asked_is_answered_then_the_contact_asked_again(
        dispatcher, tracker_factory) -> None:
    tracker = tracker_factory(intent="ask_channel", text="可以线上办吗", slots={"topic": "labour_dispute"})
    result = ValidateHandoffForm().validate_handoff_contact("可以线上办吗", dispatcher, tracker, {})
    assert result == {"handoff_contact": None}
    answer, again = dispatcher.messages
    assert answer["custom"]["topic"] == "labour_dispute" and "负责部门：区人力社保局" in answer["text"]
    assert "请留手机号" in again["text"]


def test_a_how_question_where_a_contact_was_asked_is_answered_too(dispatcher, tracker_factory) -> None:
    # 「怎么」 asks as plainly as 「吗」: 「这个联系方式好像不完整」 would answer the wrong thing
    tracker = tracker_factory(intent="commercial_dispute", text="文书怎么送达", slots={"topic": "commercial_dispute"})
    result = ValidateHandoffForm().validate_handoff_contact("文书怎么送达", dispatcher, tracker, {})
    assert result == {"handoff_contact": None}
    answer, again = dispatcher.messages
    assert "送达" in answer["text"] and "负责部门：区法院" in answer["text"] and "不完整" not in again["text"]


@pytest.mark.parametrize("given", ["我电话138123", "座机023-6376"])
def test_a_contact_typed_wrong_is_not_taken_for_a_question(dispatcher, tracker_factory, given: str) -> None:
    tracker = tracker_factory(text=given, slots={"topic": "labour_dispute"})
    ValidateHandoffForm().validate_handoff_contact(given, dispatcher, tracker, {})
    [hint] = dispatcher.messages
    assert "不完整" in hint["text"]


@pytest.mark.parametrize("method", ["validate_handoff_contact", "validate_handoff_company"])
def test_a_question_on_another_topic_sets_the_handoff_aside_and_is_answered(
        dispatcher, tracker_factory, method: str) -> None:
    """The user moved on: no form asking for a contact for ever (nor a session that never ends)."""
    said = "个体户注销要什么材料"
    tracker = tracker_factory(intent="deregistration", text=said, slots={"topic": "labour_dispute"})
    tracker.latest_message["intent"]["confidence"] = 0.95
    result = getattr(ValidateHandoffForm(), method)(said, dispatcher, tracker, {})
    assert result["handoff_cancelled"] is True and result["topic"] == "deregistration"
    assert all(result[slot] == NOT_GIVEN for slot in FORM_SLOTS)
    [answer] = dispatcher.messages
    assert answer["custom"]["topic"] == "deregistration" and "材料" in answer["text"]


@pytest.mark.parametrize("intent, text, confidence", [
    ("deregistration", "个体户注销", 0.95),          # no question: perhaps the company's name
    ("deregistration", "个体户注销要什么材料", 0.5),  # unsure
    ("labour_dispute", "仲裁要什么材料", 0.95),       # the same topic: answered, then the contact again
])
def test_other_messages_stay_in_the_handoff(dispatcher, tracker_factory, intent, text, confidence) -> None:
    tracker = tracker_factory(intent=intent, text=text, slots={"topic": "labour_dispute"})
    tracker.latest_message["intent"]["confidence"] = confidence
    result = ValidateHandoffForm().validate_handoff_contact(text, dispatcher, tracker, {})
    assert "handoff_cancelled" not in result and result == {"handoff_contact": None}
