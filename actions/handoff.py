"""Acknowledge a request for a person and say how to reach one (a staff console comes later)."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import kb as kb_module
from actions.kb import KnowledgeBase


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


class ActionHumanHandoff(Action):
    """Say a person will be needed, and give the contact the documents name."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()

    def name(self) -> str:
        return "action_human_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lines = ["好的，需要工作人员帮您。在线转接人工的功能还在建设中，现在可以这样找到人："]
        lines += contact_lines(self.kb)
        lines += [f"· {c.name}：{c.how}" for c in self.kb.channels.values() if c.kind == "team"]
        topic = self.kb.topic(tracker.get_slot("topic"))
        if topic:
            lead = "、".join(u.name for u in self.kb.lead_of(topic))
            lines.append(f"您刚才问的「{topic.title}」由{lead}牵头负责，也可以直接向该部门咨询。")
        dispatcher.utter_message(text="\n".join(lines))
        return []
