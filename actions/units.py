"""Answer units: every passage of the knowledge base that can answer a question by itself.

A unit is one policy item (its full text), one figure (a quote of an article, channel or
product), one channel description, one sentence of an article's relevant spans, or a
department's published contact — each with its citation, the departments responsible,
the topics it belongs to and what it is about (`aspects`: time, count, cost, materials,
channel, contact). `make kb` derives them from kb/ into kb/generated/answer_units.json;
the actions read that file, so the knowledge base stays the single source.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from actions.kb import DEFAULT_DIR, KnowledgeBase, Quote, served_dir

UNITS_FILE = DEFAULT_DIR / "generated" / "answer_units.json"  # what `make kb` writes
QUESTIONS_FILE = DEFAULT_DIR / "generated" / "unit_questions.json"  # …and the questions written for them

# What a passage is about, read from its words. A question asking for one of these prefers
# a unit that has it (actions/question.py reads the question's side).
ASPECT_PATTERNS: dict[str, re.Pattern[str]] = {
    # a processing time; 「24小时自助服务区」 is an opening time, not how long a service takes
    "time": re.compile(r"\d+(\.\d+)?\s*(个)?(工作日|天|分钟)|(?<![\d.])(?!24)\d{1,2}(\.\d+)?\s*个?小时"
                       r"|[一二三四五六七八九十两半]+(个)?(工作日|天|小时)"
                       r"|时限|即办|当场办|立等|限时|压减至|压缩至|压缩到|压减到|一日办|当日"),
    "count": re.compile(r"\d+(\.\d+)?\s*(余|多)?\s*(个|家|项|户|名|件|枚|台|张|条|所|类|批|万|亿|%|倍|次)"
                        r"|[一二三四五六七八九十百千]+(个|家|项|户|名|类|批)"),
    # what a business pays: free, zero cost, an amount (a fee cut or a subsidy is no price)
    "cost": re.compile(r"免费|零成本|不收费|免收|零投资|收费标准|\d+(\.\d+)?\s*(万)?元"),
    "materials": re.compile(r"材料|资料|证明|清单|提交|申报|一次提交|免提交|减少"),
    "channel": re.compile(r"平台|窗口|中心|系统|专区|线上|网上|网办|渝快办|一网通|一窗|APP|小程序|热线|站"),
    "online": re.compile(r"线上|网上|网办|在线|全程网办|掌上|手机|APP|小程序|不见面|零跑腿|一次都不跑|邮寄|寄递|系统|平台"),
    # names three or more (「重庆环球金融中心、大都会、龙湖重庆时代天街」「29个区级部门、6个管委会和11个
    # 街道」「“复工贷”“健康云贷”“银票质押贷”」): answers 「哪几个」「哪些」
    "list": re.compile(r"、[^，,。；;：:、]{1,20}[、和及与]|[”」][“「][^”」]{1,12}[”」][“「]"),
}
# a sentence ends at 。！？ — after the closing quote when one follows (「……好评。”」)
SENTENCE_END = re.compile(r"(?<=[。！？!?][”’」』])|(?<=[。！？!?])(?![”’」』])")
SENTENCE_STOP = re.compile(r"[。！？!?”’」』：:]")
MIN_SENTENCE = 10  # a shorter sentence of an article says nothing a business can use
MIN_PARAGRAPH = 30  # a shorter line without a sentence end is a caption or a byline


@dataclass(frozen=True)
class AnswerUnit:
    """One passage that can answer a question, with everything the reply needs to cite it."""

    id: str
    kind: str  # policy | figure | channel | article | contact
    text: str
    cite: str
    file: str
    ref: str
    lead: tuple[str, ...]
    co: tuple[str, ...]
    topics: tuple[str, ...]  # topics that cite the passage in kb/topics.yml
    aspects: tuple[str, ...]
    related: tuple[str, ...] = ()  # topics an article sentence names, or that cite an item of its category
    channel: str | None = None  # the channel a channel description or figure is about
    title: str | None = None  # a heading that names the unit (item category, channel name)
    year: int | None = None  # a policy item's plan year: the 2023 list supersedes the 2021 plan

    @property
    def index_text(self) -> str:
        """What a search over units matches on: the passage and what names it."""
        return " ".join(filter(None, [self.title, self.text]))


def aspects_of(text: str, about: Iterable[str] = ()) -> tuple[str, ...]:
    found = [a for a, pattern in ASPECT_PATTERNS.items() if pattern.search(text)]
    return tuple(dict.fromkeys([*about, *found]))


class _Builder:
    """Collects units in a stable order, merging a passage met twice (topics, aspects)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.units: dict[str, dict[str, Any]] = {}
        self.by_text: dict[tuple[str, str], str] = {}
        self.numbered: Counter[str] = Counter()

    def add(self, unit_id: str, kind: str, text: str, file: str, ref: str, cite: str, *,
            lead: Iterable[str] = (), co: Iterable[str] = (), topics: Iterable[str] = (),
            about: Iterable[str] = (), related: Iterable[str] = (), channel: str | None = None,
            title: str | None = None, year: int | None = None) -> bool:
        """Add a unit, or merge its topics and aspects into the unit of the same passage (False)."""
        key = (file, text)
        existing = self.by_text.get(key)
        if existing:
            record = self.units[existing]
            record["topics"] = list(dict.fromkeys([*record["topics"], *topics]))
            record["aspects"] = list(dict.fromkeys([*record["aspects"], *about]))
            if not record["lead"]:
                record["lead"] = list(lead)
            return False
        self.by_text[key] = unit_id
        self.units[unit_id] = {
            "id": unit_id, "kind": kind, "text": text, "cite": cite, "file": file, "ref": ref,
            "lead": list(lead), "co": list(co), "topics": list(dict.fromkeys(topics)),
            "aspects": list(aspects_of(text, about)), "related": list(related), "channel": channel,
            "title": title, "year": year,
        }
        return True

    def quote(self, prefix: str, quote: Quote, topics: Iterable[str], lead: Iterable[str], **extra: Any) -> None:
        """A figure: an exact quote of an article, or of a policy item (cited by its item)."""
        # numbered per prefix (fig_tax_ and fig_tax_dispute_ count apart), a merged quote takes no number
        unit_id = f"{prefix}{self.numbered[prefix] + 1}"
        if self.add(unit_id, "figure", quote.text, quote.file, quote.ref, self.kb.cite(quote),
                    lead=lead, topics=topics, about=quote.about, **extra):
            self.numbered[prefix] += 1


