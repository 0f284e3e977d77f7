"""One record per user turn, derived from the events Rasa's SQL tracker store holds.

A turn is a user event and what the assistant did in reply: the events after it up to the
next `action_listen` (one save of the tracker: Rasa writes a message's events together).
Later events of the conversation — a specialist's replies, `resume`, slots reset — only move
the conversation's state (paused, form asking, topic), which decides what the next user event
is. The rules, from actions/ and domain.yml:

- **paused** — the conversation was paused (a case open, `ConversationPaused`): the message
  goes to the specialist, the bot does nothing. Not a question; no text kept.
- **control** — `/restart` (the widget's 「结束人工服务」, WeChat 「取消」), the console's
  `EXTERNAL: handoff_resolved` trigger, Rasa's `/session_start`.
- **rating** — `/rate_service{…}` (a resolved case) or `/answer_rated_badly{…}` (the widget's 差评).
- **form** — `handoff_form` was asking for a contact, the company or the problem: an answer to
  the form, never kept as text (a contact is personal data the case alone holds). A form turn
  the bot answered with a service card (a question typed where the contact was asked) is a
  question, answered — still without its text.
- **question**, one outcome each, in this order:
  - `handed_over`: `action_start_handoff` ran (转人工, a complaint, a dispute answered with
    `needs_person`, misunderstood twice, or the case already open);
  - `answered`: a `service_card` was sent (actions/topics.py, clarify.py), or an answering
    action's plain text on the terminal channel, which gets no card;
  - `out_of_scope`: `utter_out_of_scope` (the rule's own response, or sent by
    `action_answer_out_of_scope` when no passage matches);
  - `asked_back`: `utter_ask_topic`, `utter_default`, or an answering action's topic buttons
    (action_clarify_topic's 「我不太确定您问的是哪一项」).
- **chitchat** — utter_greet, utter_goodbye, utter_thank, utter_capabilities.
- **unavailable** — the action server failed and the user got rasa_patches' apology
  (「抱歉，智能助手这会儿没能处理您的问题…」, metadata `apology: service_unavailable`): neither an
  answer nor a question the assistant chose not to answer.
- **no_reply** (nothing said back) and **other** (something else said).

Topic, unit, aspect and `missing` come from the card (`answer.unit`, `answer.missing`); the
department is the one the reply named (`answer.department`, else the card's lead) or, handed
over, `handoff_department`. The model is the event's `metadata.model_id`; the KB version the
card's `kb_version` (actions/kb.py content_version: a digest of the kb/ files served).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from insight.privacy import mask

# the district's day: China keeps UTC+8 all year
TIMEZONE = timezone(timedelta(hours=8), "Asia/Shanghai")

FORM = "handoff_form"
HANDOFF_ACTION = "action_start_handoff"
ANSWER_ACTIONS = frozenset({"action_answer_topic", "action_answer_followup", "action_answer_details",
                            "action_clarify_topic", "action_answer_out_of_scope"})
ASK_BACK_RESPONSES = frozenset({"utter_ask_topic", "utter_default"})
OUT_OF_SCOPE_RESPONSES = frozenset({"utter_out_of_scope"})
CHITCHAT_RESPONSES = frozenset({"utter_greet", "utter_goodbye", "utter_thank", "utter_capabilities"})
CONTROL_INTENTS = frozenset({"restart", "session_start", "handoff_resolved"})
RATING_INTENTS = frozenset({"rate_service", "answer_rated_badly"})
EXTERNAL_PREFIX = "EXTERNAL: "  # Rasa's text for a triggered intent (UserUttered.create_external)
OUTCOMES = ("answered", "asked_back", "out_of_scope", "handed_over")
KINDS = ("question", "chitchat", "form", "rating", "control", "paused", "unavailable", "no_reply", "other")
# the apology rasa_patches says when the action server fails (its UNAVAILABLE_MARK; a test keeps them equal)
APOLOGY_MARK = "service_unavailable"
# the kinds whose (masked) text is kept: what the review inbox reads
TEXT_KINDS = frozenset({"question", "chitchat", "unavailable", "no_reply", "other"})
# the tracker store's event types that matter here; the rest (user_featurization, followup…) are skipped
USED_TYPES = frozenset({"user", "bot", "action", "slot", "active_loop", "pause", "resume", "session_started",
                        "restart", "reset_slots"})


def local_day(timestamp: float) -> date:
    """The district's calendar day of a Unix time."""
    return datetime.fromtimestamp(timestamp, TIMEZONE).date()


