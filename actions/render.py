"""Turn knowledge-base records into the answer text and the service card.

One function per output, so every channel (REST, socket.io widget, WeChat) shows the
same facts: `answer` and `followup` write the Chinese text, `card` the structured payload
widgets render. Everything here comes from kb/ with its citation; nothing is invented:
where the documents give no time limit or material list, the text says so and points to
the channels they do name.
"""

from __future__ import annotations

from typing import Any

from actions.kb import Department, KnowledgeBase, Quote, Topic

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


def card(kb: KnowledgeBase, topic: Topic, aspect: str | None = None) -> dict[str, Any]:
    """The `service_card` payload: one per answer, the same facts as the text."""
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
