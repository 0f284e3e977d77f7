"""Hand a conversation to a 帮帮团 specialist: ask what they need, open a case, pause the bot.

Triggers: the user asks for a person or complains (rules), NLU misunderstood twice in a row
(clarify.py), a topic that needs a person was answered (topics.py), a 差评 of an answer or of
a resolved case (rating.py). Each sets why and for whom (`handoff_reason`, `handoff_department`)
and runs `action_start_handoff`, which asks through `handoff_form` for a contact, the company
and the problem — each optional: 「跳过」 skips one, 「取消」 cancels the handoff. Then
`action_open_case` writes the case to SQL (cases/repository.py) and pauses the conversation:
the bot stays silent and the user's messages go to the specialist, until the console resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import kb as kb_module
from actions.kb import KnowledgeBase
from actions.question import Ask, analyse
from cases.repository import CaseRepository, repository_for
from channels import clients

logger = logging.getLogger(__name__)

# who takes a case that no topic routes: the operator of the 帮帮团 channel in kb/channels.yml
TEAM_CHANNEL = "bangbangtuan"
DEFAULT_CASES_PER_CLIENT = 3
FORM = "handoff_form"
NOT_GIVEN = "未提供"
FORM_SLOTS = ("handoff_contact", "handoff_company", "handoff_problem")
HANDOFF_SLOTS = (*FORM_SLOTS, "handoff_reason", "handoff_department", "handoff_cancelled")
REASON_OF_INTENT = {"complain": "complaint", "answer_rated_badly": "bad_rating"}

SKIP = re.compile(r"^(跳过|略过|不方便|不想说|不想留|不想填|不留|不填|不提供|不告诉你|保密|没有|无|暂无|不用|不用了|不需要|"
                  r"skip|pass|-|/|—)[。！!.~～]*$", re.I)
CANCEL = re.compile(r"^(取消|取消转人工|不转了|不转人工了|不用转了|不需要人工了?|算了|不要人工了?|cancel)[。！!.~～]*$", re.I)
# 「手机：138…」「我的电话是023-…」: the words before the number are not part of it
CONTACT_LABEL = re.compile(r"^(?:我的|我)?(?:手机|手机号|电话|座机|联系电话|联系方式|微信号?|邮箱)?(?:号码)?(?:是|为)?[:：]?\s*")
MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")
LANDLINE = re.compile(r"^(?:0\d{2,3})?[2-9]\d{6,7}(?:转\d{1,6})?$|^[48]00\d{7}$")
# a WeChat id (6–20 of letters, digits, _ and -, starting with a letter), perhaps after 微信号：
# or "wx:" ("wxid_…" is itself an id: an English prefix needs a separator)
WECHAT_ID = re.compile(r"^(?:(?:wx|wechat)[:：\s]\s*|微信号?[:：\s]*)?([a-zA-Z][-_a-zA-Z0-9]{5,19})$", re.I)
EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
LIMITS = {"handoff_company": (2, 60), "handoff_problem": (4, 500)}
MIN_COMPLAINT = 8  # shorter complaints (「我要投诉你们」) say nothing a specialist can act on: ask


def cases_repository(cases: CaseRepository | None) -> CaseRepository:
    """The repository an action was given (tests), else the process's one ($DATABASE_URL)."""
    return cases or repository_for()


def unit_name(knowledge_base: KnowledgeBase, unit_id: str, default: str = "帮帮团") -> str:
    unit = knowledge_base.departments.get(unit_id)
    return unit.name if unit else default


