"""Turn knowledge-base records into the answer text and the service card.

One function per output, so every channel (REST, socket.io widget, WeChat) shows the
same facts: `short` writes the visible reply (the answering passage with its citation,
then the lead department and the one best channel), `answer` the full answer shown on
request (「详情」), `card` the structured payload widgets render. Everything here comes from kb/ with its citation; nothing is invented:
where the documents give no time limit or material list, the text says so and points to
the channels they do name.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from actions.answers import Answer
from actions.kb import Department, KnowledgeBase, Quote, Topic

ENGLISH_LEXICON = Path(__file__).resolve().parent.parent / "lexicon" / "english.yml"
MISSING_WORDS = {
    "phone": ("联系电话", "a phone number"), "person": ("联系人", "a contact person"),
    "address": ("具体地址", "a street address"), "hours": ("办公时间", "opening hours"),
    "url": ("网址", "a web address"), "rate": ("利率", "interest rates"),
    "amount": ("贷款额度", "loan amounts"), "time": ("办理时限", "a time limit"),
    "cost": ("收费标准", "fees"), "count": ("具体数量", "that figure"), "fact": ("相关规定", "that"),
}

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


def _aspect_quotes(kb: KnowledgeBase, topic: Topic, aspect: str) -> list[str]:
    return [f"· {_cited(kb, q)}" for q in topic.quotes_about(aspect)]


def _where_to_ask(kb: KnowledgeBase, topic: Topic) -> str:
    channel = kb.channels[topic.channels[0]].name if topic.channels else "办理渠道"
    return f"建议通过{channel}办理时按要求准备，或向牵头部门{kb.lead_of(topic)[0].name}咨询。"


def followup(kb: KnowledgeBase, topic: Topic, aspect: str) -> str:
    """A follow-up (`materials`, `department`, `time`, `channel`) answered on topic."""
    head = f"【{topic.title}】"
    if aspect == "department":
        return "\n".join([head, _departments_line(kb, topic)])
    if aspect == "channel":
        return "\n".join([head, "可以通过以下渠道办理：", *_channel_lines(kb, topic, limit=len(topic.channels))])
    quotes = _aspect_quotes(kb, topic, aspect)
    if aspect == "time":
        if quotes:
            return "\n".join([head, "文件中关于办理时限的规定：", *quotes])
        return "\n".join([head, "现有政策文件没有写明这项业务的办理时限。" + _where_to_ask(kb, topic)])
    if quotes:
        return "\n".join([head, "文件中与材料相关的规定：", *quotes,
                          "文件没有列出完整的材料清单。" + _where_to_ask(kb, topic)])
    return "\n".join([head, "现有政策文件没有列出这项业务需要的材料。" + _where_to_ask(kb, topic)])


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
    """The `service_card` payload: the answer given, then the topic's full facts (details)."""
    leads = kb.lead_of(topic)
    policies = []
    for quote in topic.policies:
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
        for q in (*topic.points, *filter(None, [topic.lead_source]))
    ]
    return {
        "type": "service_card",
        "topic": topic.id,
        "title": topic.title,
        "aspect": aspect,
        "answer": answered,
        "department": _unit(leads[0]),
        "lead_departments": [_unit(u) for u in leads],
        "co_departments": [_unit(u) for u in kb.co_of(topic)],
        "policies": policies,
        "channels": [
            {"id": c, "name": kb.channels[c].name, "kind": kb.channels[c].kind, "how": kb.channels[c].how}
            for c in topic.channels
        ],
        "sources": sources,
    }


def _head(answer: Answer) -> str:
    """The first line: the passage that answers, with its citation (or 「可以。」 first)."""
    unit = answer.unit
    assert unit is not None
    yes = "可以。" if answer.yes else ""
    return f"{yes}{answer.passage}（{unit.cite}）。"


def _where(kb: KnowledgeBase, answer: Answer) -> str:
    """The second line: the lead department and the one best channel."""
    line = "文件没有列出完整的材料清单。" if answer.ask.primary == "materials" else ""
    line += f"负责部门：{answer.department.name}"
    return line + (f"；办理渠道：{answer.channel.name}" if answer.channel else "")


def _office(kb: KnowledgeBase) -> Department | None:
    """The one unit whose contact the documents publish (区营商办), for questions they don't answer."""
    return next((d for d in kb.departments.values() if d.contact and d.contact.get("phone")), None)


def _office_line(kb: KnowledgeBase, answer: Answer) -> str:
    office = _office(kb)
    if not office or office.id == answer.department.id:
        return ""
    return f"也可联系{office.name}（电话{office.contact['phone']}，{kb.documents[office.source['file']].cite}）。"


def _missing(kb: KnowledgeBase, answer: Answer) -> list[str]:
    what = MISSING_WORDS.get(answer.missing or "fact", MISSING_WORDS["fact"])[0]
    first = f"现有政策文件没有公布{answer.subject}的{what}。"
    ask = f"请向{answer.department.name}咨询"
    ask += f"，或通过{answer.channel.name}办理时询问；" if answer.channel else "；"
    return [first, ask + _office_line(kb, answer)]


def short(kb: KnowledgeBase, answer: Answer) -> str:
    """The visible reply: two lines, about 200 characters at most."""
    if answer.unit is None:
        return "\n".join(_missing(kb, answer))
    return "\n".join([_head(answer), _where(kb, answer)])


@functools.lru_cache(maxsize=1)
def _english_names() -> dict[str, str]:
    return yaml.safe_load(ENGLISH_LEXICON.read_text(encoding="utf-8")).get("names") or {}


def _pinyin(name: str) -> str:
    from pypinyin import lazy_pinyin

    return " ".join(lazy_pinyin(name.strip("“”"))).title()


def _english_name(record_id: str, name: str) -> str:
    return f"{name} ({_english_names().get(record_id) or _pinyin(name)})"


def short_english(kb: KnowledgeBase, answer: Answer) -> str:
    """The visible reply to an English question: English first line, the Chinese quote kept."""
    who = _english_name(answer.department.id, answer.department.name)
    where = f"; channel: {_english_name(answer.channel.id, answer.channel.name)}" if answer.channel else ""
    if answer.unit is None:
        what = MISSING_WORDS.get(answer.missing or "fact", MISSING_WORDS["fact"])[1]
        office = _office(kb)
        also = f" or the {_english_name(office.id, office.name)}, tel. {office.contact['phone']}" if office else ""
        return (f"The published documents give no {what} for {answer.subject}. "
                f"Please ask {who}{where}{also}.")
    yes = "Yes. " if answer.yes else ""
    return (f"{yes}According to {answer.unit.cite}: “{answer.passage}”.\n"
            f"Lead department: {who}{where}.")


def answer_record(answer: Answer, text: str) -> dict[str, Any]:
    """What the card says about the answer: the unit cited and the visible text."""
    unit = answer.unit
    return {
        "text": text,
        "unit": unit.id if unit else None,
        "cite": unit.cite if unit else None,
        "source": unit.file if unit else None,
        "ref": unit.ref if unit else None,
        "missing": answer.missing,
        "department": answer.department.id,
        "channel": answer.channel.id if answer.channel else None,
    }
