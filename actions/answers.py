"""Decide what answers a message on its topic: the unit, its passage, or that none exists.

The NLU routed the message to `topic`; actions/ranker.py orders the units; this module
takes the best one that holds the kind of fact asked (a time limit for 多久, a cost for
要钱吗), and decides when the documents simply do not publish what was asked — a phone
number, an address, opening hours, a rate, or a time limit for a service they give none
for — so that the reply says so instead of showing a card that looks like an answer.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from actions import kb as kb_module
from actions import ranker
from actions.kb import Channel, Department, KnowledgeBase, Topic
from actions.question import Ask, analyse, mostly_english, without_cues
from actions.ranker import Ranked, UnitIndex
from actions.units import ASPECT_PATTERNS, AnswerUnit

# Aspects the documents give for some services only: asked and not held → said plainly.
CHECKED_ASPECTS = ("time", "cost", "count")
# a unit ranked this close to the best (and on the topic) may serve when it has the aspect
NEAR_BEST = 0.9
# a unit off the topic answers only when its words agree this well (share of the best BM25)
OFF_TOPIC_MATCH = 0.8
# an older plan's item gives way to a newer plan's on the same fact within this share
# (2023 第20条's 用气 10 个工作日 over 2021 第6条's 13: the shorter sentence scores higher)
NEWER_PLAN = 0.8
# a unit merely near the topic answers a time/cost/count question only with words this close
MIN_ASPECT_MATCH = 0.4
# NLU could not place a message: a unit answers it anyway when the words agree well enough —
# (unscaled BM25, share of the message's content words the unit holds), either pair. On the
# answer benchmark's tune half and the NLU benchmark, out-of-scope questions stay below both
# (北京的社保怎么交 42/0.0, 哪个牌子的手机拍照好 49/0.33); the questions recovered are above.
SEARCH_CLEAR = ((55.0, 0.25), (45.0, 0.5))
# an English question's words are the glossary's Chinese for the phrases it recognised: half of
# them must be in the unit (「hotpot restaurant near Jiefangbei」 shares 3 of 9 with an item on
# 解放碑商圈; 「register unemployment」 2 of 4 with 失业登记)
SEARCH_CLEAR_ENGLISH = ((45.0, 0.5),)
# NLU was unsure but its likeliest topic holds a unit the words match this well (unscaled BM25
# of the unit's own words): answered on that topic rather than asked back. On the tune halves the
# right answers so recovered scored 48–103, the out-of-scope questions that fell back 7–37
# (哪个牌子的手机拍照好 36.7: 手机 ~ 手机端).
LIKELIEST_CLEAR = 45.0
# 「找哪个部门」 about more than the topic: its best item answers when it matches this clearly
# (unscaled BM25) and outscores the next by this much, though it shares no word of the extra
ABOUT_CLEAR = 45.0
ABOUT_MARGIN = 1.5
# 「可以。」 only for a question that asks for something, not whether it may be left undone
# (「个体户可以不交税吗」), answered by a passage that holds every word of what was asked
NEGATED_ASK = re.compile(r"(可以|能|能不能|可不可以|是不是|要不要)[不没免]|不用|不交|不办|不去|没有")
NEGATED = re.compile(r"不能|不可以|不行|不让|禁止|不得")
QUESTION_TAIL = re.compile(r"(吗|呢|不|没|嘛|不嘛|没得|要得不|行不|[?？!！。~ ])+$")


@dataclass(frozen=True)
class Answer:
    """What the reply states: a unit and the passage of it that answers, or what is missing."""

    topic: Topic
    ask: Ask
    unit: AnswerUnit | None
    passage: str
    department: Department
    channel: Channel | None
    missing: str | None = None  # a kind of fact the documents do not publish here
    subject: str = ""  # what the missing fact would be about (a channel or the topic)
    yes: bool = False  # a yes/no question the passage answers with yes (its qualifier)
    quote: bool = False  # the passage is an exact quote printed after the assistant's own words


def says_yes(question: str, ask: Ask, passage: str) -> bool:
    """Whether a yes/no question is answered 「可以」 by the passage: it asks whether something
    can be done (not whether it may be skipped) and the passage holds each of its words."""
    if not ask.yesno or ask.aspects or NEGATED.search(passage):
        return False
    asked = QUESTION_TAIL.sub("", question)
    if NEGATED_ASK.search(asked):
        return False
    words = ranker.content_words(asked)
    return bool(words) and all(ranker.held_in(w, passage) for w in words)


def _lead(kb: KnowledgeBase, topic: Topic, unit: AnswerUnit | None) -> Department:
    """The department the cited passage makes responsible: a policy item's own lead unit
    (第52条 招商回访 is 区招商局's even on a topic 区发展改革委 leads), else the topic's."""
    if unit and unit.lead and unit.kind != "channel" and (unit.kind == "policy" or topic.id not in unit.topics):
        return kb.departments[unit.lead[0]]
    return kb.lead_of(topic)[0]


def _home(kb: KnowledgeBase, topic: Topic, unit: AnswerUnit | None) -> Topic:
    """The topic a passage found off the routed one answers for: an article's count of cluster
    registrations, found for a question NLU routed to 外商投资, is 区市场监管局's, through the
    cluster-registration channel."""
    if unit is None or topic.id in unit.topics or topic.id in unit.related:
        return topic
    return next((kb.topics[t] for t in (*unit.topics, *unit.related) if t in kb.topics), topic)


def _channel(kb: KnowledgeBase, topic: Topic, unit: AnswerUnit | None, named: list[str]) -> Channel | None:
    for channel in (unit.channel if unit else None, *named, *topic.channels):
        if channel and channel in kb.channels:
            return kb.channels[channel]
    return None


def _in_digits(unit: AnswerUnit, aspect: str | None) -> bool:
    """The unit states the asked kind of fact with a number in digits."""
    pattern = ASPECT_PATTERNS.get(aspect or "")
    return bool(pattern) and any(any(c.isdigit() for c in m.group()) for m in pattern.finditer(unit.text))


def _pick(kb: KnowledgeBase, ranked: list[Ranked], topic: Topic, ask: Ask) -> Ranked | None:
    """The best unit; for a time/cost/count question the best one near the top that holds it,
    the newer plan's item of two about as good."""
    candidates = [r for r in ranked if r.prior or r.match >= OFF_TOPIC_MATCH]
    if not candidates:
        return ranked[0] if ranked else None
    best = candidates[0]
    if ask.primary in CHECKED_ASPECTS:
        # a unit holding such a fact answers when the topic cites it or its words agree: a
        # 「1 个工作日」 of unemployment benefits is no time limit for labour arbitration
        holding = [r for r in candidates if ask.primary in r.unit.aspects
                   and (r.prior >= ranker.TOPIC_BONUS or r.match >= MIN_ASPECT_MATCH)]
        if holding and holding[0].score >= best.score * NEAR_BEST:
            # of those about as good, the one the topic itself cites (开办企业 → 全流程“零成本”)
            # and of two plans' items, the newer plan's: the 2023 list's 10 个工作日 replaces the 2021 plan's 13
            close = [r for r in holding if r.score >= holding[0].score * NEAR_BEST]
            # a figure in digits (最快0.5天) before a phrase (全程“一日办结”)
            chosen = max(close, key=lambda r: (r.prior, _in_digits(r.unit, ask.primary), r.score))
            # of two documents' figures for the same thing, the newer one's: the 2024 report's
            # 140 项 over the 2021 plan's 74 项, the 2023 list's 10 个工作日 over the 2021 plan's 13
            rivals = [r for r in holding if r.prior >= chosen.prior and r.score >= chosen.score * NEWER_PLAN
                      and (r.unit.kind == chosen.unit.kind == "policy" or ask.now)]
            newest = max((_year(kb, r.unit) for r in rivals), default=0)
            if _year(kb, chosen.unit) < newest:
                return next(r for r in rivals if _year(kb, r.unit) == newest)
            return chosen
        on_topic = [r for r in holding if r.prior]
        if on_topic:
            return on_topic[0]
    return best


def _year(kb: KnowledgeBase, unit: AnswerUnit) -> int:
    """The year the unit's figure is of: a plan item's own year, else its document's."""
    document = kb.documents.get(unit.file)
    return unit.year or (document.year if document else 0)


def _whole_of(ranked: list[Ranked], best: Ranked | None) -> Ranked | None:
    """A figure quoting part of a policy item (「引导专利商标混合质押」) gives way to the item's
    clause that holds it when that ranks about as well: the same fact, with the words around it
    that settle the question (「…质押融资、信用贷款的支持力度」) and the item's own citation."""
    if best is None or best.unit.kind != "figure":
        return best
    return next((r for r in ranked if r.unit.kind == "policy" and best.unit.text in r.unit.text
                 and r.score >= best.score * NEAR_BEST), best)


def _in_documents_words(ranked: list[Ranked], best: Ranked | None) -> Ranked | None:
    """A channel's description is the knowledge base's summary; the seed sentence that sets the
    channel up (「设立涉税费争议调解室…」, cited to its item) answers 「在哪办」 in the documents' words."""
    if best is None or best.unit.kind != "channel":
        return best
    quotes = [r for r in ranked if r.unit.kind == "figure" and r.unit.channel == best.unit.channel]
    return quotes[0] if quotes else best


def _contact(kb: KnowledgeBase, index: UnitIndex, departments: list[str]) -> AnswerUnit | None:
    """The published contact of a department the message names (only 区营商办 has one)."""
    for unit in index.units:
        if unit.kind == "contact" and set(unit.lead) & set(departments):
            return unit
    return None


LEAD_HEADER = re.compile(r"[（(]牵头单位[:：]\s*[^，,；;）)]+[）)]?")


@functools.lru_cache(maxsize=64)
def lead_header(file: str, category: str) -> str | None:
    """The section header that names a category's lead unit, as the document prints it:
    「市场准入。（牵头单位：区市场监管局」."""
    for line in (kb_module.served_dir() / "sources" / file).read_text(encoding="utf-8").splitlines():
        start = line.find(category)
        if start >= 0:
            found = LEAD_HEADER.search(line, start)
            if found and found.start() - start <= len(category) + 2:
                return line[start:found.end()].strip()
    return None


def _about_more(index: UnitIndex, topic: Topic, query: str, ask: Ask) -> Ranked | None:
    """The topic's unit about what a 「找谁」 question says beyond the topic itself (「员工说我们
    拖欠工资要去投诉，找哪个部门」: 投诉 — the item on complaints), or None for a plain 「劳动争议
    找谁」, which the lead's own line answers."""
    named = [k for k in (topic.title, *topic.keywords) if len(k) > 1]
    # what it is about: its words less how it asks who (「哪个部门」's 部门), an English
    # question's through the documents' words search_synonyms.yml gives them
    about = ranker.expanded(without_cues(query, "department"))
    extra = [w for w in ranker.content_words(about) if not any(w in k or k in w for k in named)]
    if not extra:
        return None
    ranked = index.rank(query, topic.id, ask, only_topic=True)[:2]
    if not ranked or ranked[0].prior < ranker.TOPIC_BONUS or ranked[0].unit.kind == "channel":
        return None
    best = ranked[0]
    # it says what it is about, or the words settle on one of the topic's items all the same
    # (「有莫得一对一帮的」 is 「一企一策」精准帮扶: no word in common, BM25 71 against 32)
    clear = best.bm25 >= ABOUT_CLEAR and (len(ranked) == 1 or best.score >= ABOUT_MARGIN * ranked[1].score)
    return best if clear or any(ranker.held_in(w, best.unit.text) for w in extra) else None


def _who(kb: KnowledgeBase, index: UnitIndex, topic: Topic, ask: Ask, named: list[str], query: str = "") -> Answer:
    """「找哪个部门」: the lead units, and the document's own words naming them — or, when the
    question says what it is about, the topic's passage on that."""
    lead = kb.lead_of(topic)[0]
    about = _about_more(index, topic, query, ask) if query else None
    if about is not None:
        unit = about.unit
        return Answer(topic, ask, unit, ranker.passage(unit, query, ask), _lead(kb, topic, unit),
                      _channel(kb, topic, unit, named), quote=True)
    source = topic.lead_source or (topic.policies[0] if topic.policies else None)
    unit = None
    if source is not None:
        unit = index.by_id.get(source.policy or "") or next(
            (u for u in index.units if u.file == source.file and source.text in u.text), None)
    if unit is None or source is None:
        return Answer(topic, ask, None, "", lead, _channel(kb, topic, None, named), missing="fact", subject=topic.title)
    header = lead_header(unit.file, unit.title) if unit.kind == "policy" and unit.title else None
    return Answer(topic, ask, unit, header or source.text, lead, _channel(kb, topic, None, named), quote=True)


def answer(kb: KnowledgeBase, topic: Topic, text: str, typed: str | None = None, *,
           entities: list[dict] | None = None, only_topic: bool = False,
           hint: str | None = None, context: str = "", index: UnitIndex | None = None) -> Answer:
    """The answer to `text` (normalized) on `topic`; `only_topic` for a follow-up, whose
    intent's aspect (`hint`) stands in when the words name none and whose earlier question
    (`context`) adds its subject to the search (what is asked stays the follow-up's)."""
    index = index or ranker.default()
    ask = analyse(text, typed)
    if hint and not ask.aspects:
        ask = dataclasses.replace(ask, aspects=(hint,))
    entities = entities or []
    named_channels = [str(e.get("value")) for e in entities if e.get("entity") == "channel"]
    named_units = [str(e.get("value")) for e in entities if e.get("entity") == "department"]
    subject = kb.channels[named_channels[0]].name if named_channels and named_channels[0] in kb.channels else topic.title
    if ask.missing in ("phone", "person"):
        contact = _contact(kb, index, named_units)
        if contact:  # the office itself is the channel: no platform of the routed topic beside it
            return Answer(topic, ask, contact, contact.text, kb.departments[contact.lead[0]], None)
    if ask.missing:
        return Answer(topic, ask, None, "", kb.lead_of(topic)[0], _channel(kb, topic, None, named_channels),
                      missing=ask.missing, subject=subject)
    english = bool(typed) and mostly_english(typed)
    # an English question is searched in its own words (search_synonyms.yml gives them the
    # documents' terms); the normalizer's terms are for routing and coarse (「office」 → 注册地址,
    # 「set up」 → 开公司), so they serve only when the synonyms know none of its words (「bus」)
    if english and ranker.content_words(ranker.expanded(typed)):
        query = " ".join(filter(None, [context, typed]))
    else:
        query = " ".join(filter(None, [context, typed if english else "", text]))
    if ask.primary == "department":
        return _who(kb, index, topic, ask, named_channels, query)
    ranked = index.rank(query, topic.id, ask, channels=named_channels, topic_channels=topic.channels,
                        only_topic=only_topic)
    best = _whole_of(ranked, _pick(kb, ranked, topic, ask))
    if ask.primary == "channel":  # 「在哪办」: the channel the topic uses, in the documents' words
        best = _in_documents_words(ranked, next((r for r in ranked if r.unit.kind == "channel" and r.prior), best))
    if best is None or (ask.primary in CHECKED_ASPECTS and ask.primary not in best.unit.aspects):
        return Answer(topic, ask, None, "", kb.lead_of(topic)[0], _channel(kb, topic, None, named_channels),
                      missing=ask.primary or "fact", subject=subject)
    unit = best.unit
    passage = ranker.passage(unit, query, ask)
    home = _home(kb, topic, unit)
    return Answer(topic, ask, unit, passage, _lead(kb, home, unit), _channel(kb, home, unit, named_channels),
                  yes=not english and says_yes(text, ask, passage))


def search(kb: KnowledgeBase, text: str, typed: str | None = None, *, entities: list[dict] | None = None,
           index: UnitIndex | None = None) -> Answer | None:
    """A message NLU could not place: answered by the unit it matches clearly, on that unit's
    topic, or None (the assistant asks back)."""
    index = index or ranker.default()
    english = bool(typed) and mostly_english(typed)
    query = f"{typed} {text}" if english and typed != text else text  # the same words twice would score twice
    ranked = index.rank(query, None, analyse(text, typed))
    # an English question's words count through the documents' words search_synonyms.yml gives them
    words = ranker.content_words(ranker.expanded(query) if english else query)
    if not ranked or not words:
        return None
    unit = ranked[0].unit
    coverage = sum(ranker.held_in(w, unit.text) for w in words) / len(words)
    clear = SEARCH_CLEAR_ENGLISH if english else SEARCH_CLEAR
    if not any(ranked[0].bm25 >= score and coverage >= share for score, share in clear):
        return None
    topic = kb.topic(next(iter((*unit.topics, *unit.related)), None))
    if topic is None:
        return None
    return answer(kb, topic, text, typed, entities=entities, index=index)


def on_likeliest(kb: KnowledgeBase, topic: Topic, text: str, typed: str | None = None, *,
                 entities: list[dict] | None = None, index: UnitIndex | None = None) -> Answer | None:
    """A message NLU placed below its threshold: answered on its likeliest topic when the best
    unit for it there matches the words clearly (the ask-back's first choice, without the
    extra turn), else None."""
    index = index or ranker.default()
    query = f"{typed} {text}" if typed and mostly_english(typed) else text
    ranked = index.rank(query, topic.id, analyse(text, typed))
    if not ranked or ranked[0].bm25 < LIKELIEST_CLEAR or not ranker.content_words(query):
        return None
    found = answer(kb, topic, text, typed, entities=entities, index=index)
    return found if found.unit is not None else None


def unplaced(kb: KnowledgeBase, text: str, typed: str | None, likeliest: Topic | None, *,
             entities: list[dict] | None = None) -> Answer | None:
    """A whole question NLU could not place: the passage it matches clearly anywhere, else a clear
    one on NLU's likeliest topic, else None (the assistant asks back)."""
    found = search(kb, text, typed, entities=entities)
    if found is None and likeliest is not None:
        found = on_likeliest(kb, likeliest, text, typed, entities=entities)
    return found


def for_department(kb: KnowledgeBase, text: str, typed: str | None = None, *, entities: list[dict] | None = None,
                   fallback_topic: Topic | None = None, index: UnitIndex | None = None) -> Answer | None:
    """A message NLU could not place that asks a named department for what no policy holds
    (「营商办电话多少」, 「市场监管局局长叫什么」): its published contact, or that the documents
    publish none and where to ask. None when it asks for no such thing or names no department."""
    index = index or ranker.default()
    ask = analyse(text, typed)
    named = [str(e.get("value")) for e in entities or [] if e.get("entity") == "department"
             and str(e.get("value")) in kb.departments]
    if not ask.missing or not named:
        return None
    department = kb.departments[named[0]]
    topic = next((t for t in kb.topics.values() if department.id in t.lead), None) or fallback_topic
    if topic is None:
        return None
    contact = _contact(kb, index, [department.id]) if ask.missing in ("phone", "person") else None
    if contact:
        return Answer(topic, ask, contact, contact.text, department, None)
    return Answer(topic, ask, None, "", department, _channel(kb, topic, None, []), missing=ask.missing,
                  subject=department.name)

