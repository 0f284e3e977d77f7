"""Conversations as Rasa 3.6 stores them for this assistant, built with Rasa's own event classes.

Every message is the list of events one save of the tracker writes, in the order and shape a
real run wrote them (scripts/run.sh on REST, socket.io, WeChat and WeCom, its tracker store
read back): the user event and its `user_featurization`, slots the form took from the text
before it, the action, its bot messages (cards in `data.custom`, `utter_action` in the
metadata of responses), the slots it set and the `action_listen` that ends the turn; the
console's pause, staff messages and resume; the `EXTERNAL:` trigger after a resolve.
recorded_shapes.json holds the keys that run wrote; tests/insight/test_turns.py checks these
builders against them. tests/insight/writer.py saves them as Rasa does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from rasa.shared.core.events import (
    ActionExecuted, ActiveLoop, BotUttered, ConversationPaused, ConversationResumed,
    DefinePrevUserUtteredFeaturization, Event, FollowupAction, Restarted, SessionStarted, SlotSet, UserUttered)


MODEL_ID = "08c8b0a8e55e422494048adb3f71bf3d"
META = {"model_id": MODEL_ID, "assistant_id": "zhuqi-bangbangtuan"}
DEPARTMENTS = {"scjg": "区市场监管局", "jinrong": "区金融办", "zhujian": "区住房城市建委", "renshe": "区人力社保局",
               "fagai": "区发展改革委", "caizheng": "区财政局"}
FORM_SLOTS = ("handoff_contact", "handoff_company", "handoff_problem")
HANDOFF_SLOTS = (*FORM_SLOTS, "handoff_reason", "handoff_department", "handoff_cancelled")
ASK = {"handoff_contact": ("utter_ask_handoff_contact", "怎么联系您？请留手机号、座机或微信号。"),
       "handoff_company": ("utter_ask_handoff_company", "您的企业（或个体户）名称是？"),
       "handoff_problem": ("utter_ask_handoff_problem", "请用一句话说说需要专员帮您解决什么问题。")}
DECLINE = "不好意思，这个问题不在我的服务范围内。我是渝中区「助企帮帮团」的虚拟专员，只能解答企业在渝中区办事的问题。"
SESSION_SECONDS = 3600  # domain.yml: session_expiration_time 60 (minutes)
TOPIC_BUTTONS = [{"title": "开办企业", "payload": "/company_opening"}, {"title": "税务", "payload": "/tax"}]


class Card(dict):
    """A service_card payload, and the text the message carrying it says (`reply`)."""

    reply: str = ""


def card(topic: str, title: str, department: str, unit: str | None, text: str, aspect: str | None = None,
         missing: str | None = None, answered_by: str | None = None, details: bool = False) -> Card:
    """A service_card with the fields render.card writes (answer None for 「详情」); `text` is
    the message's own text, beside the card."""
    lead = {"id": department, "name": DEPARTMENTS[department]}
    answer = None if details else {
        "unit": unit, "cite": "渝中府办〔2023〕32号 第2条" if unit else None,
        "source": "003_56de8b6776a6fb06.txt" if unit else None, "ref": None, "missing": missing,
        "department": answered_by or department, "channel": None}
    made = Card({"type": "service_card", "topic": topic, "title": title, "aspect": "details" if details else aspect,
                 "answer": answer, "department": lead, "co_departments": [],
                 "policies": [], "channels": [], "sources": []})
    made.reply = text
    return made


def handoff_payload(case_id: int, department: str, status: str) -> dict[str, Any]:
    return {"type": "handoff", "case_id": case_id, "department": department,
            "department_name": DEPARTMENTS[department], "status": status}


