"""Asking back with choices; misunderstood twice, a handoff; the seeds' contact lines."""

from __future__ import annotations

import asyncio

from actions.clarify import ActionClarifyTopic
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
    tracker = tracker_factory(intent="nlu_fallback", ranking=[{"name": "greet", "confidence": 0.3}])
    asyncio.run(ActionClarifyTopic(knowledge_base).run(dispatcher, tracker, {}))
    assert dispatcher.messages[0]["response"] == "utter_default"


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
