"""Turn knowledge-base records into the answer text and the service card.

One function per output, so every channel (REST, socket.io widget, WeChat) shows the
same facts: `short` writes the visible reply (the answering passage with its citation,
then the lead department and the one best channel), `answer` the full answer shown on
request (「详情」), `card` the structured payload widgets render. Everything here comes from
kb/ with its citation; nothing is invented:
where the documents give no time limit or material list, the text says so and points to
the channels they do name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from actions.answers import Answer
from actions.kb import Department, KnowledgeBase, Quote, Topic

ENGLISH_LEXICON = Path(__file__).resolve().parent.parent / "lexicon" / "english.yml"
MISSING_WORDS = {
    "phone": ("联系电话", "phone number"), "person": ("联系人", "contact person"),
    "address": ("具体地址", "street address"), "hours": ("办公时间", "opening hours"),
    "url": ("网址", "web address"), "rate": ("利率", "interest rate"),
    "amount": ("贷款额度", "loan amount"), "price": ("价格标准", "price"), "time": ("办理时限", "time limit"),
    "cost": ("收费标准", "fee"), "count": ("具体数量", "such figure"), "fact": ("相关规定", "such rule"),
}
# where a question the documents do not answer can go: a person, through the handoff
PERSON_LINE = "也可回复「转人工」，由助企帮帮团专员帮您问清楚。"
PERSON_LINE_EN = "or reply 转人工 to reach a 助企帮帮团 specialist"

MAX_POLICIES = 3
MAX_CHANNELS = 3
MAX_POINTS = 2


def _names(units: list[Department]) -> str:
    return "、".join(u.display for u in units)


def _sentence(text: str) -> str:
    return text if text.endswith(("。", "！", "？", "”")) else text + "。"


def _cited(kb: KnowledgeBase, quote: Quote) -> str:
    return f"{kb.cite(quote)}：{_sentence(quote.text)}"


def _departments_line(kb: KnowledgeBase, topic: Topic) -> str:
    line = f"牵头部门：{_names(kb.lead_of(topic))}"
    co = kb.co_of(topic)
    return line + (f"；配合部门：{_names(co)}" if co else "")


def _channel_lines(kb: KnowledgeBase, topic: Topic, limit: int = MAX_CHANNELS) -> list[str]:
    return [f"· {kb.channels[c].name}：{kb.channels[c].how}" for c in topic.channels[:limit]]


def _sources_note(kb: KnowledgeBase, topic: Topic) -> list[str]:
    """The lead unit's source where no policy item names it (article-only topics)."""
    if topic.lead_source and not topic.policies:
        return [f"依据：{_cited(kb, topic.lead_source)}"]
    return []


def answer(kb: KnowledgeBase, topic: Topic) -> str:
    """The full answer: department, policy items with their commitment, channels, figures."""
    lines = [f"【{topic.title}】", _departments_line(kb, topic)]
    if topic.policies:
        lines.append("适用政策：")
        lines += [f"{i}. {_cited(kb, q)}" for i, q in enumerate(topic.policies[:MAX_POLICIES], 1)]
    lines += _sources_note(kb, topic)
    lines.append("办理渠道：")
    lines += _channel_lines(kb, topic)
    for quote in topic.points[:MAX_POINTS]:
        lines.append(f"另据{_cited(kb, quote)}")
    lines.append("想了解材料、时限、部门或在哪办，可以接着问我。")
    return "\n".join(lines)


def english_line(kb: KnowledgeBase, topic: Topic) -> str:
    """One English line for an English question; the names stay as the documents give them."""
    parts = [f"Lead department: {'、'.join(u.name for u in kb.lead_of(topic))}"]
    if topic.policies:
        parts.append(f"policy: {kb.cite(topic.policies[0])}")
    if topic.channels:
        parts.append(f"channel: {kb.channels[topic.channels[0]].name}")
    return "(English) " + "; ".join(parts) + ". Details in Chinese below."


def _unit(unit: Department) -> dict[str, str]:
    return {"id": unit.id, "name": unit.name}


