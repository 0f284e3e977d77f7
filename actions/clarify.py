"""Ask back with choices when NLU is unsure, instead of guessing a department.

A short or vague message (「在哪办」「要多久」「办个证」) on a conversation that already has a
topic is a follow-up on it, answered like one; without a topic it gets the likeliest topics.
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import answers, ranker
from actions.base import KnowledgeAction
from actions.handoff import handoff_events, typed_text
from actions.kb import KnowledgeBase
from actions.question import analyse
from actions.topics import reply, send, send_found, topic_from_entities

MAX_CHOICES = 3
# After this many misunderstood messages in a row, stop asking back and offer a person.
MISUNDERSTOOD_BEFORE_HANDOFF = 2
# Intents ranked below this share of confidence are not offered as a choice.
MIN_CONFIDENCE = 0.05
# a message this short (or a vague request) on a conversation with a topic is a follow-up on it
FOLLOWUP_CHARS = 8
VAGUE = "vague_request"


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


def is_fragment(tracker: Tracker) -> bool:
    """A short or vague message (「在哪办」「办个证」): only the conversation's topic gives it sense."""
    message = tracker.latest_message or {}
    text = typed_text(tracker) or message.get("text") or ""
    intent = (message.get("intent") or {}).get("name")
    return intent == VAGUE or len("".join(text.split())) <= FOLLOWUP_CHARS


def asks_on_topic(knowledge_base: KnowledgeBase, tracker: Tracker, topic) -> bool:
    """The message asks for a kind of fact (「那费用呢」), is a vague request (「办个证」), or
    shares words with the topic's units; 「好的」「嗯」 do none of these."""
    message = tracker.latest_message or {}
    text = message.get("text") or ""
    ask = analyse(text, typed_text(tracker))
    if ask.aspects or ask.missing or (message.get("intent") or {}).get("name") == VAGUE:
        return True
    ranked = ranker.default().rank(text, topic.id, ask, only_topic=True)
    return bool(ranked) and ranked[0].bm25 > 0


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


class ActionClarifyTopic(KnowledgeAction):
    """Offer the 2–3 closest topics as buttons; misunderstood twice in a row, hand over to a person."""

    def name(self) -> str:
        return "action_clarify_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        topic = self.kb.topic(tracker.get_slot("topic"))
        fragment = is_fragment(tracker)
        message = tracker.latest_message or {}
        text, typed, entities = message.get("text") or "", typed_text(tracker), message.get("entities") or []
        choices = candidate_topics(self.kb, tracker)
        found = answers.for_department(self.kb, text, typed, entities=entities,
                                       fallback_topic=self.kb.topic(choices[0]) if choices else topic)
        if found is None and not fragment:
            found = answers.unplaced(self.kb, text, typed, self.kb.topic(choices[0]) if choices else None,
                                     entities=entities)
        if found is not None:  # the words match one passage clearly: answer it on its topic
            return send_found(self.kb, dispatcher, tracker, found)
        if topic is not None and asks_on_topic(self.kb, tracker, topic):  # a follow-up on the topic
            text, card = reply(self.kb, tracker, topic, only_topic=True)
            send(dispatcher, tracker, text, card)
            return []
        return ask_back(self.kb, dispatcher, tracker, fragment)


class ActionAnswerOutOfScope(KnowledgeAction):
    """A message NLU calls out of scope: answered from the passage its words match clearly (an
    English 「service butler for foreign-invested companies」 reads like the out-of-scope examples
    to DIET, yet the plan has the item), or a named department's contact; else declined, with
    utter_out_of_scope (insight counts the decline by that response's name)."""

    def name(self) -> str:
        return "action_answer_out_of_scope"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        message = tracker.latest_message or {}
        text, typed, entities = message.get("text") or "", typed_text(tracker), message.get("entities") or []
        found = None
        if not is_fragment(tracker):  # 「讲个笑话」: too few words to match anything clearly
            found = (answers.for_department(self.kb, text, typed, entities=entities)
                     or answers.search(self.kb, text, typed, entities=entities))
        if found is None:
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        return send_found(self.kb, dispatcher, tracker, found)


def ask_back(knowledge_base: KnowledgeBase, dispatcher: CollectingDispatcher, tracker: Tracker,
             fragment: bool = True) -> list[EventType]:
    """The likeliest topics as buttons; misunderstood twice in a row, a person instead."""
    if misunderstood_in_a_row(tracker) >= MISUNDERSTOOD_BEFORE_HANDOFF:
        said = [e.get("text") or "" for e in tracker.events if e.get("event") == "user"]
        return handoff_events("misunderstood", None, "未能识别的提问：" + " / ".join(said[-2:]))
    choices = candidate_topics(knowledge_base, tracker)
    if not choices:  # a fragment gets the common topics to choose from
        dispatcher.utter_message(response="utter_ask_topic" if fragment else "utter_default")
        return []
    buttons = [{"title": knowledge_base.topics[t].title, "payload": f"/{t}"} for t in choices]
    dispatcher.utter_message(text="我不太确定您问的是哪一项，请选一个，或者换个说法告诉我：", buttons=buttons)
    return []