@dataclass(frozen=True)
class Turn:
    """One user message and what became of it."""

    event_id: int  # the tracker store's id of the user event: one turn per id
    conversation: str  # privacy.conversation_key of the sender id
    channel: str
    at: float
    kind: str
    outcome: str | None = None
    text: str | None = None
    intent: str | None = None
    confidence: float | None = None
    topic: str | None = None
    department: str | None = None
    unit: str | None = None
    aspect: str | None = None
    missing: str | None = None
    handoff_reason: str | None = None
    model_id: str | None = None
    kb_version: str | None = None

    @property
    def day(self) -> date:
        return local_day(self.at)


@dataclass
class ConversationState:
    """What of a conversation decides its next turn: paused, the form asking, its topic."""

    paused: bool = False
    active_loop: str | None = None
    requested_slot: str | None = None
    topic: str | None = None
    last_event_id: int = 0

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind in ("session_started", "restart"):  # Rasa resets the tracker (a new session un-pauses)
            self.paused, self.active_loop, self.requested_slot, self.topic = False, None, None, None
        elif kind == "reset_slots":
            self.requested_slot, self.topic = None, None
        elif kind == "active_loop":
            self.active_loop = event.get("name")
        elif kind == "slot" and event.get("name") == "requested_slot":
            self.requested_slot = event.get("value")
        elif kind == "slot" and event.get("name") == "topic":
            self.topic = event.get("value")


def _card(event: dict[str, Any]) -> dict[str, Any] | None:
    custom = (event.get("data") or {}).get("custom")
    return custom if isinstance(custom, dict) and custom.get("type") == "service_card" else None


def _slots(events: list[dict[str, Any]], name: str) -> list[Any]:
    return [e.get("value") for e in events if e.get("event") == "slot" and e.get("name") == name]


def _last_set(events: list[dict[str, Any]], name: str) -> Any:
    values = [v for v in _slots(events, name) if v not in (None, "")]
    return values[-1] if values else None


@dataclass
class _Reply:
    """What the assistant did after one user message, read from its events."""

    handed_over: bool = False
    out_of_scope: bool = False
    asked_back: bool = False
    chitchat: bool = False
    plain_answer: bool = False
    said: bool = False
    unavailable: bool = False  # the apology for a failed action server
    card: dict[str, Any] | None = None


def _read_reply(events: list[dict[str, Any]]) -> _Reply:
    reply, action = _Reply(), None
    for event in events:
        kind = event.get("event")
        if kind == "action":
            action = event.get("name")
            reply.handed_over |= action == HANDOFF_ACTION
            reply.out_of_scope |= action in OUT_OF_SCOPE_RESPONSES
            reply.chitchat |= action in CHITCHAT_RESPONSES
        elif kind == "bot":
            reply.said = True
            if (event.get("metadata") or {}).get("apology") == APOLOGY_MARK:
                reply.unavailable = True  # not the answer its action would have given
                continue
            card = _card(event)
            if card is not None:
                reply.card = card  # the last card is the answer given
                continue
            response = (event.get("metadata") or {}).get("utter_action")
            buttons = (event.get("data") or {}).get("buttons")
            if response in ASK_BACK_RESPONSES or (action in ANSWER_ACTIONS and buttons):
                reply.asked_back = True
            elif response in OUT_OF_SCOPE_RESPONSES:
                reply.out_of_scope = True
            elif action in ANSWER_ACTIONS and not response:
                reply.plain_answer = True  # the terminal channel: an answer without its card
    return reply


def _outcome(reply: _Reply) -> str | None:
    if reply.handed_over:
        return "handed_over"
    if reply.card is not None or reply.plain_answer:
        return "answered"
    if reply.out_of_scope:
        return "out_of_scope"
    if reply.asked_back:
        return "asked_back"
    return None


