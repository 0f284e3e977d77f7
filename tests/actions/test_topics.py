"""The answering actions: the passage that answers first, then who and where; details on request."""

from __future__ import annotations

import re

import pytest
from rasa_sdk.events import FollowupAction, SlotSet

from actions import render
from actions.topics import ActionAnswerDetails, ActionAnswerFollowup, ActionAnswerTopic, current_topic

CITE = re.compile(r"(渝中府办〔\d{4}〕\d+号) 第(\d+)条")


def run(action, dispatcher, tracker):
    import asyncio

    return asyncio.run(action.run(dispatcher, tracker, {}))


def visible_departments(knowledge_base, text: str) -> set[str]:
    return {d.id for d in knowledge_base.departments.values() if d.name in text}


def test_every_topic_answer_is_a_cited_passage_then_who_and_where(knowledge_base, tracker_factory,
                                                                    dispatcher) -> None:
    action = ActionAnswerTopic(knowledge_base)
    for topic in knowledge_base.topics.values():
        dispatcher.messages.clear()
        events = run(action, dispatcher, tracker_factory(intent=topic.id, text=topic.title))
        assert events[0] == SlotSet("topic", topic.id)
        # a dispute is handed to a person after the answer; nothing else is
        assert (events[-1] == FollowupAction("action_start_handoff")) is topic.needs_person
        [message] = dispatcher.messages
        text, card = message["text"], message["custom"]
        first, second = text.split("\n")
        assert card["type"] == "service_card" and card["topic"] == topic.id
        answered = card["answer"]
        unit = units_by_id()[answered["unit"]]
        assert first.endswith(f"（{unit.cite}）。"), (topic.id, first)
        assert first[: -len(f"（{unit.cite}）。")].removeprefix("可以。") in unit.text
        assert second.startswith("负责部门：") and knowledge_base.departments[answered["department"]].name in second
        assert len(text) <= 220 and len(visible_departments(knowledge_base, text)) <= 2, text
        cited_items = {(m.group(1), int(m.group(2))) for m in CITE.finditer(text)}
        assert cited_items <= {(p.doc, p.item) for p in knowledge_base.policies.values()}
        # the rest of the topic stays in the card, shown on request
        assert card["co_departments"] == [{"id": u.id, "name": u.name} for u in knowledge_base.co_of(topic)]
        assert [c["id"] for c in card["channels"]] == list(topic.channels[: render.MAX_CHANNELS])
        assert "text" not in answered and ("lead_departments" in card) is (len(topic.lead) > 1)


def units_by_id():
    from actions import units

    return {u.id: u for u in units.load()}


@pytest.mark.parametrize("intent, text, entities, first_line, second_line", [
    # the four questions of the issue, as a new user typed them
    ("deregistration", "简易注销公告要公示多少天", [], "简易注销公告时间由45天压缩到20天（2022年渝中区营商环境报道）", "区市场监管局"),
    ("company_opening", "办营业执照要交多少钱", [], "全流程“零成本”", "区市场监管局"),
    ("first_loan_renewal", "首贷续贷中心的电话是多少", [{"entity": "channel", "value": "shoudai_xudai_zhongxin"}],
     "现有政策文件没有公布渝中区民营小微和个体工商户首贷续贷中心的联系电话。", "区金融办"),
    ("ip_pledge", "专利可以质押贷款吗", [], "可以。", "区市场监管局"),
    ("construction_permit", "办施工许可要多少个工作日", [], "个工作日", "区住房城市建委"),
    ("yingshangban_contact", "营商办电话多少", [{"entity": "department", "value": "yingshangban"}], "63765360", "区营商办"),
])
def test_the_first_line_answers_the_question(knowledge_base, tracker_factory, dispatcher, intent, text, entities,
                                             first_line, second_line) -> None:
    intent = "enterprise_policy" if intent == "yingshangban_contact" else intent
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker_factory(intent=intent, text=text, entities=entities))
    first, second = dispatcher.messages[0]["text"].split("\n")
    assert first_line in first
    assert second_line in second or second_line in first


def test_a_phone_the_documents_do_not_publish_is_not_invented(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="first_loan_renewal", text="首贷续贷中心的电话是多少",
                              entities=[{"entity": "channel", "value": "shoudai_xudai_zhongxin"}])
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    text = dispatcher.messages[0]["text"]
    assert not re.search(r"\d{5,}", text)  # no number at all: the documents publish none for the centre
    assert "转人工" in text.splitlines()[1]  # and a person can find out
    assert dispatcher.messages[0]["custom"]["answer"]["missing"] == "phone"


@pytest.mark.parametrize("topic, text", [
    ("tax", "个体户可以不交税吗"),          # asks whether something may be skipped
    ("bankruptcy", "个人可以申请破产吗"),    # the documents speak of companies
    ("credit_loan", "有什么支持政策吗"),
])
def test_no_yes_the_passage_does_not_give(knowledge_base, tracker_factory, dispatcher, topic, text) -> None:
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker_factory(intent=topic, text=text))
    assert not dispatcher.messages[0]["text"].startswith("可以")


