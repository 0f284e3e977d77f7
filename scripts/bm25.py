"""BM25 over the policy items: the search a user could use instead of the assistant.

The baseline of `make bench-nlu`: the question goes into a plain search over the 142 items
of the two policy documents (Okapi BM25, jieba's own dictionary without the kb words, as
a generic search engine would have), and the best item's lead unit is its answer. It says
"nothing found" only when no word of the question occurs in any item.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from actions.kb import KnowledgeBase, Policy
from components.text_normalizer import plain_jieba

WORD = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
# Question and function words a search engine drops, so the baseline ranks on content words.
STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 哦 嘛 噻 哈 呀 要 想 我 我们 你 您 他 她 它 这 那 这个 那个 怎么 怎么办 怎样 什么 多久 多少 "
    "哪里 哪儿 哪个 哪 谁 可以 能 能不能 可不可以 不 没有 没 有 是 在 和 与 及 或 就 都 也 还 又 给 把 被 让 "
    "请问 老师 你好 一下 一个 个 去 到 找 办 做 弄 搞 需要 应该 现在 已经 如果 因为 所以 但是 好 吗 啥 咋".split()
)


def tokenize(text: str) -> list[str]:
    """Search-engine style terms: jieba's search cut, without punctuation and stopwords."""
    return [w for w in plain_jieba().lcut_for_search(text.lower()) if WORD.search(w) and w not in STOPWORDS]


class BM25Index:
    """Okapi BM25 (k1 = 1.5, b = 0.75) over the policy items' category, title and text."""

    def __init__(self, policies: list[Policy], k1: float = 1.5, b: float = 0.75) -> None:
        self.policies = policies
        self.k1, self.b = k1, b
        self.docs = [Counter(tokenize(f"{p.category} {p.title or ''} {p.text}")) for p in policies]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.average = sum(self.lengths) / len(self.lengths)
        frequency = Counter(term for doc in self.docs for term in doc)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query)
        result = []
        for doc, length in zip(self.docs, self.lengths):
            score = 0.0
            for term in terms:
                tf = doc.get(term, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * length / self.average)
                    score += self.idf[term] * tf * (self.k1 + 1) / norm
            result.append(score)
        return result

    def best(self, query: str) -> Policy | None:
        """The top item, or None when no term of the query occurs in any item."""
        scores = self.scores(query)
        top = max(range(len(scores)), key=scores.__getitem__)
        return self.policies[top] if scores[top] > 0 else None


def index_for(knowledge_base: KnowledgeBase) -> BM25Index:
    return BM25Index(sorted(knowledge_base.policies.values(), key=lambda p: p.id))