def typed_text(tracker: Tracker) -> str:
    """What the user typed last (the tracker's message text may be the normalised one)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return str(event.get("text") or "")
    return str((tracker.latest_message or {}).get("text") or "")


def contact_lines(knowledge_base: KnowledgeBase) -> list[str]:
    """Every unit whose contact the documents publish, with the document that gives it."""
    lines = []
    for unit in knowledge_base.departments.values():
        if not unit.contact:
            continue
        parts = [f"电话 {unit.contact['phone']}" if unit.contact.get("phone") else "",
                 f"邮箱 {unit.contact['email']}" if unit.contact.get("email") else ""]
        source = knowledge_base.documents[unit.source["file"]].cite
        lines.append(f"· {unit.display}：{'，'.join(p for p in parts if p)}（见{source}）")
    return lines


def paused() -> list[EventType]:
    """Pause the bot, as listening: a paused conversation stops before Rasa's own listen, and
    the rules (restart, and any rule after `resume`) match only a message after a listen."""
    return [ConversationPaused(), ActionExecuted("action_listen")]


def team_department(knowledge_base: KnowledgeBase) -> str:
    return knowledge_base.channels[TEAM_CHANNEL].operator or ""


def handoff_events(reason: str, department: str | None = None, problem: str | None = None) -> list[EventType]:
    """What another action returns to hand the conversation over."""
    events: list[EventType] = [SlotSet("handoff_reason", reason)]
    if department:
        events.append(SlotSet("handoff_department", department))
    if problem:
        events.append(SlotSet("handoff_problem", problem[:LIMITS["handoff_problem"][1]]))
    return events + [FollowupAction("action_start_handoff")]


class ActionStartHandoff(Action):
    """Say who the case goes to and start asking for the details (unless a case is open)."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None, cases: CaseRepository | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()
        self.cases = cases

    def name(self) -> str:
        return "action_start_handoff"

    def department(self, tracker: Tracker) -> str:
        """Set by the trigger; else a department the message names; else the lead of the
        conversation's topic; else the 帮帮团's own office."""
        chosen = tracker.get_slot("handoff_department")
        if chosen in self.kb.departments:
            return chosen
        for entity in (tracker.latest_message or {}).get("entities") or []:
            if entity.get("entity") == "department" and entity.get("value") in self.kb.departments:
                return entity["value"]
        topic = self.kb.topic(tracker.get_slot("topic"))
        if topic:
            return self.kb.lead_of(topic)[0].id
        return team_department(self.kb)

    def problem(self, tracker: Tracker, intent: str | None) -> str | None:
        """What the trigger already says of the problem: a complaint's words (when they say
        more than 「我要投诉」), a rated answer."""
        if intent == "complain":
            said = typed_text(tracker)
            return said if len(said) >= MIN_COMPLAINT else None
        if intent == "answer_rated_badly":
            values = {e.get("entity"): e.get("value") for e in (tracker.latest_message or {}).get("entities") or []}
            topic = self.kb.topic(values.get("topic"))
            rated = f"「{topic.title}」的答复" if topic else "智能助手的答复"
            reason = f"，理由：{values['rating_reason']}" if values.get("rating_reason") else ""
            return f"对{rated}评价为「{values.get('rating_level') or '不满意'}」{reason}"
        return None

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        try:
            open_case = await asyncio.to_thread(cases_repository(self.cases).open_case_of, tracker.sender_id)
        except Exception:  # noqa: BLE001 - the database is down: the phone still works
            logger.exception("cases database unavailable")
            dispatcher.utter_message(text="\n".join(["抱歉，转人工暂时不可用。您可以这样联系工作人员："]
                                                    + contact_lines(self.kb)))
            return [SlotSet(slot, None) for slot in HANDOFF_SLOTS] + [FollowupAction("action_listen")]
        if open_case:
            dispatcher.utter_message(
                text=f"您的问题已经转给{unit_name(self.kb, open_case.department, '工作人员')}（案件 #{open_case.id}），"
                     f"请稍候，工作人员接手后会在这里回复您。",
                json_message=handoff_payload(self.kb, open_case.id, open_case.department, open_case.status))
            return paused()
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        reason = tracker.get_slot("handoff_reason") or REASON_OF_INTENT.get(intent, "user_request")
        department = self.department(tracker)
        events: list[EventType] = [SlotSet("handoff_reason", reason), SlotSet("handoff_department", department)]
        problem = tracker.get_slot("handoff_problem") or self.problem(tracker, intent)
        if problem:
            events.append(SlotSet("handoff_problem", problem[:LIMITS["handoff_problem"][1]]))
        name = unit_name(self.kb, department)
        opening = {"complaint": "收到您的意见，我马上请工作人员跟进。",
                   "misunderstood": "抱歉一直没能理解您，我请工作人员来帮您。",
                   "bad_rating": "抱歉没能让您满意，我请工作人员跟进。",
                   "needs_person": "这类事项需要工作人员根据具体情况处理，我为您转人工。"}.get(reason, "好的，我为您转人工。")
        dispatcher.utter_message(
            text=f"{opening}您的问题将由{name}的「助企帮帮团」企业服务专员处理。"
                 f"先请您留几项信息，方便专员联系您（不想提供的回复「跳过」，不转了回复「取消」）。")
        return events + [FollowupAction(FORM)]


