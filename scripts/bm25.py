"""BM25 over the policy items: the search a user could use instead of the assistant.

The baseline of `make bench-nlu`: the question goes into a plain search over the 142 items
of the two policy documents (Okapi BM25, jieba's own dictionary without the kb words, as
a generic search engine would have), and the best item's lead unit is its answer. It says
"nothing found" only when no word of the question occurs in any item.
"""

from __future__ import annotations

import re

from actions.kb import KnowledgeBase, Policy
from actions.okapi import Okapi
from actions.ranker import stopwords
from components.text_normalizer import plain_jieba

WORD = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def tokenize(text: str) -> list[str]:
    """Search-engine style terms: jieba's search cut, without punctuation and the stopwords a
    search engine drops (the assistant's own list, lexicon/answers/questions.yml)."""
    stop = stopwords()
    return [w for w in plain_jieba().lcut_for_search(text.lower()) if WORD.search(w) and w not in stop]


class BM25Index:
    """Okapi BM25 (k1 = 1.5, b = 0.75) over the policy items' category, title and text."""

    def __init__(self, policies: list[Policy], k1: float = 1.5, b: float = 0.75) -> None:
        self.policies = policies
        self.okapi = Okapi((tokenize(f"{p.category} {p.title or ''} {p.text}") for p in policies), k1=k1, b=b)

    def scores(self, query: str) -> list[float]:
        return self.okapi.scores(tokenize(query))

    def best(self, query: str) -> Policy | None:
        """The top item, or None when no term of the query occurs in any item."""
        scores = self.scores(query)
        top = max(range(len(scores)), key=scores.__getitem__)
        return self.policies[top] if scores[top] > 0 else None


def index_for(knowledge_base: KnowledgeBase) -> BM25Index:
    return BM25Index(sorted(knowledge_base.policies.values(), key=lambda p: p.id))
