"""Answer a topic question, and follow-ups (materials, department, time, channel) on it."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import kb as kb_module
from actions import render
from actions.handoff import handoff_events, typed_text
from actions.kb import KnowledgeBase

FOLLOWUP_ASPECTS = {
    "ask_materials": "materials",
    "ask_department": "department",
    "ask_time_limit": "time",
    "ask_channel": "channel",
}


def topic_from_entities(knowledge_base: KnowledgeBase, entities: list[dict[str, Any]]) -> str | None:
    """The topic the message names: a topic keyword first, then a channel or product."""
    for wanted in ("topic", "product", "channel"):
        for entity in entities:
            if entity.get("entity") == wanted:
                topic = knowledge_base.topic_for_entity(wanted, str(entity.get("value")))
                if topic:
                    return topic
    return None


def _mentions_own_channel(knowledge_base: KnowledgeBase, topic_id: str, entities: list[dict[str, Any]]) -> bool:
    """The message names a channel or product the topic itself uses (渝快办 serves many)."""
    topic = knowledge_base.topics[topic_id]
    own = set(topic.channels) | set(topic.products)
    return any(e.get("entity") in ("channel", "product") and e.get("value") in own for e in entities)


def answered_in_english(tracker: Tracker) -> bool:
    """The normalizer marks a message written mostly in English (buttons never are)."""
    return (tracker.latest_message or {}).get("typed_language") == "en"


def with_english(knowledge_base: KnowledgeBase, tracker: Tracker, topic, text: str) -> str:
    """Prefix a short English line when the question was in English."""
    if answered_in_english(tracker):
        return render.english_line(knowledge_base, topic) + "\n" + text
    return text


def current_topic(knowledge_base: KnowledgeBase, tracker: Tracker) -> str | None:
    """The latest message's topic: its intent; else the conversation's topic when the message
    names nothing else (or only a channel that topic uses); else the topic the message names."""
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name")
    if intent in knowledge_base.topics:
        return intent
    entities = message.get("entities") or []
    slot = tracker.get_slot("topic")
    slot = slot if slot in knowledge_base.topics else None
    if slot and _mentions_own_channel(knowledge_base, slot, entities):
        return slot
    return topic_from_entities(knowledge_base, entities) or slot


class ActionAnswerTopic(Action):
    """Answer with the lead department, policy items and channels of the message's topic."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()

    def name(self) -> str:
        return "action_answer_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        topic = self.kb.topic(current_topic(self.kb, tracker))
        if topic is None:
            dispatcher.utter_message(response="utter_ask_topic")
            return []
        text = with_english(self.kb, tracker, topic, render.answer(self.kb, topic))
        dispatcher.utter_message(text=text, json_message=render.card(self.kb, topic))
        if topic.needs_person:  # a dispute: the answer says who, a specialist takes it from there
            return [SlotSet("topic", topic.id), *handoff_events("needs_person", self.kb.lead_of(topic)[0].id,
                                                                typed_text(tracker))]
        return [SlotSet("topic", topic.id)]


class ActionAnswerFollowup(Action):
    """Answer 「那要多久」「找哪个部门」… on the topic the conversation is on."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()

    def name(self) -> str:
        return "action_answer_followup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        aspect = FOLLOWUP_ASPECTS.get(intent, "channel")
        topic = self.kb.topic(current_topic(self.kb, tracker))
        if topic is None:
            dispatcher.utter_message(response="utter_ask_topic")
            return []
        dispatcher.utter_message(
            text=with_english(self.kb, tracker, topic, render.followup(self.kb, topic, aspect)),
            json_message=render.card(self.kb, topic, aspect),
        )
        return [SlotSet("topic", topic.id)]