def _kind(user: dict[str, Any], state: ConversationState, intent: str | None, reply: _Reply) -> tuple[str, str | None]:
    """(kind, outcome) of a user event, given the conversation's state before it."""
    if state.paused and intent != "restart":
        return "paused", None
    if intent in CONTROL_INTENTS or str(user.get("text") or "").startswith(EXTERNAL_PREFIX):
        return "control", None
    if intent in RATING_INTENTS:
        return "rating", None
    if state.active_loop == FORM:
        return ("question", "answered") if reply.card is not None else ("form", None)
    if reply.unavailable and reply.card is None and not reply.handed_over:
        return "unavailable", None
    outcome = _outcome(reply)
    if outcome:
        return "question", outcome
    if reply.chitchat:
        return "chitchat", None
    return ("other", None) if reply.said else ("no_reply", None)


def classify(event_id: int, conversation: str, user: dict[str, Any], after: list[dict[str, Any]],
             state: ConversationState) -> Turn:
    """The turn of one user event: `after` are the events up to the next listen, `state` the
    conversation's state just before the user event."""
    parse = user.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    confidence = (parse.get("intent") or {}).get("confidence")
    reply = _read_reply(after)
    kind, outcome = _kind(user, state, intent, reply)
    # what the reply was about: a question's card and handoff, a rating's handoff; a paused
    # message's events up to the next listen are the specialist's and the next session's
    card = (reply.card if kind == "question" else None) or {}
    answer = card.get("answer") or {}
    department = answer.get("department") or (card.get("department") or {}).get("id")
    topic = card.get("topic") or (_last_set(after, "topic") if kind == "question" else None)
    if outcome == "handed_over":
        department = _last_set(after, "handoff_department") or department
        topic = topic or state.topic
    elif kind == "rating":
        department = _last_set(after, "handoff_department")
    in_form = kind == "form" or state.active_loop == FORM
    text = mask(str(user.get("text") or "")) if kind in TEXT_KINDS and not in_form else None
    model_id = (user.get("metadata") or {}).get("model_id") or next(
        ((e.get("metadata") or {}).get("model_id") for e in after if (e.get("metadata") or {}).get("model_id")), None)
    return Turn(
        event_id=event_id, conversation=conversation, channel=str(user.get("input_channel") or "unknown"),
        at=float(user.get("timestamp") or 0.0), kind=kind, outcome=outcome, text=text, intent=intent,
        confidence=float(confidence) if confidence is not None else None, topic=topic, department=department,
        unit=answer.get("unit"), aspect=card.get("aspect"), missing=answer.get("missing"),
        handoff_reason=_last_set(after, "handoff_reason") if kind in ("question", "rating") else None,
        model_id=model_id,
        kb_version=card.get("kb_version") or answer.get("kb_version"),
    )


@dataclass
class _Open:
    event_id: int
    user: dict[str, Any]
    state: ConversationState
    after: list[dict[str, Any]] = field(default_factory=list)
    listened: bool = False


class Deriver:
    """Turns from tracker-store rows fed in id order; each conversation's state carried over
    from the last sync (`states`, by conversation key) and left there for the next."""

    def __init__(self, key_of: Callable[[str], str], states: dict[str, ConversationState] | None = None) -> None:
        self.key_of = key_of
        self.states = states if states is not None else {}
        self.changed: set[str] = set()
        self._open: dict[str, _Open] = {}

    def feed(self, event_id: int, sender_id: str, type_name: str, data: str | dict[str, Any]) -> Turn | None:
        """Take one row of the events table; a turn when this row ends the previous one."""
        if type_name not in USED_TYPES:
            return None
        event = json.loads(data) if isinstance(data, str) else data
        key = self.key_of(sender_id)
        state = self.states.setdefault(key, ConversationState())
        finished = None
        if type_name == "user":
            finished = self._close(key)
            self._open[key] = _Open(event_id, event, replace(state))
        elif key in self._open and not self._open[key].listened:
            self._open[key].after.append(event)
            self._open[key].listened = type_name == "action" and event.get("name") == "action_listen"
        state.apply(event)
        state.last_event_id = max(state.last_event_id, event_id)
        self.changed.add(key)
        return finished

    def _close(self, key: str) -> Turn | None:
        opened = self._open.pop(key, None)
        if opened is None:
            return None
        return classify(opened.event_id, key, opened.user, opened.after, opened.state)

    def finish(self) -> list[Turn]:
        """The turns still open: everything read so far (a message's events are saved together)."""
        return [turn for turn in (self._close(key) for key in list(self._open)) if turn is not None]
