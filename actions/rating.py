"""The 好差评 rating of a resolved case: asked when the console resolves it, recorded here.

A 差评 (不满意 / 非常不满意) must be followed up: it opens a new case for the same department.
A 差评 of an answer in the widget reaches the dialogue as `/answer_rated_badly{…}` from the
channel and is handed over the same way (handoff.py).
"""

from __future__ import annotations

import asyncio
import json
import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import kb as kb_module
from actions.handoff import cases_repository, handoff_events, handoff_payload
from actions.kb import KnowledgeBase
from cases.repository import BAD_RATINGS, RATING_LEVELS, CaseConflict, CaseNotFound, CaseRepository

logger = logging.getLogger(__name__)


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == name and entity.get("value") not in (None, ""):
            return str(entity["value"])
    return None


class ActionAskServiceRating(Action):
    """Tell the user the case is resolved and ask for a rating (buttons carry the case id)."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None, cases: CaseRepository | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()
        self.cases = cases

    def name(self) -> str:
        return "action_ask_service_rating"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        try:
            case = await asyncio.to_thread(cases_repository(self.cases).last_resolved_of, tracker.sender_id)
        except Exception:  # noqa: BLE001 - no database: the user can still go on asking
            logger.exception("cases database unavailable")
            dispatcher.utter_message(text="工作人员已处理完毕，智能助手继续为您服务。")
            return []
        if case is None:
            return []
        buttons = [{"title": level, "payload": "/rate_service" + json.dumps(
            {"rating_level": level, "case_id": str(case.id)}, ensure_ascii=False)} for level in RATING_LEVELS]
        dispatcher.utter_message(text=f"工作人员已办结您的问题（案件 #{case.id}），智能助手继续为您服务。"
                                      "请为这次人工服务评价：", buttons=buttons,
                                 json_message=handoff_payload(self.kb, case.id, case.department, case.status))
        return []


class ActionRateService(Action):
    """Record the rating once; a 差评 hands over again for follow-up."""

    def __init__(self, cases: CaseRepository | None = None) -> None:
        self.cases = cases

    def name(self) -> str:
        return "action_rate_service"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        level, case_id = _entity(tracker, "rating_level"), _entity(tracker, "case_id")
        if level not in RATING_LEVELS or not (case_id or "").isdigit():
            dispatcher.utter_message(text="请点选上面的五个评价之一。")
            return []
        try:
            case = await asyncio.to_thread(cases_repository(self.cases).rate, int(case_id), tracker.sender_id, level)
        except (CaseConflict, CaseNotFound):
            dispatcher.utter_message(text="这次服务已经评价过，或不是您的案件，无法再评价。谢谢您！")
            return []
        except Exception:  # noqa: BLE001 - the database is down: say so instead of nothing
            logger.exception("could not record the rating of case %s", case_id)
            dispatcher.utter_message(text="抱歉，评价暂时没能保存，请稍后再点一次。")
            return []
        if level in BAD_RATINGS:
            return handoff_events("bad_rating", case.department,
                                  f"对案件 #{case.id} 的办理评价为「{level}」，需要跟进。原问题：{case.problem or '未提供'}")
        dispatcher.utter_message(text="谢谢您的评价！还有别的企业办事问题，随时问我。")
        return []
