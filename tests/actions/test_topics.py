"""action_answer_topic and action_answer_followup answer from the kb, with one card each."""

from __future__ import annotations

import re

import pytest
from rasa_sdk.events import FollowupAction, SlotSet

from actions.topics import ActionAnswerFollowup, ActionAnswerTopic, current_topic

CITE = re.compile(r"(渝中府办〔\d{4}〕\d+号) 第(\d+)条")


def run(action, dispatcher, tracker):
    import asyncio

    return asyncio.run(action.run(dispatcher, tracker, {}))


def test_every_topic_answer_names_lead_item_and_channel(knowledge_base, tracker_factory, dispatcher) -> None:
    action = ActionAnswerTopic(knowledge_base)
    for topic in knowledge_base.topics.values():
        dispatcher.messages.clear()
        events = run(action, dispatcher, tracker_factory(intent=topic.id))
        assert events[0] == SlotSet("topic", topic.id)
        # a dispute is handed to a person after the answer; nothing else is
        assert (events[-1] == FollowupAction("action_start_handoff")) is topic.needs_person
        [message] = dispatcher.messages
        text, card = message["text"], message["custom"]
        lead = knowledge_base.departments[topic.lead[0]]
        assert lead.name in text
        assert card["type"] == "service_card" and card["topic"] == topic.id
        assert card["department"] == {"id": lead.id, "name": lead.name}
        assert card["channels"] and card["channels"][0]["name"] in text
        cited_items = {(m.group(1), int(m.group(2))) for m in CITE.finditer(text)}
        known = {(p.doc, p.item) for p in knowledge_base.policies.values()}
        assert cited_items <= known, cited_items - known
        if topic.policies:
            assert CITE.search(text), topic.id
            first = card["policies"][0]
            policy = knowledge_base.policies[first["id"]]
            assert (first["doc"], first["item"]) == (policy.doc, policy.item)
            assert first["summary"] in policy.text
        else:
            assert knowledge_base.documents[topic.lead_source.file].cite in text


@pytest.mark.parametrize("intent, department, fragment", [
    ("company_opening", "区市场监管局", "渝中府办〔2023〕32号 第2条"),
    ("first_loan_renewal", "区金融办", "首贷续贷中心"),
    ("ip_pledge", "区市场监管局", "渝中府办〔2023〕32号 第62条"),
    ("construction_permit", "区住房城市建委", "45个工作日"),
    ("utilities", "区经济信息委", "8个工作日"),
    ("tax_dispute", "区税务局", "涉税费争议调解室"),
    ("police_liaison", "区公安分局", "13个“助企警务联络站”"),
])
def test_hot_topics(knowledge_base, tracker_factory, dispatcher, intent, department, fragment) -> None:
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker_factory(intent=intent))
    text = dispatcher.messages[0]["text"]
    assert department in text and fragment in text


def test_followup_time_stays_on_topic(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="ask_time_limit", text="那要多久", slots={"topic": "construction_permit"})
    events = run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker)
    assert events == [SlotSet("topic", "construction_permit")]
    message = dispatcher.messages[0]
    assert "45个工作日" in message["text"] and "13个工作日" in message["text"]
    assert message["custom"]["aspect"] == "time"


def test_followup_without_a_time_limit_says_so_and_points_to_a_channel(knowledge_base, tracker_factory,
                                                                       dispatcher) -> None:
    tracker = tracker_factory(intent="ask_time_limit", slots={"topic": "ip_pledge"})
    run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker)
    text = dispatcher.messages[0]["text"]
    assert "没有写明" in text and "知识产权质押融资白名单双向推送机制" in text
    assert not re.search(r"\d+个?工作日", text)


@pytest.mark.parametrize("intent, expected", [
    ("ask_department", "牵头部门：区市场监管局"),
    ("ask_channel", "“E企办”"),
    ("ask_materials", "文件中与材料相关的规定：\n· 2022年渝中区营商环境报道：渝中区开办企业享受全流程“零成本”政策优惠，申报材料减少75%以上"),
])
def test_other_followups(knowledge_base, tracker_factory, dispatcher, intent, expected) -> None:
    tracker = tracker_factory(intent=intent, slots={"topic": "company_opening"})
    run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker)
    assert expected in dispatcher.messages[0]["text"]


def test_followup_without_topic_asks_back(knowledge_base, tracker_factory, dispatcher) -> None:
    assert run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker_factory(intent="ask_materials")) == []
    assert dispatcher.messages[0]["response"] == "utter_ask_topic"


def test_a_named_topic_replaces_the_slot(knowledge_base, tracker_factory) -> None:
    tracker = tracker_factory(intent="ask_channel", slots={"topic": "tax"},
                              entities=[{"entity": "channel", "value": "shoudai_xudai_zhongxin"}])
    assert current_topic(knowledge_base, tracker) == "first_loan_renewal"
    tracker = tracker_factory(intent="ask_time_limit", slots={"topic": "tax"},
                              entities=[{"entity": "topic", "value": "utilities"}])
    assert current_topic(knowledge_base, tracker) == "utilities"


def test_unknown_slot_value_is_ignored(knowledge_base, tracker_factory) -> None:
    assert current_topic(knowledge_base, tracker_factory(intent="ask_channel", slots={"topic": "nope"})) is None


def test_an_english_question_gets_a_short_english_line(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="first_loan_renewal", text="续贷 贷款")
    tracker.latest_message["typed_language"] = "en"
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    first_line = dispatcher.messages[0]["text"].splitlines()[0]
    assert first_line.startswith("(English) Lead department: 区金融办")
    assert "渝中府办〔2021〕16号 第11条" in first_line


@pytest.mark.parametrize("text", ["E企办能报税不", "/tax"])  # Chinese, and a button's payload
def test_no_english_line_unless_the_question_was_english(knowledge_base, tracker_factory, dispatcher, text) -> None:
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker_factory(intent="tax", text=text))
    assert "(English)" not in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("slot, channel", [("utilities", "yukuaiban"), ("tax", "zhengwu_zhongxin")])
def test_a_channel_the_topic_uses_keeps_the_topic(knowledge_base, tracker_factory, slot, channel) -> None:
    tracker = tracker_factory(intent="ask_channel", slots={"topic": slot},
                              entities=[{"entity": "channel", "value": channel},
                                        {"entity": "topic", "value": "government_services"}])
    assert current_topic(knowledge_base, tracker) == slot