FACT_CLAUSE = re.compile(r"[^，,；;]+")


def fact_clauses(sentence: str) -> list[str]:
    """A sentence that states two time limits or counts (「用水报装…不超过8个工作日，用气报装…
    不超过10个工作日」) as one clause per fact, so that each can answer alone; else the sentence."""
    pieces = [(m.start(), m.end()) for m in FACT_CLAUSE.finditer(sentence)]
    starts = [start for start, end in pieces
              if ASPECT_PATTERNS["time"].search(sentence[start:end]) and re.search(r"\d", sentence[start:end])]
    if len(starts) < 2:
        return [sentence]
    # each fact keeps the clauses after it (「其中，涉及开挖占绿的，备案…2日」), the first those before
    bounds = [0, *starts[1:], len(sentence)]
    groups = [sentence[a:b].strip().rstrip("，,；; ") for a, b in zip(bounds, bounds[1:])]
    return groups if all(len(g) >= MIN_SENTENCE for g in groups) else [sentence]


def _topics_quoting(kb: KnowledgeBase) -> dict[str, list[str]]:
    """policy id → topics citing it, and the aspects each topic's quote says it answers."""
    quoting: dict[str, list[str]] = {}
    for topic in kb.topics.values():
        for quote in (*topic.policies, *topic.points):
            if quote.policy:
                quoting.setdefault(quote.policy, []).append(topic.id)
    return quoting


def _about(kb: KnowledgeBase, policy_id: str) -> list[str]:
    return [a for t in kb.topics.values() for q in (*t.policies, *t.points) if q.policy == policy_id for a in q.about]


