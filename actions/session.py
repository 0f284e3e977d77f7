"""Where a conversation starts again: a new session, and a restart.

Rasa starts a new session after an hour's silence (domain.yml, session_config), and a new
session un-pauses the tracker: `action_session_start`, replacing Rasa's own, carries the topic
over and pauses again while the conversation's case is still waiting or claimed.

`/restart` is the one message a paused conversation still takes (Rasa's rule): the widget's
「结束人工服务」 button and 「取消」 on WeChat send it, so a user who no longer wants to wait for a
person gets the bot back. `action_restart`, replacing Rasa's own, closes the open case first.
"""

from __future__ import annotations

import asyncio
import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, Restarted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import kb as kb_module
from actions.handoff import cases_repository, handoff_payload
from actions.kb import KnowledgeBase
from cases.repository import CaseConflict, CaseRepository

logger = logging.getLogger(__name__)


class ActionSessionStart(Action):
    """Start a session: the topic carried over, the pause kept while a case is open."""

    def __init__(self, cases: CaseRepository | None = None) -> None:
        self.cases = cases

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        if tracker.get_slot("topic"):
            events.append(SlotSet("topic", tracker.get_slot("topic")))
        try:
            if await asyncio.to_thread(cases_repository(self.cases).open_case_of, tracker.sender_id):
                events.append(ConversationPaused())  # the listen below follows it
        except Exception:  # noqa: BLE001 - no database: a new session cannot know of a case
            logger.exception("cases database unavailable at session start")
        return events + [ActionExecuted("action_listen")]


class ActionRestart(Action):
    """Start over; a case still open is closed as given up by the user (audit: 用户)."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None, cases: CaseRepository | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()
        self.cases = cases

    def name(self) -> str:
        return "action_restart"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        try:
            repository = cases_repository(self.cases)
            case = await asyncio.to_thread(repository.open_case_of, tracker.sender_id)
            if case:
                case = await asyncio.to_thread(repository.resolve, case.id, "user", "handed_back")
                dispatcher.utter_message(
                    text=f"好的，已结束人工服务（案件 #{case.id}），智能助手继续为您服务。需要时再说「转人工」。",
                    json_message=handoff_payload(self.kb, case.id, case.department, case.status))
        except CaseConflict:  # resolved meanwhile by the specialist: nothing left to close
            pass
        except Exception:  # noqa: BLE001 - no database: the restart itself must still happen
            logger.exception("cases database unavailable at restart")
        return [Restarted()]
