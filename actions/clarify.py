"""Ask back with choices when NLU is unsure, instead of guessing a department."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import kb as kb_module
from actions.handoff import handoff_events
from actions.kb import KnowledgeBase
from actions.topics import topic_from_entities

MAX_CHOICES = 3
# After this many misunderstood messages in a row, stop asking back and offer a person.
MISUNDERSTOOD_BEFORE_HANDOFF = 2
# Intents ranked below this share of confidence are not offered as a choice.
MIN_CONFIDENCE = 0.05


def candidate_topics(knowledge_base: KnowledgeBase, tracker: Tracker) -> list[str]:
    """Topics to offer: one the message names, then the best-ranked topic intents."""
    message = tracker.latest_message or {}
    ranked = [
        r["name"] for r in message.get("intent_ranking") or []
        if r.get("name") in knowledge_base.topics and r.get("confidence", 0) >= MIN_CONFIDENCE
    ]
    named = topic_from_entities(knowledge_base, message.get("entities") or [])
    ordered = ([named] if named else []) + ranked
    return list(dict.fromkeys(ordered))[:MAX_CHOICES]


def misunderstood_in_a_row(tracker: Tracker) -> int:
    """How many of the latest user messages, counting back, NLU could not place."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent != "nlu_fallback":
            break
        count += 1
    return count


class ActionClarifyTopic(Action):
    """Offer the 2–3 closest topics as buttons; misunderstood twice in a row, hand over to a person."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()

    def name(self) -> str:
        return "action_clarify_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        if misunderstood_in_a_row(tracker) >= MISUNDERSTOOD_BEFORE_HANDOFF:
            said = [e.get("text") or "" for e in tracker.events if e.get("event") == "user"]
            return handoff_events("misunderstood", None, "未能识别的提问：" + " / ".join(said[-2:]))
        choices = candidate_topics(self.kb, tracker)
        if not choices:
            dispatcher.utter_message(response="utter_default")
            return []
        buttons = [{"title": self.kb.topics[t].title, "payload": f"/{t}"} for t in choices]
        dispatcher.utter_message(text="我不太确定您问的是哪一项，请选一个，或者换个说法告诉我：", buttons=buttons)
        return []