def _paragraphs(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(section heading, paragraph) in order. A newspaper's text breaks paragraphs across
    lines (「后续监管制」 / 「度、风险控制制度」): a long line that ends mid-sentence is joined to the
    next; a short line without a sentence end is a caption, byline or dateline and is dropped."""
    heading, pending = "", ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            heading, pending = line.lstrip("# ").strip(), ""
            continue
        if not pending and len(line) < MIN_PARAGRAPH and not SENTENCE_STOP.search(line[-1]):
            continue
        pending += line
        if SENTENCE_STOP.search(line[-1]):
            yield heading, pending
            pending = ""
    if pending:
        yield heading, pending


def article_sentences(text: str, spans: Iterable[dict[str, str]]) -> list[tuple[str, str]]:
    """(section heading, sentence) for every sentence inside the spans of an article."""
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    for span in spans:
        inside: list[str] = []
        for line in lines:
            stripped = line.strip()
            if not inside and stripped.startswith(span["from"]):
                inside.append(line)
            elif inside and span.get("to") and stripped.startswith(span["to"]):
                break
            elif inside:
                inside.append(line)
        for heading, paragraph in _paragraphs(inside):
            for sentence in SENTENCE_END.split(paragraph):
                sentence = sentence.strip()
                if len(sentence) >= MIN_SENTENCE:
                    found.append((heading, sentence))
    return found


def _topics_named(kb: KnowledgeBase, text: str) -> list[str]:
    """Topics whose title or keywords the sentence contains, most mentions first."""
    counts = []
    for topic in kb.topics.values():
        n = sum(text.count(k) for k in (*topic.keywords, topic.title) if len(k) > 1)
        if n:
            counts.append((-n, topic.id))
    return [t for _, t in sorted(counts)][:2]


def build(kb: KnowledgeBase, sources: Path) -> list[dict[str, Any]]:
    """Every answer unit of the knowledge base, as JSON-ready records."""
    builder = _Builder(kb)
    quoting = _topics_quoting(kb)
    for topic in kb.topics.values():
        for quote in topic.points:
            builder.quote(f"fig_{topic.id}_", quote, [topic.id], topic.lead)
    for channel in kb.channels.values():
        users = [t.id for t in kb.topics.values() if channel.id in t.channels]
        lead = [channel.operator] if channel.operator else (kb.topics[users[0]].lead if users else [])
        builder.add(f"ch_{channel.id}", "channel", f"{channel.name}：{channel.how}", channel.source["file"],
                    channel.source.get("ref", ""), kb.documents[channel.source["file"]].cite,
                    lead=lead, about=["channel"], channel=channel.id, title=channel.name)
        for quote in channel.points:
            builder.quote(f"fig_{channel.id}_", quote, (), lead, channel=channel.id)
    for product in kb.products.values():
        users = [t.id for t in kb.topics.values() if product.id in t.products]
        for quote in product.points:
            builder.quote(f"fig_{product.id}_", quote, users, kb.topics[users[0]].lead if users else [])
    # the documents group items by category: a topic citing one item is near the category's others
    by_category: dict[tuple[str, str], list[str]] = {}
    for policy in kb.policies.values():
        for topic_id in quoting.get(policy.id, []):
            by_category.setdefault((policy.doc, policy.category), []).append(topic_id)
    for policy in sorted(kb.policies.values(), key=lambda p: (p.year, p.item)):
        cite, topics = f"{policy.doc} 第{policy.item}条", quoting.get(policy.id, [])
        near = [t for t in dict.fromkeys(by_category.get((policy.doc, policy.category), [])) if t not in topics]
        builder.add(policy.id, "policy", policy.text, policy.source["file"], policy.source["ref"], cite,
                    lead=policy.lead, co=policy.co, topics=topics, about=_about(kb, policy.id), related=near,
                    title=policy.category, year=policy.year)
        # and each of its sentences: an item often holds several commitments, and the one asked
        # about is found (and shown) best on its own
        sentences = [t.strip() for t in SENTENCE_END.split(policy.text) if len(t.strip()) >= MIN_SENTENCE]
        parts = [c for t in sentences for c in fact_clauses(t)]
        for n, sentence in enumerate(parts if len(parts) > 1 else [], 1):
            builder.add(f"{policy.id}_{n}", "policy", sentence, policy.source["file"], policy.source["ref"], cite,
                        lead=policy.lead, co=policy.co, topics=topics, related=near, title=policy.category,
                        year=policy.year)
    for department in kb.departments.values():
        if department.contact:
            parts = [f"{k}：{v}" for k, v in (("联系人", department.contact.get("person")),
                                               ("联系电话", department.contact.get("phone")),
                                               ("邮箱", department.contact.get("email"))) if v]
            builder.add(f"contact_{department.id}", "contact", f"{department.display}（{'，'.join(parts)}）",
                        department.source["file"], department.source.get("ref", ""),
                        kb.documents[department.source["file"]].cite, lead=[department.id],
                        about=["contact"], title=department.name)
    for document in kb.documents.values():
        if not document.spans:
            continue
        text = (sources / document.file).read_text(encoding="utf-8")
        for n, (heading, sentence) in enumerate(article_sentences(text, document.spans), 1):
            # no department of its own: the article names none reliably, the routed topic's lead answers
            builder.add(f"art_{document.file[:3]}_{n}", "article", sentence, document.file, heading,
                        document.cite, related=_topics_named(kb, sentence))
    return list(builder.units.values())


def dumps(units: list[dict[str, Any]]) -> str:
    header = {"generated_by": "make kb (scripts/build_kb.py) from kb/: do not edit"}
    return json.dumps({**header, "units": units}, ensure_ascii=False, indent=1) + "\n"


def load(path: Path | str | None = None) -> list[AnswerUnit]:
    """The units `make kb` wrote, beside the knowledge base the actions serve ($KB_DIR)."""
    path = path or served_dir() / "generated" / "answer_units.json"
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        AnswerUnit(**{**u, **{k: tuple(u[k]) for k in ("lead", "co", "topics", "aspects", "related")}})
        for u in raw["units"]
    ]


def load_questions(path: Path | str | None = None) -> dict[str, tuple[str, ...]]:
    """Unit id → the questions written for it, normalized as messages are (`make kb`)."""
    path = Path(path or served_dir() / "generated" / QUESTIONS_FILE.name)
    if not path.exists():
        return {}
    return {k: tuple(v) for k, v in json.loads(path.read_text(encoding="utf-8"))["questions"].items()}


def as_record(unit: AnswerUnit) -> dict[str, Any]:
    return asdict(unit)
