"""Answer a topic question with the unit that answers it, follow-ups on it, and 「详情」.

The NLU routes the message to a topic; actions/answers.py picks the answer unit; render
writes the two visible lines and the card. 「详情」 (`ask_details`) returns the topic's full
answer: every item, co-responsible unit, channel and figure.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import answers
from actions.base import KnowledgeAction
from actions import render
from actions.handoff import handoff_events, typed_text
from actions.kb import KnowledgeBase
from actions.question import analyse

FOLLOWUP_ASPECTS = {
    "ask_materials": "materials",
    "ask_department": "department",
    "ask_time_limit": "time",
    "ask_channel": "channel",
    "ask_cost": "cost",
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


# a fragment asking for a fact (「地址呢」「多少天」) routed to another topic with less than
# this confidence is taken as a follow-up on the conversation's topic
FRAGMENT_CHARS = 6
FRAGMENT_CONFIDENCE = 0.8
# a message this short on the conversation's topic is read with the question before it
CONTEXT_CHARS = 8


def _asks_about_current(message: dict[str, Any]) -> bool:
    text = "".join(str(message.get("raw_text") or message.get("text") or "").split())
    confidence = (message.get("intent") or {}).get("confidence", 1.0)
    ask = analyse(message.get("text") or "", text)
    return len(text) <= FRAGMENT_CHARS and confidence < FRAGMENT_CONFIDENCE and bool(ask.aspects or ask.missing)


def _names_topic(knowledge_base: KnowledgeBase, topic_id: str, message: dict[str, Any]) -> bool:
    """The message names the topic: one of its keywords, its title, or an entity pointing at it."""
    topic = knowledge_base.topics[topic_id]
    text = str(message.get("text") or "")
    if any(word in text for word in (topic.title, *topic.keywords)):
        return True
    return topic_from_entities(knowledge_base, message.get("entities") or []) == topic_id


def current_topic(knowledge_base: KnowledgeBase, tracker: Tracker) -> str | None:
    """The latest message's topic: its intent; else the conversation's topic when the message
    names nothing else (or only a channel that topic uses); else the topic the message names."""
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name")
    slot = tracker.get_slot("topic")
    slot = slot if slot in knowledge_base.topics else None
    if intent in knowledge_base.topics:
        named = _names_topic(knowledge_base, intent, message)
        return slot if slot and not named and _asks_about_current(message) else intent
    entities = message.get("entities") or []
    if slot and _mentions_own_channel(knowledge_base, slot, entities):
        return slot
    return topic_from_entities(knowledge_base, entities) or slot


def reply(knowledge_base: KnowledgeBase, tracker: Tracker, topic, *, only_topic: bool = False,
          hint: str | None = None, with_context: bool = False) -> tuple[str, dict[str, Any]]:
    """The visible text and the card for the latest message on `topic`; a follow-up
    (`only_topic`, or `with_context`) is searched with the question before it."""
    message = tracker.latest_message or {}
    found = answers.answer(
        knowledge_base, topic, message.get("text") or "", typed_text(tracker),
        entities=message.get("entities") or [], only_topic=only_topic, hint=hint,
        context=earlier_question(tracker) if only_topic or with_context else "",
    )
    return rendered(knowledge_base, tracker, found)


# the terminal chat (`make shell`): Rasa's console channel prints a custom payload as its JSON,
# ~110 lines for a card, so there the answer goes out as its text alone
TERMINAL_CHANNEL = "cmdline"


def send(dispatcher: CollectingDispatcher, tracker: Tracker, text: str, card: dict[str, Any]) -> None:
    """An answer's text with its card, on every channel but the terminal's."""
    if tracker.get_latest_input_channel() == TERMINAL_CHANNEL:
        dispatcher.utter_message(text=text)
    else:
        dispatcher.utter_message(text=text, json_message=card)


def earlier_question(tracker: Tracker) -> str:
    """The user's message before the latest one, as the NLU read it: 「饭店要接天然气」 gives
    「那要几天」 its subject."""
    said = [e for e in tracker.events if e.get("event") == "user"]
    if len(said) < 2:
        return ""
    earlier = said[-2]
    text = (earlier.get("parse_data") or {}).get("text") or earlier.get("text") or ""
    return "" if str(text).startswith("/") else str(text)


def rendered(knowledge_base: KnowledgeBase, tracker: Tracker, found: answers.Answer) -> tuple[str, dict[str, Any]]:
    """The text (English first line for an English question) and the card of an answer."""
    topic = found.topic
    if answered_in_english(tracker):
        text = render.short_english(knowledge_base, found)
    else:
        text = render.short(knowledge_base, found)
    return text, render.card(knowledge_base, topic, found.ask.primary, render.answer_record(found))


def send_found(knowledge_base: KnowledgeBase, dispatcher: CollectingDispatcher, tracker: Tracker,
               found: answers.Answer) -> list[EventType]:
    """An answer found off the NLU's route (a search, a named department): sent, on its own topic."""
    text, card = rendered(knowledge_base, tracker, found)
    send(dispatcher, tracker, text, card)
    return [SlotSet("topic", found.topic.id)]


