"""A new session must not wake up a conversation a specialist has.

Rasa starts a new session after an hour's silence (domain.yml, session_config), and a new
session un-pauses the tracker. This action, replacing Rasa's own, carries the topic over and
pauses again while the conversation's case is still waiting or claimed.
"""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.handoff import cases_repository
from cases.repository import CaseRepository

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
            if cases_repository(self.cases).open_case_of(tracker.sender_id):
                events.append(ConversationPaused())
        except Exception:  # noqa: BLE001 - no database: a new session cannot know of a case
            logger.exception("cases database unavailable at session start")
        return events + [ActionExecuted("action_listen")]
