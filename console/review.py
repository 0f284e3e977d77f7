"""The review inbox: its questions grouped by how alike they are, and the labels staff give.

Who labels what: a supervisor any question; a specialist the questions attributed to their
department only (those they see) — asked-back and declined questions name no department and
are the supervisors'. A label is a topic (an intent of the same id, kb/topics.yml), 「不属于服务
范围」 (intent out_of_scope), both written to the reviewed examples' file (console/reviewed.py),
or 「需要新增主题」, only recorded. Every label is recorded in the insight store's audit trail
(who, when, which question, what label, what became of it); a label repeated is recorded once.

Grouping is simple on purpose, so that a reviewer can predict it: a question's features are
the pairs of adjacent characters of its text (lower-cased, width-folded, punctuation and the
mask's `*` dropped; a one-character text is its own feature), two questions are as alike as
the Jaccard index of their features, and the questions are taken oldest first, each joining
the group whose first question it is most like, if at least `threshold`, else starting one. It finds
the same question typed again with a word changed (「今天天气怎么样」「明天天气怎么样啊」),
not synonyms: on the held-out set (tests/nlu/heldout.yml, written to be varied) at 0.3 it
put 13 of 386 questions in 6 groups, 62% of them of one intent. So every example of a group
is shown with its own checkbox, and a group is labelled only with the ones left ticked.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable

from console import names
from console.accounts import StaffMember
from console.reviewed import IN_TRAINING, Example, ReviewedFile, when
from insight import review as inbox_module
from insight.review import ReviewItem
from insight.sources import Filters
from insight.store import InsightStore, Label

DEFAULT_THRESHOLD = 0.3
OUT_OF_SCOPE, NEW_TOPIC = "out_of_scope", "new_topic"
LABELS = {OUT_OF_SCOPE: "不属于服务范围（婉拒）", NEW_TOPIC: "需要新增主题（不写入训练数据）"}
REASONS = {"asked_back": "反问澄清", "out_of_scope": "婉拒（超出范围）", "low_confidence": "置信度低", "bad_rating": "差评"}
RESULTS = {"written": "已写入训练数据", "moved": "已改标并写入训练数据", "unchanged": "训练数据中已有相同标注",
           IN_TRAINING: "人工编写的训练数据中已有这句，未重复写入", "held_out": "属于评测集（留出集或基准测试），不能写入训练数据",
           "empty": "没有可写入的文字", "recorded": "已记录（需要新增主题，不写入训练数据）"}
# what the model took a question for, when it is not a topic (docs/intents.md)
INTENTS = {"out_of_scope": "超出服务范围", "nlu_fallback": "未能识别", "vague_request": "说法笼统", "greet": "打招呼",
           "goodbye": "告别", "thank": "致谢", "bot_capabilities": "问助手能做什么", "human_handoff": "转人工",
           "complain": "投诉", "ask_materials": "追问材料", "ask_department": "追问部门", "ask_time_limit": "追问时限",
           "ask_channel": "追问渠道", "ask_cost": "追问费用", "ask_details": "要详情"}
MAX_LABEL_ITEMS = 200
_DROPPED = re.compile(r"[\W_*]+")


def features(text: str) -> frozenset[str]:
    """The adjacent character pairs of the normalised text (the text itself when shorter)."""
    folded = _DROPPED.sub("", unicodedata.normalize("NFKC", text).lower())
    if len(folded) < 2:
        return frozenset({folded} if folded else set())
    return frozenset(folded[i:i + 2] for i in range(len(folded) - 1))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard index: shared features over all features of the two."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass
class Group:
    """Questions alike enough to be labelled together; the first one leads."""

    items: list[ReviewItem] = field(default_factory=list)
    lead: frozenset[str] = frozenset()


def group(items: list[ReviewItem], threshold: float = DEFAULT_THRESHOLD) -> list[Group]:
    """Greedy (leader) clustering in the items' order; the largest groups first, then the
    one whose first question is oldest."""
    groups: list[Group] = []
    for item in items:
        mine = features(item.turn.text or "")
        best, best_score = None, threshold
        for candidate in groups:
            score = similarity(mine, candidate.lead)
            if score >= best_score and (best is None or score > best_score):
                best, best_score = candidate, score
        if best is None:
            groups.append(Group([item], mine))
        else:
            best.items.append(item)
    return sorted(groups, key=lambda g: -len(g.items))  # sorted() is stable: oldest first among equals


class Inbox:
    """The inbox of the questions a member may see, and their labels."""

    def __init__(self, store: Callable[[], InsightStore], reviewed: ReviewedFile) -> None:
        self.store, self.reviewed = store, reviewed

    @staticmethod
    def choices() -> list[dict[str, str]]:
        """The labels a question may get: the topics (with their Chinese titles), then the two others."""
        return ([{"id": topic, "title": title} for topic, title in names.topics().items()]
                + [{"id": key, "title": title} for key, title in LABELS.items()])

    def groups(self, member: StaffMember, filters: Filters, with_labelled: bool, threshold: float) -> dict[str, Any]:
        """The inbox in the filters (the department already decided for the member), grouped."""
        store = self.store()
        day = lambda d: d.isoformat() if d else None  # noqa: E731
        items = inbox_module.inbox(store, day(filters.start), day(filters.end), filters.department, filters.channel)
        latest = {entry.event_id: entry for entry in store.labels(i.turn.event_id for i in items)}
        shown = [i for i in items if with_labelled or i.turn.event_id not in latest]
        return {"total": len(items), "labelled": sum(1 for i in items if i.turn.event_id in latest),
                "threshold": threshold, "reviewed_examples": len(self.reviewed.read()),
                "groups": [{"size": len(g.items), "items": [item(member, i, latest.get(i.turn.event_id))
                                                            for i in g.items]} for g in group(shown, threshold)]}

    def label(self, member: StaffMember, ids: list[int], label: str) -> dict[str, Any]:
        """Label questions; ValueError (a bad request), LookupError (no such question) or
        PermissionError (not the member's to label) before anything is written."""
        if label not in names.topics() and label not in LABELS:
            raise ValueError("未知的标注：请选择一个主题、“不属于服务范围”或“需要新增主题”")
        if not ids:
            raise ValueError("请至少选择一条问题")
        if len(ids) > MAX_LABEL_ITEMS:
            raise ValueError(f"一次最多标注 {MAX_LABEL_ITEMS} 条")
        store = self.store()
        found = store.turns_by_id(ids)
        missing = [i for i in ids if i not in found or found[i].kind != "question" or not found[i].text]
        if missing:
            raise LookupError(f"没有这些待复核的问题：{', '.join(map(str, missing[:10]))}")
        if not member.is_supervisor and any(found[i].department != member.department for i in ids):
            raise PermissionError("专员只能标注本部门的问题；不属于任何部门的问题（反问、婉拒）由主管标注")
        now, ordered = time.time(), list(dict.fromkeys(ids))
        if label == NEW_TOPIC:
            results = ["recorded"] * len(ordered)
        else:
            results = self.reviewed.add([Example(found[i].text or "", label, member.username, when(now))
                                         for i in ordered])
        latest = {entry.event_id: entry for entry in store.labels(ordered)}
        store.record_labels([Label(i, found[i].text or "", label, result, member.username, now)
                             for i, result in zip(ordered, results, strict=True)
                             if not (i in latest and latest[i].label == label)])  # labelled so again: once
        return {"label": label, "results": [{"id": i, "result": r, "result_label": RESULTS[r]}
                                            for i, r in zip(ordered, results, strict=True)],
                "written": sum(1 for r in results if r in ("written", "moved"))}


def item(member: StaffMember, found: ReviewItem, label: Label | None) -> dict[str, Any]:
    """One question as the page shows it: masked text, why it is here, what the model thought."""
    turn, topics, departments = found.turn, names.topics(), names.departments()
    return {
        "id": turn.event_id, "text": turn.text, "at": turn.at, "day": turn.day.isoformat(),
        "channel": turn.channel, "channel_label": names.CHANNELS.get(turn.channel, turn.channel),
        "reasons": list(found.reasons), "reason_labels": [REASONS[r] for r in found.reasons],
        "intent": turn.intent,
        "intent_title": topics.get(turn.intent or "") or INTENTS.get(turn.intent or "", turn.intent),
        "confidence": turn.confidence, "topic": turn.topic, "topic_title": topics.get(turn.topic or ""),
        "department": turn.department, "department_name": departments.get(turn.department or ""),
        "may_label": member.is_supervisor or (turn.department is not None and member.may_see(turn.department)),
        "label": None if label is None else {
            "label": label.label, "title": topics.get(label.label) or LABELS.get(label.label, label.label),
            "labelled_by": label.labelled_by, "labelled_at": label.labelled_at, "result": label.result,
            "result_label": RESULTS.get(label.result, label.result)},
    }
