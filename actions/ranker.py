"""Pick the answer unit for a message: the topic's own units first, then the rest of the KB.

The NLU has routed the message to a topic; this second step ranks the units of
kb/generated/answer_units.json for the words of the message. A unit's score is its Okapi
BM25 over jieba words (with the KB dictionary), character bigrams and characters, scaled to
the best candidate, plus 0.5 × the same share for the closest of the questions written for it
(lexicon/answers/unit_questions/: users' words beside the plan's), plus a bonus when it belongs
to the routed topic and when it holds the kind of fact the question asks for
(actions/question.py). The weights were chosen on the tune half of tests/answers/bench.yml
(`make bench-answers`); docs/measurements.md has the figures.
Then the passage of the unit that carries the answer is cut out for the first line.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from actions import units as units_module
from actions.okapi import Okapi
from actions.question import LEXICON, Ask
from actions.units import ASPECT_PATTERNS, AnswerUnit

JIEBA_DICT = Path(__file__).resolve().parent.parent / "jieba_dict"
SYNONYMS = Path(__file__).resolve().parent.parent / "lexicon" / "answers" / "search_synonyms.yml"
CJK_OR_WORD = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
CJK_WORD = re.compile(r"[\u4e00-\u9fff]+")
CLAUSE_END = re.compile(r"(?<=[，,；;。！？!?：:])")
# weights, chosen on the tune split of the answer benchmark
TOPIC_BONUS = 0.5  # the topic cites the unit (kb/topics.yml)
NEAR_BONUS = 0.3  # an article sentence naming the topic, an item of its category, a channel it uses
ASPECT_BONUS = 0.2
CHANNEL_BONUS = 0.4
KIND_BONUS = {"policy": 0.05}  # an item's own words before an article's report of them
QUESTION_WEIGHT = 0.5  # the best of a unit's written questions, beside its own words
MAX_PASSAGE = 110  # characters of a unit shown on the first line
QUERY_CHARS = 300  # characters of a message the search reads (its end)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """jieba with the words `make kb` writes (names, aliases, keywords), as the NLU cuts."""
    import jieba

    tokenizer = jieba.Tokenizer()
    for path in sorted(JIEBA_DICT.glob("*.txt")):
        tokenizer.load_userdict(str(path))
    return tokenizer


@functools.lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    return frozenset(yaml.safe_load(LEXICON.read_text(encoding="utf-8"))["stopwords"])


@functools.lru_cache(maxsize=1)
def written_questions() -> dict[str, tuple[str, ...]]:
    """Unit id → the questions written for it, as `make kb` normalized them."""
    return units_module.load_questions()


@functools.lru_cache(maxsize=1)
def _synonyms() -> dict[str, list[str]]:
    return yaml.safe_load(SYNONYMS.read_text(encoding="utf-8"))["expand"]


def expanded(text: str) -> str:
    """A question with the documents' words for what it says appended (施工许可 → 建筑许可,
    water connection → 用水报装)."""
    lowered = text.lower()
    extra = [w for typed, words in _synonym_patterns() if typed.search(lowered) for w in words if w not in text]
    return " ".join([text, *dict.fromkeys(extra)])


@functools.lru_cache(maxsize=1)
def _synonym_patterns() -> list[tuple[re.Pattern[str], list[str]]]:
    """English keys match as whole words (「sue」 is not in "issue"), in the plural too (「follow-up
    visit」 in "follow-up visits"); Chinese ones anywhere."""
    return [(re.compile(rf"\b{re.escape(k.lower())}(?:e?s)?\b" if k.isascii() else re.escape(k)), words)
            for k, words in _synonyms().items()]


def terms(text: str) -> list[str]:
    """Search terms: jieba's search cut without stopwords, character bigrams and characters."""
    text = text.lower()
    stop = stopwords()
    words = [w for w in _tokenizer().lcut_for_search(text) if CJK_OR_WORD.search(w) and w not in stop]
    chars = [c for c in text if "\u4e00" <= c <= "\u9fff"]
    bigrams = ["#" + a + b for a, b in zip(chars, chars[1:])]
    # single characters too: colloquial words share a character with the documents' terms
    # (寄到 ~ 寄递, 手机上 ~ 手机端) more often than a word or a bigram
    unigrams = ["@" + c for c in chars if c not in stop]
    return words + bigrams + unigrams


def asked_part(text: str) -> str:
    """The end of a long message, where people put the question after the story: a search
    over 2,000 characters costs the server a fifth of a second and finds nothing better."""
    return text[-QUERY_CHARS:]


def content_words(text: str) -> list[str]:
    """The words a question is about: jieba words of two or more characters, less stopwords
    and question words (多久, 可以, 要不要 …)."""
    from actions.question import cue_words

    stop, cues = stopwords(), cue_words()
    return [w for w in _tokenizer().lcut(asked_part(text)) if len(w) > 1 and CJK_WORD.fullmatch(w) and w not in stop and w not in cues]


def held_in(word: str, text: str) -> bool:
    """The word is in the text, or each of its shorter words is (质押贷款: 质押 … 贷款)."""
    if word in text:
        return True
    parts = [w for w in _tokenizer().lcut_for_search(word) if len(w) > 1 and w != word]
    return bool(parts) and all(p in text for p in parts)


@dataclass(frozen=True)
class Ranked:
    unit: AnswerUnit
    score: float
    prior: float  # how close to the routed topic: cited by it, near it, or not
    match: float  # BM25 share of the best candidate's (0–1), by its words or a written question's
    bm25: float = 0.0  # the unscaled score, comparable across messages
    own: float = 0.0  # BM25 share of its own words
    asked: float = 0.0  # BM25 share of its closest written question