def test_followup_time_stays_on_topic(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="ask_time_limit", text="那要多久", slots={"topic": "construction_permit"})
    events = run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker)
    assert events == [SlotSet("topic", "construction_permit")]
    message = dispatcher.messages[0]
    assert re.search(r"\d+个工作日", message["text"].splitlines()[0])
    assert message["custom"]["aspect"] == "time" and message["custom"]["topic"] == "construction_permit"


def test_followup_without_a_time_limit_says_so_and_points_to_a_channel(knowledge_base, tracker_factory,
                                                                       dispatcher) -> None:
    tracker = tracker_factory(intent="ask_time_limit", text="那要多久", slots={"topic": "ip_pledge"})
    run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker)
    first, second = dispatcher.messages[0]["text"].split("\n")
    assert first == "现有政策文件没有公布知识产权质押融资的办理时限。"
    assert "区市场监管局" in second and "知识产权质押融资白名单" in second
    assert not re.search(r"\d+个?工作日", first + second)


@pytest.mark.parametrize("intent, text, expected", [
    ("ask_department", "找哪个部门", "开办企业由区市场监管局牵头负责：“市场准入。（牵头单位：区市场监管局”（渝中府办〔2023〕32号 第2条）。"),
    ("ask_channel", "在哪里办", "办理渠道："),
    ("ask_materials", "要带什么材料", "材料"),
    ("ask_cost", "要钱吗", "零成本"),
])
def test_other_followups(knowledge_base, tracker_factory, dispatcher, intent, text, expected) -> None:
    tracker = tracker_factory(intent=intent, text=text, slots={"topic": "company_opening"})
    run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker)
    assert expected in dispatcher.messages[0]["text"]


def test_details_show_the_whole_topic(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="ask_details", text="详情", slots={"topic": "company_opening"})
    assert run(ActionAnswerDetails(knowledge_base), dispatcher, tracker) == [SlotSet("topic", "company_opening")]
    text = dispatcher.messages[0]["text"]
    assert "配合部门：" in text and "适用政策：" in text and "办理渠道：" in text
    assert dispatcher.messages[0]["custom"]["aspect"] == "details"


def test_followup_without_topic_asks_back(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="ask_materials", text="要什么材料")
    assert run(ActionAnswerFollowup(knowledge_base), dispatcher, tracker) == []
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


def test_an_english_question_gets_an_english_first_line(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="deregistration", text="how long is the simple deregistration notice 简易注销 多久",
                              )
    tracker.latest_message["typed_language"] = "en"
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    first, second = dispatcher.messages[0]["text"].split("\n")
    assert first == "According to 2022年渝中区营商环境报道: “简易注销公告时间由45天压缩到20天”."
    assert second.startswith("Lead department: 区市场监管局 (Market Supervision Administration); channel: ")


@pytest.mark.parametrize("text", ["E企办能报税不", "/tax"])  # Chinese, and a button's payload
def test_no_english_line_unless_the_question_was_english(knowledge_base, tracker_factory, dispatcher, text) -> None:
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker_factory(intent="tax", text=text))
    assert "According to" not in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("slot, channel", [("utilities", "yukuaiban"), ("tax", "zhengwu_zhongxin")])
def test_a_channel_the_topic_uses_keeps_the_topic(knowledge_base, tracker_factory, slot, channel) -> None:
    tracker = tracker_factory(intent="ask_channel", slots={"topic": slot},
                              entities=[{"entity": "channel", "value": channel},
                                        {"entity": "topic", "value": "government_services"}])
    assert current_topic(knowledge_base, tracker) == slot


def test_the_terminal_chat_gets_the_text_without_the_card_json(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="deregistration", text="简易注销公告要公示多少天")
    tracker.events.append({"event": "user", "text": "简易注销公告要公示多少天", "input_channel": "cmdline"})
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    [message] = dispatcher.messages
    assert "20天" in message["text"] and not message.get("custom")
    # on any other channel the card comes with the text
    dispatcher.messages.clear()
    tracker.events[-1]["input_channel"] = "rest"
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    assert dispatcher.messages[0]["custom"]["type"] == "service_card"


def test_a_short_question_on_the_same_topic_is_read_with_the_one_before(knowledge_base, dispatcher) -> None:
    from rasa_sdk import Tracker

    said = ["公司有几个商标和专利", "能拿去贷款不"]
    events = [{"event": "user", "text": t, "parse_data": {"text": t}} for t in said]
    latest = {"text": said[-1], "intent": {"name": "ip_pledge", "confidence": 0.7}, "entities": [], "intent_ranking": []}
    tracker = Tracker("test-user", {"topic": "ip_pledge"}, latest, events, False, None, {}, "action_listen")
    run(ActionAnswerTopic(knowledge_base), dispatcher, tracker)
    # 商标 from the question before: the item on pledging patents and trademarks together
    assert "专利商标混合质押" in dispatcher.messages[0]["text"].splitlines()[0]


def test_a_channel_without_an_english_name_is_given_in_pinyin_without_its_quotation_marks() -> None:
    from actions.render import _pinyin

    assert _pinyin("“全渝数智法院”全程网办") == "Quan Yu Shu Zhi Fa Yuan Quan Cheng Wang Ban"
    assert _pinyin("AEO认证") == "AEO Ren Zheng"  # a Latin name stays as written