class ActionAnswerTopic(KnowledgeAction):
    """Answer with the unit that answers the message, on its topic."""

    def name(self) -> str:
        return "action_answer_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        topic = self.kb.topic(current_topic(self.kb, tracker))
        if topic is None:
            dispatcher.utter_message(response="utter_ask_topic")
            return []
        # a short question on the conversation's own topic (「公司有几个商标和专利」 → 「能拿去贷款不」)
        # is about what was said before it: searched with it
        short = len("".join(typed_text(tracker).split())) <= CONTEXT_CHARS
        text, card = reply(self.kb, tracker, topic, with_context=short and topic.id == tracker.get_slot("topic"))
        send(dispatcher, tracker, text, card)
        if topic.needs_person:  # a dispute: the answer says who, a specialist takes it from there
            return [SlotSet("topic", topic.id), *handoff_events("needs_person", self.kb.lead_of(topic)[0].id,
                                                                typed_text(tracker))]
        return [SlotSet("topic", topic.id)]


class ActionAnswerFollowup(KnowledgeAction):
    """Answer 「那要多久」「要钱吗」「在哪里办」… on the topic the conversation is on."""

    def name(self) -> str:
        return "action_answer_followup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        topic = self.kb.topic(current_topic(self.kb, tracker))
        if topic is None:  # 「要多久」 with no topic yet: ask back with the likeliest topics
            from actions.clarify import ask_back, candidate_topics, is_fragment  # clarify imports this module

            # a whole question NLU read as a bare 「要多久」 (「How many days does it take to register
            # unemployment…」) is answered when its words match one passage clearly
            found = None
            if not is_fragment(tracker):
                message, choices = tracker.latest_message or {}, candidate_topics(self.kb, tracker)
                found = answers.unplaced(self.kb, message.get("text") or "", typed_text(tracker),
                                         self.kb.topic(choices[0]) if choices else None,
                                         entities=message.get("entities") or [])
            if found is None:
                return ask_back(self.kb, dispatcher, tracker)
            return send_found(self.kb, dispatcher, tracker, found)
        text, card = reply(self.kb, tracker, topic, only_topic=True, hint=FOLLOWUP_ASPECTS.get(intent))
        send(dispatcher, tracker, text, card)
        return [SlotSet("topic", topic.id)]


class ActionAnswerDetails(KnowledgeAction):
    """「详情」: the full answer of the conversation's topic (items, units, channels, figures)."""

    def name(self) -> str:
        return "action_answer_details"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        topic = self.kb.topic(current_topic(self.kb, tracker))
        if topic is None:
            dispatcher.utter_message(response="utter_ask_topic")
            return []
        text = with_english(self.kb, tracker, topic, render.answer(self.kb, topic))
        send(dispatcher, tracker, text, render.card(self.kb, topic, "details"))
        return [SlotSet("topic", topic.id)]