def _clean(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip()


QUESTION_WORD = re.compile(r"[？?]|怎么|如何|什么|哪|吗|咋|啥")


def is_question(ask: Ask, text: str) -> bool:
    """The message asks something (a kind of fact, yes or no, 怎么/哪/啥…): no contact, company
    or problem description reads like that."""
    return bool(ask.aspects or ask.missing or ask.yesno or QUESTION_WORD.search(text))


def answered_as_followup(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A question typed where a contact was asked (「可以线上办吗」 after a dispute's answer) is
    answered on the conversation's topic before the contact is asked again."""
    from actions.topics import reply, send  # topics imports this module: import it late

    knowledge_base = kb_module.default()
    topic = knowledge_base.topic(tracker.get_slot("topic"))
    text = typed_text(tracker)
    ask = analyse((tracker.latest_message or {}).get("text") or text, text)
    if topic is None or not is_question(ask, text):
        return False
    if ask.missing in ("phone", "person") or len(re.findall(r"\d", text)) >= 3:
        return False  # a contact typed wrong (「我电话138123」): ask for it again
    answer, card = reply(knowledge_base, tracker, topic, only_topic=True)
    send(dispatcher, tracker, answer, card)
    return True


# a question NLU places on another topic this surely is the user moving on, not a form answer
MOVED_ON_CONFIDENCE = 0.8


def moved_on(dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any] | None:
    """A question on another topic typed where a contact or a company was asked (「个体户注销要
    什么材料」 after a labour dispute's handoff began): the user has moved on. It is answered on
    its topic and the handoff is set aside (the form ends as if cancelled), instead of asking
    for the contact again and again — a conversation stuck in the form never ended its session
    either. None when the message is no such question."""
    from actions.topics import reply, send  # topics imports this module: import it late

    knowledge_base = kb_module.default()
    intent = ((tracker.latest_message or {}).get("intent") or {})
    topic = knowledge_base.topic(intent.get("name"))
    text = typed_text(tracker)
    if (topic is None or topic.id == tracker.get_slot("topic") or intent.get("confidence", 0) < MOVED_ON_CONFIDENCE
            or len(re.findall(r"\d", text)) >= 3):
        return None
    ask = analyse((tracker.latest_message or {}).get("text") or text, text)
    if not is_question(ask, text):
        return None
    answer, card = reply(knowledge_base, tracker, topic)
    send(dispatcher, tracker, answer, card)
    return {**{slot: NOT_GIVEN for slot in FORM_SLOTS}, "handoff_cancelled": True, "topic": topic.id}


class ValidateHandoffForm(FormValidationAction):
    """Check each answer; 「跳过」 leaves a field 未提供, 「取消」 ends the handoff."""

    def name(self) -> str:
        return "validate_handoff_form"

    @staticmethod
    def _declined(value: str, slot: str) -> dict[str, Any] | None:
        if CANCEL.match(value):
            return {**{s: NOT_GIVEN for s in FORM_SLOTS}, "handoff_cancelled": True}
        if SKIP.match(value):
            return {slot: NOT_GIVEN}
        return None

    def validate_handoff_contact(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> dict[str, Any]:
        value = _clean(slot_value)
        declined = self._declined(value, "handoff_contact") or moved_on(dispatcher, tracker)
        if declined:
            return declined
        wechat = WECHAT_ID.match(value)
        if wechat:
            return {"handoff_contact": f"微信 {wechat.group(1)}"}
        bare = CONTACT_LABEL.sub("", value, count=1)
        compact = re.sub(r"[\s()（）-]", "", bare)
        if MOBILE.match(compact) or LANDLINE.match(compact):
            return {"handoff_contact": compact}
        if EMAIL.match(bare):
            return {"handoff_contact": bare}
        if answered_as_followup(dispatcher, tracker):
            dispatcher.utter_message(text="如需专员跟进，请留手机号、座机或微信号；不需要了回复「取消」。")
            return {"handoff_contact": None}
        dispatcher.utter_message(text="这个联系方式好像不完整。请留 11 位手机号、座机号（如 023-63765360）或微信号；"
                                      "不方便的话回复「跳过」。")
        return {"handoff_contact": None}

    def validate_handoff_company(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> dict[str, Any]:
        value = _clean(slot_value)
        declined = self._declined(value, "handoff_company") or moved_on(dispatcher, tracker)
        if declined:
            return declined
        low, high = LIMITS["handoff_company"]
        if not low <= len(value) <= high or not re.search(r"[\w\u4e00-\u9fff]", value) or value.isdigit():
            dispatcher.utter_message(text=f"企业名称请写 {low}–{high} 个字，例如「重庆某某科技有限公司」；"
                                          "个体户写字号即可，不方便的话回复「跳过」。")
            return {"handoff_company": None}
        return {"handoff_company": value}

    def validate_handoff_problem(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> dict[str, Any]:
        value = _clean(slot_value)
        declined = self._declined(value, "handoff_problem")
        if declined:
            return declined
        low, high = LIMITS["handoff_problem"]
        if len(value) < low:
            dispatcher.utter_message(text="请用一句话多说一点，比如「想在解放碑开一家餐馆，不知道先办什么证」。")
            return {"handoff_problem": None}
        return {"handoff_problem": value[:high]}


def cases_per_client() -> int:
    """How many cases one client may have open at once ($CASES_PER_CLIENT, default 3): a flood
    of new conversations from one address cannot bury the queue; a district website calling the
    REST channel for many users from one address raises it."""
    try:
        return max(1, int(os.environ.get("CASES_PER_CLIENT", DEFAULT_CASES_PER_CLIENT)))
    except ValueError:
        return DEFAULT_CASES_PER_CLIENT


def handoff_payload(knowledge_base: KnowledgeBase, case_id: int, department: str, status: str) -> dict[str, Any]:
    return {"type": "handoff", "case_id": case_id, "department": department,
            "department_name": unit_name(knowledge_base, department, department), "status": status}


class ActionOpenCase(Action):
    """Write the case, say so with the handoff payload, and pause the bot."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None, cases: CaseRepository | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()
        self.cases = cases

    def name(self) -> str:
        return "action_open_case"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        reset = [SlotSet(slot, None) for slot in HANDOFF_SLOTS]
        if tracker.get_slot("handoff_cancelled"):
            dispatcher.utter_message(text="好的，已取消转人工。您可以继续问我，需要时再说「转人工」。")
            return reset
        department = tracker.get_slot("handoff_department") or team_department(self.kb)
        given = {slot: tracker.get_slot(slot) or "" for slot in FORM_SLOTS}
        client = clients.of_message((tracker.latest_message or {}).get("metadata"), tracker.sender_id)
        repository = cases_repository(self.cases)
        try:
            already = (await asyncio.to_thread(repository.open_counts_of_clients, [client])).get(client, 0)
            if already >= cases_per_client() and not await asyncio.to_thread(repository.open_case_of,
                                                                              tracker.sender_id):
                logger.info("handoff refused: client %.24s has %d cases open", client, already)
                dispatcher.utter_message(text="\n".join(
                    [f"您已有 {already} 个转人工请求正在等待专员处理，专员会尽快逐一联系您，这次就不再新开了。",
                     "着急的话可以直接联系："] + contact_lines(self.kb)))
                return reset
            case, _ = await asyncio.to_thread(
                repository.open, tracker.sender_id, tracker.get_latest_input_channel() or "unknown",
                tracker.get_slot("handoff_reason") or "user_request", department, tracker.get_slot("topic"),
                contact=given["handoff_contact"], company=given["handoff_company"],
                problem=given["handoff_problem"], client=client)
        except Exception:  # noqa: BLE001 - the database is down: say so, keep the bot answering
            logger.exception("could not open a case")
            dispatcher.utter_message(text="\n".join(["抱歉，转人工暂时失败，您的信息没有送出。请稍后再说「转人工」，"
                                                     "或直接联系："] + contact_lines(self.kb)))
            return reset
        lines = [f"已为您转人工：案件 #{case.id}，由{unit_name(self.kb, case.department)}的企业服务专员处理。",
                 "专员接手后会在这里回复您；在此之前您发来的消息都会转给专员，我先不作答。"]
        if case.channel in ("wechat", "wecom"):
            lines.append("微信只能在您最近一次发消息后的 48 小时内给您回复消息，超过后专员会按您留的联系方式联系您。")
        lines.append("着急的话也可以直接联系：")
        lines += contact_lines(self.kb)
        dispatcher.utter_message(text="\n".join(lines),
                                 json_message=handoff_payload(self.kb, case.id, case.department, case.status))
        return reset + paused()