def card(kb: KnowledgeBase, topic: Topic, aspect: str | None = None,
         answered: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `service_card` payload: what the answer cited, then the topic's facts as the widget
    folds them under 「查看完整答复」 (its first MAX_POLICIES items and MAX_CHANNELS channels; every
    one of them is in the 「详情」 reply). Rasa stores it with every answer in the tracker, so it
    carries nothing twice: the answer's text is the message's own text, a second lead unit only
    for a topic led by two."""
    leads = kb.lead_of(topic)
    policies = []
    for quote in topic.policies[:MAX_POLICIES]:
        policy = kb.policies[quote.policy] if quote.policy else None
        policies.append({
            "id": policy.id if policy else None,
            "doc": policy.doc if policy else kb.cite(quote),
            "item": policy.item if policy else None,
            "summary": quote.text,
            "source": quote.file,
        })
    sources = [
        {"cite": kb.cite(q), "file": q.file, "ref": q.ref, "quote": q.text}
        for q in (*topic.points[:MAX_POINTS], *filter(None, [topic.lead_source]))
    ]
    payload = {
        "type": "service_card",
        "topic": topic.id,
        "title": topic.title,
        "aspect": aspect,
        "answer": answered,
        "department": _unit(leads[0]),
        "co_departments": [_unit(u) for u in kb.co_of(topic)],
        "policies": policies,
        "channels": [{"id": c, "name": kb.channels[c].name, "how": kb.channels[c].how}
                     for c in topic.channels[:MAX_CHANNELS]],
        "sources": sources,
        "kb_version": kb.version,
    }
    if len(leads) > 1:
        payload["lead_departments"] = [_unit(u) for u in leads]
    return payload


def _head(kb: KnowledgeBase, answer: Answer) -> str:
    """The first line: the passage that answers, with its citation (or 「可以。」 first)."""
    unit = answer.unit
    assert unit is not None
    if answer.quote:  # 「找哪个部门」: who leads, then the document's words that say so
        leads = "、".join(d.name for d in kb.lead_of(answer.topic))
        return f"{answer.topic.title}由{leads}牵头负责：“{answer.passage}”（{unit.cite}）。"
    yes = "可以。" if answer.yes else ""
    return f"{yes}{answer.passage}（{unit.cite}）。"


def _where(kb: KnowledgeBase, answer: Answer) -> str:
    """The second line: the lead department and the one best channel."""
    line = "文件没有列出完整的材料清单。" if answer.ask.primary == "materials" else ""
    line += f"负责部门：{answer.department.name}"
    return line + (f"；办理渠道：{answer.channel.name}" if answer.channel else "")


def _missing(kb: KnowledgeBase, answer: Answer) -> list[str]:
    what = MISSING_WORDS.get(answer.missing or "fact", MISSING_WORDS["fact"])[0]
    first = f"现有政策文件没有公布{answer.subject}的{what}。"
    ask = f"请向{answer.department.name}咨询"
    ask += f"，或通过{answer.channel.name}办理时询问；" if answer.channel else "；"
    return [first, ask + PERSON_LINE]


def short(kb: KnowledgeBase, answer: Answer) -> str:
    """The visible reply: two lines, about 200 characters at most."""
    if answer.unit is None:
        return "\n".join(_missing(kb, answer))
    return "\n".join([_head(kb, answer), _where(kb, answer)])


@functools.lru_cache(maxsize=1)
def _english_names() -> dict[str, str]:
    return yaml.safe_load(ENGLISH_LEXICON.read_text(encoding="utf-8")).get("names") or {}


def _pinyin(name: str) -> str:
    from pypinyin import lazy_pinyin

    # quotation marks inside a name (“全渝数智法院”全程网办) are no syllables
    syllables = lazy_pinyin(re.sub(r"[^\w]+", " ", name))
    return " ".join(s.strip().capitalize() if s.islower() else s.strip() for s in syllables if s.strip())


def _english_name(record_id: str, name: str) -> str:
    return f"{name} ({_english_names().get(record_id) or _pinyin(name)})"


def short_english(kb: KnowledgeBase, answer: Answer) -> str:
    """The visible reply to an English question: English first line, the Chinese quote kept."""
    who = _english_name(answer.department.id, answer.department.name)
    where = f"; channel: {_english_name(answer.channel.id, answer.channel.name)}" if answer.channel else ""
    if answer.unit is None:
        what = MISSING_WORDS.get(answer.missing or "fact", MISSING_WORDS["fact"])[1]
        via = f", use {_english_name(answer.channel.id, answer.channel.name)}" if answer.channel else ""
        return (f"The published documents give no {what} for {answer.subject}.\n"
                f"Please ask {who}{via}, {PERSON_LINE_EN}.")
    yes = "Yes. " if answer.yes else ""
    if answer.quote:
        yes = f"{answer.topic.title} is led by {who}. "
    return (f"{yes}According to {answer.unit.cite}: “{answer.passage}”.\n"
            f"Lead department: {who}{where}.")


def answer_record(answer: Answer) -> dict[str, Any]:
    """What the card says about the answer: the unit cited, its source, what was missing (the
    text itself is the message's)."""
    unit = answer.unit
    return {
        "unit": unit.id if unit else None,
        "cite": unit.cite if unit else None,
        "source": unit.file if unit else None,
        "ref": unit.ref if unit else None,
        "missing": answer.missing,
        "department": answer.department.id,
        "channel": answer.channel.id if answer.channel else None,
    }