class Clock:
    """The conversation's time: each event a little after the last; `at` moves it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def at(self, when: float) -> None:
        self.now = max(self.now, when)

    def tick(self) -> float:
        self.now += 0.01
        return self.now


class Conversation:
    """One conversation; each method adds one message's events (one save), as Rasa writes them."""

    def __init__(self, sender: str, channel: str, start: float) -> None:
        self.sender, self.channel, self.clock = sender, channel, Clock(start)
        self.messages: list[list[Event]] = []
        self.started = False
        self.last_user_at: float | None = None
        self.topic: str | None = None  # what action_session_start carries over
        self.paused = False  # a case open: action_session_start pauses again

    # events ------------------------------------------------------------------------------
    def _action(self, name: str, policy: str | None = "RulePolicy", confidence: float | None = 1.0) -> Event:
        return ActionExecuted(name, policy, confidence, timestamp=self.clock.tick(), metadata=dict(META),
                              hide_rule_turn=policy == "RulePolicy")

    def _listen(self, policy: str | None = "RulePolicy") -> Event:
        return self._action("action_listen", policy, 1.0 if policy else None)

    def _bot(self, text: str, custom: dict | None = None, buttons: list | None = None, utter: str | None = None,
             staff: dict | None = None) -> Event:
        metadata = {**({"utter_action": utter, "template": utter} if utter else {}),
                    **({"staff": staff} if staff else {}), **META}
        data = {"elements": None, "quick_replies": None, "buttons": buttons, "attachment": None, "image": None,
                "custom": custom}
        return BotUttered(text, data, metadata, timestamp=self.clock.tick())

    def _slot(self, name: str, value: Any) -> Event:
        return SlotSet(name, value, timestamp=self.clock.tick(), metadata=dict(META))

    def _user(self, text: str, intent: str, confidence: float | None = 1.0, entities: list | None = None,
              taken: dict[str, str] | None = None, external: bool = False) -> list[Event]:
        """The user event; the slots the form takes from its text; its featurization (none when paused)."""
        message_id = None if external else uuid.uuid4().hex
        intent_data = {"name": intent, **({} if confidence is None else {"confidence": confidence})}
        parse = {"intent": intent_data, "entities": entities or [], "text": text, "message_id": message_id,
                 "metadata": {"is_external": True} if external else {},
                 **({} if external else {"intent_ranking": [intent_data]})}
        metadata = {**({"is_external": True} if external else {}), **META}
        events: list[Event] = []
        now = self.clock.tick()
        if not self.started or now - (self.last_user_at or now) > SESSION_SECONDS:
            # a new session (the first message, or an hour's silence: domain.yml session_config),
            # started by actions/session.py: the topic carried over, paused while a case is open
            events += [self._action("action_session_start", None, 1.0),
                       SessionStarted(timestamp=self.clock.tick(), metadata=dict(META))]
            if self.started and self.topic:
                events.append(self._slot("topic", self.topic))
            if self.started and self.paused:
                events.append(ConversationPaused(self.clock.tick(), dict(META)))
            events.append(self._listen(None))
            self.started = True
        self.last_user_at = now
        events.append(UserUttered(text, intent_data, entities or [], parse, timestamp=self.clock.tick(),
                                  input_channel=self.channel, message_id=message_id, metadata=metadata))
        events += [self._slot(name, value) for name, value in (taken or {}).items()]
        return events

    def _featurized(self) -> Event:
        return DefinePrevUserUtteredFeaturization(False, timestamp=self.clock.tick(), metadata=dict(META))

    def _save(self, events: list[Event]) -> None:
        self.messages.append(events)
        for event in events:
            if isinstance(event, SlotSet) and event.key == "topic":
                self.topic = event.value
            elif isinstance(event, (ConversationPaused, ConversationResumed, Restarted)):
                self.paused = isinstance(event, ConversationPaused)
                self.topic = None if isinstance(event, Restarted) else self.topic

    # messages ------------------------------------------------------------------------------
    def answer(self, text: str, intent: str, confidence: float, answered: dict, action: str = "action_answer_topic",
               at: float | None = None) -> None:
        self.clock.at(at or 0)
        self._save([*self._user(text, intent, confidence), self._featurized(), self._action(action),
                    self._bot(answered.reply if answered["answer"] else "【详情】", answered),
                    self._slot("topic", answered["topic"]), self._listen()])

    def said(self, text: str, intent: str, confidence: float, action: str, reply: str | None = None) -> None:
        """One action and, if any, its plain text: the terminal channel's answer (no card), an
        action that failed (nothing said)."""
        self._save([*self._user(text, intent, confidence), self._featurized(), self._action(action),
                    *([self._bot(reply)] if reply else []), self._listen()])

    def decline(self, text: str, confidence: float = 1.0, at: float | None = None,
                action: str = "action_answer_out_of_scope") -> None:
        """Out of scope: action_answer_out_of_scope sends utter_out_of_scope when no passage
        matches (the rule's own utter_out_of_scope action, before it, said the same)."""
        self.clock.at(at or 0)
        self._save([*self._user(text, "out_of_scope", confidence), self._featurized(),
                    self._action(action), self._bot(DECLINE, utter="utter_out_of_scope"),
                    self._listen()])

    def ask_topic(self, text: str, intent: str = "vague_request", confidence: float = 0.93) -> None:
        """action_clarify_topic on a fragment: utter_ask_topic and its buttons."""
        self._save([*self._user(text, intent, confidence), self._featurized(), self._action("action_clarify_topic"),
                    self._bot("您想问哪方面的事情呢？", buttons=TOPIC_BUTTONS, utter="utter_ask_topic"), self._listen()])

    def choices(self, text: str, confidence: float = 0.45) -> None:
        """action_clarify_topic on an unplaced message: the closest topics as buttons."""
        self._save([*self._user(text, "nlu_fallback", confidence), self._featurized(),
                    self._action("action_clarify_topic"),
                    self._bot("我不太确定您问的是哪一项，请选一个，或者换个说法告诉我：", buttons=TOPIC_BUTTONS), self._listen()])

    def not_understood(self, text: str, confidence: float = 0.45) -> None:
        """action_clarify_topic with no topic to offer: utter_default."""
        self._save([*self._user(text, "nlu_fallback", confidence), self._featurized(),
                    self._action("action_clarify_topic"), self._bot("抱歉，我没太明白您的意思。", utter="utter_default"),
                    self._listen()])

    def chitchat(self, text: str, intent: str, response: str, at: float | None = None) -> None:
        self.clock.at(at or 0)
        self._save([*self._user(text, intent, 0.96), self._featurized(), self._action(response),
                    self._bot("您好！", utter=response), self._listen()])

    def _form_start(self, reason: str, department: str, problem: str | None, followup: bool) -> list[Event]:
        """action_start_handoff (after the trigger's own slots and FollowupAction when another
        action triggered it), then handoff_form asking for the contact."""
        slots = [("handoff_reason", reason), ("handoff_department", department)]
        slots += [("handoff_problem", problem)] if problem else []
        events = [*(self._slot(*s) for s in slots), FollowupAction("action_start_handoff", self.clock.tick(),
                                                                   dict(META))] if followup else []
        events += [self._action("action_start_handoff", "followup_action" if followup else "RulePolicy"),
                   self._bot(f"好的，我为您转人工。您的问题将由{DEPARTMENTS[department]}的「助企帮帮团」企业服务专员处理。"),
                   *(self._slot(*s) for s in slots), FollowupAction("handoff_form", self.clock.tick(), dict(META)),
                   self._action("handoff_form", "followup_action"),
                   ActiveLoop("handoff_form", self.clock.tick(), dict(META))]
        events += [self._slot("handoff_problem", problem)] if problem else []
        utter, ask = ASK["handoff_contact"]
        return events + [self._slot("requested_slot", "handoff_contact"), self._bot(ask, utter=utter), self._listen()]

    def hand_over(self, text: str, intent: str, confidence: float, reason: str, department: str,
                  problem: str | None = None, answered: dict | None = None, at: float | None = None) -> None:
        """action_start_handoff and the form asking for a contact; after an answer (needs_person)
        the handoff follows the card as the action's FollowupAction."""
        self.clock.at(at or 0)
        events = [*self._user(text, intent, confidence), self._featurized()]
        if answered:
            events += [self._action("action_answer_topic"), self._bot(answered.reply, answered),
                       self._slot("topic", answered["topic"])]
        self._save(events + self._form_start(reason, department, problem, followup=bool(answered)))

    def rate_answer_badly(self, level: str, topic: str, department: str, reason: str, problem: str) -> None:
        """The widget's 差评 of an answer reaches the dialogue as /answer_rated_badly{…}."""
        values = {"rating_level": level, "department": department, "topic": topic, "rating_reason": reason}
        text = "/answer_rated_badly" + json.dumps(values, ensure_ascii=False)
        entities = [{"entity": k, "value": v, "start": 19, "end": len(text), "extractor": "RegexMessageHandler"}
                    for k, v in values.items()]
        self._save([*self._user(text, "answer_rated_badly", 1.0, entities), self._featurized(),
                    *self._form_start("bad_rating", department, problem, followup=False)])

    def form(self, text: str, slot: str, value: str, next_slot: str, intent: str = "nlu_fallback",
             confidence: float = 0.45) -> None:
        """An answer to the form (its text taken into `slot`, validated to `value`), the next asked."""
        utter, ask = ASK[next_slot]
        self._save([*self._user(text, intent, confidence, taken={slot: text}), self._featurized(),
                    self._action("handoff_form"), self._slot(slot, value), self._slot("requested_slot", next_slot),
                    self._bot(ask, utter=utter), self._listen()])

    def form_question(self, text: str, intent: str, confidence: float, answered: dict) -> None:
        """A question typed where the contact was asked: answered on the topic, then asked again."""
        utter, ask = ASK["handoff_contact"]
        self._save([*self._user(text, intent, confidence, taken={"handoff_contact": text}), self._featurized(),
                    self._action("handoff_form"), self._bot(answered.reply, answered),
                    self._bot("如需专员跟进，请留手机号、座机或微信号；不需要了回复「取消」。"),
                    self._slot("handoff_contact", None), self._slot("requested_slot", "handoff_contact"),
                    self._bot(ask, utter=utter), self._listen()])

    def _closing(self) -> list[Event]:
        return [self._slot("requested_slot", None), ActiveLoop(None, self.clock.tick(), dict(META)),
                self._action("action_open_case")]

    def form_done(self, text: str, slot: str, value: str, case_id: int, department: str,
                  intent: str = "nlu_fallback", confidence: float = 0.45) -> None:
        """The last answer: action_open_case writes the case, says so and pauses the bot."""
        self._save([*self._user(text, intent, confidence, taken={slot: text}), self._featurized(),
                    self._action("handoff_form"), self._slot(slot, value), *self._closing(),
                    self._bot(f"已为您转人工：案件 #{case_id}。", handoff_payload(case_id, department, "waiting")),
                    *[self._slot(s, None) for s in HANDOFF_SLOTS],
                    ConversationPaused(self.clock.tick(), dict(META)), self._listen(None)])

    def form_cancel(self, text: str = "取消") -> None:
        self._save([*self._user(text, "nlu_fallback", 0.45, taken={"handoff_contact": text}), self._featurized(),
                    self._action("handoff_form"), *[self._slot(s, "未提供") for s in FORM_SLOTS],
                    self._slot("handoff_cancelled", True), *self._closing(),
                    self._bot("好的，已取消转人工。您可以继续问我，需要时再说「转人工」。"),
                    *[self._slot(s, None) for s in HANDOFF_SLOTS], self._listen()])

    def while_paused(self, text: str, intent: str = "nlu_fallback", confidence: float = 0.45,
                     at: float | None = None) -> None:
        """A message to a paused bot: logged, nothing predicted."""
        self.clock.at(at or 0)
        self._save(self._user(text, intent, confidence))

    def staff_says(self, text: str, pause: bool = False, at: float | None = None) -> None:
        """The console's POST …/tracker/events: a bot event from staff (with a pause when claiming)."""
        self.clock.at(at or 0)
        staff = {"username": "zhang", "name": "张三", "department": "区发展改革委"}
        events = [ConversationPaused(self.clock.tick(), dict(META))] if pause else []
        self._save(events + [BotUttered(text, {"custom": None}, {"staff": staff, **META}, timestamp=self.clock.tick())])

    def resumed(self, case_id: int, department: str, at: float | None = None) -> None:
        """The console resolves: resume + listen, then the trigger_intent handoff_resolved (two saves)."""
        self.clock.at(at or 0)
        self._save([ConversationResumed(self.clock.tick(), dict(META)), self._listen(None)])
        buttons = [{"title": level, "payload": "/rate_service" + json.dumps(
            {"rating_level": level, "case_id": str(case_id)}, ensure_ascii=False)}
            for level in ("非常满意", "满意", "基本满意", "不满意", "非常不满意")]
        self._save([*self._user("EXTERNAL: handoff_resolved", "handoff_resolved", None,
                                [{"entity": "case_id", "value": str(case_id)}], external=True), self._featurized(),
                    self._action("action_ask_service_rating"),
                    self._bot(f"工作人员已办结您的问题（案件 #{case_id}），智能助手继续为您服务。请为这次人工服务评价：",
                              handoff_payload(case_id, department, "resolved"), buttons), self._listen()])

    def rate_case(self, level: str, case_id: int, bad_department: str | None = None) -> None:
        """/rate_service{…}: thanks, or (a 差评) the follow-up handoff."""
        text = "/rate_service" + json.dumps({"rating_level": level, "case_id": str(case_id)}, ensure_ascii=False)
        entities = [{"entity": "rating_level", "value": level}, {"entity": "case_id", "value": str(case_id)}]
        events = [*self._user(text, "rate_service", 1.0, entities), self._featurized(),
                  self._action("action_rate_service")]
        if bad_department is None:
            self._save(events + [self._bot("谢谢您的评价！还有别的企业办事问题，随时问我。"), self._listen()])
            return
        problem = f"对案件 #{case_id} 的办理评价为「{level}」，需要跟进。"
        self._save(events + self._form_start("bad_rating", bad_department, problem, followup=True))

    def restart(self, case_id: int, department: str, at: float | None = None) -> None:
        """/restart (「取消」 on WeChat): the open case closed, the conversation started over."""
        self.clock.at(at or 0)
        self._save([*self._user("/restart", "restart", 1.0), self._featurized(), self._action("action_restart"),
                    self._bot(f"好的，已结束人工服务（案件 #{case_id}），智能助手继续为您服务。",
                              handoff_payload(case_id, department, "resolved")),
                    Restarted(self.clock.tick(), dict(META)), self._action("action_session_start", "followup_action"),
                    SessionStarted(timestamp=self.clock.tick(), metadata=dict(META)), self._listen(None)])
