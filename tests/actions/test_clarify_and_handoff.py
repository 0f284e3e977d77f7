"""Asking back with choices; misunderstood twice, a handoff; the seeds' contact lines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa_sdk.events import SlotSet

from actions.clarify import ActionAnswerOutOfScope, ActionClarifyTopic
from actions.handoff import contact_lines


def test_clarify_offers_the_closest_topics_as_buttons(knowledge_base, tracker_factory, dispatcher) -> None:
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.4},
        {"name": "credit_loan", "confidence": 0.35},
        {"name": "out_of_scope", "confidence": 0.2},
        {"name": "first_loan_renewal", "confidence": 0.3},
        {"name": "ip_pledge", "confidence": 0.1},
        {"name": "tax", "confidence": 0.01},
    ]
    tracker = tracker_factory(intent="nlu_fallback", ranking=ranking)
    asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    buttons = dispatcher.messages[0]["buttons"]
    assert [b["payload"] for b in buttons] == ["/credit_loan", "/first_loan_renewal", "/ip_pledge"]
    assert buttons[0]["title"] == knowledge_base.topics["credit_loan"].title


def test_clarify_puts_a_named_topic_first(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="nlu_fallback", ranking=[{"name": "tax", "confidence": 0.3}],
                              entities=[{"entity": "topic", "value": "tax_dispute"}])
    asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/tax_dispute", "/tax"]


def test_clarify_without_candidates_says_it_did_not_understand(knowledge_base, tracker_factory,
                                                               dispatcher) -> None:
    tracker = tracker_factory(intent="nlu_fallback", text="这个那个的我也说不清楚到底是咋回事情",
                              ranking=[{"name": "greet", "confidence": 0.3}])
    asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    assert dispatcher.messages[0]["response"] == "utter_default"


def test_a_fragment_without_a_topic_gets_the_common_topics(knowledge_base, tracker_factory, dispatcher) -> None:
    tracker = tracker_factory(intent="nlu_fallback", text="钱的问题", ranking=[{"name": "goodbye", "confidence": 0.7}])
    assert asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {})) == []
    assert dispatcher.messages[0]["response"] == "utter_ask_topic"


@pytest.mark.parametrize("text, expected", [("要多久", "个工作日"), ("在哪办", "办理渠道："), ("办个证", "负责部门：区住房城市建委")])
def test_a_fragment_on_a_topic_is_a_followup(knowledge_base, tracker_factory, dispatcher, text, expected) -> None:
    tracker = tracker_factory(intent="nlu_fallback", text=text, slots={"topic": "construction_permit"})
    asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    message = dispatcher.messages[0]
    assert expected in message["text"] and message["custom"]["topic"] == "construction_permit"


def test_a_question_nlu_could_not_place_is_answered_when_one_passage_matches(knowledge_base, tracker_factory,
                                                                            dispatcher) -> None:
    tracker = tracker_factory(intent="nlu_fallback", text="2021年渝中计划多少项高频事项实现跨省通办")
    events = asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    assert "74 项高频政务服务事项年内实现“跨省通办”" in dispatcher.messages[0]["text"].splitlines()[0]
    assert events == [SlotSet("topic", dispatcher.messages[0]["custom"]["topic"])]


def _typed(text: str, intent: str):
    """A tracker as Rasa sends it: the NLU's (normalised) text beside the user event's typed one."""
    from rasa_sdk import Tracker

    from components.text_normalizer import TextNormalizer

    normalize = TextNormalizer.from_lexicon(Path(__file__).resolve().parents[2] / "lexicon").normalize
    latest = {"text": normalize(text), "intent": {"name": intent, "confidence": 0.9},
              "entities": [], "intent_ranking": []}
    return Tracker("u", {}, latest, [{"event": "user", "text": text}], False, None, {}, "action_listen")


def test_an_out_of_scope_question_whose_words_match_an_item_is_answered(knowledge_base, dispatcher) -> None:
    """DIET reads this English question as out of scope; the plan's 行政服务管家 item answers it."""
    tracker = _typed("Do foreign-invested firms get a service butler here?", "out_of_scope")
    events = asyncio.run(ActionAnswerOutOfScope(knowledge_base).run(dispatcher, tracker, {}))
    assert "行政服务管家" in dispatcher.messages[0]["text"]
    assert events == [SlotSet("topic", "foreign_investment")]


@pytest.mark.parametrize("text", ["今天天气怎么样", "给我讲个笑话嘛", "Which phone brand has the best camera?",
                                  "Can you recommend a good hotpot restaurant near Jiefangbei?"])
def test_out_of_scope_without_a_clear_passage_is_declined(knowledge_base, dispatcher, text) -> None:
    assert asyncio.run(ActionAnswerOutOfScope(knowledge_base).run(dispatcher, _typed(text, "out_of_scope"), {})) == []
    assert [m.get("response") for m in dispatcher.messages] == ["utter_out_of_scope"]


def test_contact_lines_are_the_office_contact_from_the_seeds(knowledge_base) -> None:
    text = "\n".join(contact_lines(knowledge_base))
    assert "63765360" in text and "yzfgshk@163.com" in text and "渝中府办〔2023〕32号" in text


def _user(intent: str) -> dict:
    return {"event": "user", "text": "…", "parse_data": {"intent": {"name": intent}}}


def test_misunderstood_twice_in_a_row_hands_over(knowledge_base, dispatcher) -> None:
    from rasa_sdk import Tracker

    from actions.clarify import misunderstood_in_a_row

    events = [_user("company_opening"), {"event": "bot"}, _user("nlu_fallback"), {"event": "bot"},
              _user("nlu_fallback")]
    latest = {"text": "…", "intent": {"name": "nlu_fallback"}, "intent_ranking": [
        {"name": "tax", "confidence": 0.3}]}
    tracker = Tracker("u", {}, latest, events, False, None, {}, "action_listen")
    assert misunderstood_in_a_row(tracker) == 2
    events_out = asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    assert not dispatcher.messages  # no third ask-back: action_start_handoff speaks next
    assert {"event": "slot", "name": "handoff_reason", "value": "misunderstood", "timestamp": None} in events_out
    assert events_out[-1] == {"event": "followup", "name": "action_start_handoff", "timestamp": None}

    once = Tracker("u", {}, latest, events[:3], False, None, {}, "action_listen")
    assert misunderstood_in_a_row(once) == 1