class UnitIndex:
    """Okapi BM25 (k1 = 1.2, b = 0.6) over the units, and the priors of topic and ask."""

    def __init__(self, units: list[AnswerUnit], k1: float = 1.2, b: float = 0.6,
                 questions: dict[str, tuple[str, ...]] | None = None) -> None:
        self.units = units
        self.by_id = {u.id: u for u in units}
        self.okapi = Okapi((terms(u.index_text) for u in units), k1=k1, b=b)
        self.idf = self.okapi.idf
        questions = written_questions() if questions is None else questions
        position = {u.id: i for i, u in enumerate(units)}
        # questions business owners would ask that a unit answers, written from the seeds (not
        # from the benchmark): a user's words meet a unit written in the plan's words
        asked = [(position[unit_id], q) for unit_id, qs in questions.items() if unit_id in position for q in qs]
        self.asker = [i for i, _ in asked]  # question → the unit it was written for
        self.asked = Okapi((terms(expanded(q)) for _, q in asked), k1=k1, b=b)
        # a figure quoting a sentence whole and the sentence itself answer the same questions,
        # whichever of the two a writer wrote them for
        same_text: dict[str, list[int]] = {}
        for i, unit in enumerate(units):
            same_text.setdefault(re.sub(r"[\W_]", "", unit.text), []).append(i)
        self.twins = {i: [j for j in group if j != i] for group in same_text.values() if len(group) > 1 for i in group}

    def question_scores(self, query: list[str]) -> dict[int, float]:
        """Unit → BM25 of its written question closest to the message."""
        best: dict[int, float] = {}
        for q, score in self.asked.matching(query).items():
            for unit in (self.asker[q], *self.twins.get(self.asker[q], ())):
                best[unit] = max(best.get(unit, 0.0), score)
        return best

    def rank(self, text: str, topic: str | None, ask: Ask, *, channels: Iterable[str] = (),
             topic_channels: Iterable[str] = (), only_topic: bool = False) -> list[Ranked]:
        """Units for the message, best first. `only_topic` keeps the topic's own (follow-ups)."""
        query = terms(expanded(asked_part(text)))
        named, own_channels = set(channels), set(topic_channels)
        own, by_questions = self.okapi.matching(query), self.question_scores(query)
        raw = []
        for i, unit in enumerate(self.units):
            prior = TOPIC_BONUS if topic in unit.topics else 0.0
            if not prior and (topic in unit.related or (unit.channel and unit.channel in own_channels)):
                prior = NEAR_BONUS
            if only_topic and not prior:
                continue
            if unit.kind == "channel" and ask.primary != "channel":
                continue  # a channel's description (the kb's words) answers where, not what
            raw.append((i, unit, own.get(i, 0.0), by_questions.get(i, 0.0), prior))
        top = max((r[2] for r in raw), default=0.0) or 1.0
        top_asked = max((r[3] for r in raw), default=0.0) or 1.0
        ranked = []
        for i, unit, score, asked, prior in raw:
            own_share, asked_share = score / top, asked / top_asked
            match = max(own_share, asked_share)
            total = own_share + QUESTION_WEIGHT * asked_share + KIND_BONUS.get(unit.kind, 0.0) + prior
            if ask.primary and ask.primary in unit.aspects:
                total += ASPECT_BONUS
            if unit.channel and unit.channel in named:
                total += CHANNEL_BONUS
            ranked.append(Ranked(unit, total, prior, match, score, own_share, asked_share))
        ranked.sort(key=lambda r: -r.score)
        return ranked


@functools.lru_cache(maxsize=1)
def default() -> UnitIndex:
    """The index over the units `make kb` wrote, built once per process."""
    return UnitIndex(units_module.load())


def clauses(text: str) -> list[str]:
    return [c for c in CLAUSE_END.split(text) if c.strip()]


def passage(unit: AnswerUnit, text: str, ask: Ask, limit: int = MAX_PASSAGE,
            idf: dict[str, float] | None = None) -> str:
    """The part of the unit that answers: the clause sharing the rarest words with the
    question (and holding the asked kind of fact), widened by its neighbours up to `limit`."""
    parts = clauses(unit.text)
    text = asked_part(text)
    if len(unit.text) <= limit or len(parts) == 1:
        return _trim(unit.text if len(unit.text) <= limit * 1.4 else unit.text[:limit])
    idf = idf if idf is not None else default().idf
    query = set(terms(expanded(text)))  # the documents' words for what was asked pick the clause too
    pattern = ASPECT_PATTERNS.get(ask.primary or "")

    def score(clause: str) -> float:
        shared = sum(idf.get(t, 1.0) for t in query & set(terms(clause)))
        return shared + (3.0 if pattern and pattern.search(clause) else 0.0)

    scores = [score(p) for p in parts]
    best = max(range(len(parts)), key=lambda i: (scores[i], -i))
    start, end = best, best + 1
    while True:  # widen towards the better neighbour while it fits
        options = []
        if end < len(parts) and len("".join(parts[start:end + 1])) <= limit:
            options.append((scores[end], "right"))
        if start > 0 and len("".join(parts[start - 1:end])) <= limit:
            options.append((scores[start - 1] + 0.01, "left"))  # the clause before often names the subject
        if not options:
            break
        if max(options)[1] == "right":
            end += 1
        else:
            start -= 1
    return _trim("".join(parts[start:end]))


def _trim(text: str) -> str:
    return text.strip().rstrip("，,；;：:。、 ")
