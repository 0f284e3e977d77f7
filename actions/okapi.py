"""Okapi BM25 over documents given as term lists: the one implementation the answer ranker
and the benchmarks' search-box baselines share (each brings its own tokenizer)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable


class Okapi:
    """BM25 scores of a query against each document; `idf` is there for other weightings."""

    def __init__(self, documents: Iterable[Iterable[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(d) for d in documents]
        self.lengths = [sum(d.values()) or 1 for d in self.docs]
        self.average = sum(self.lengths) / max(1, len(self.lengths))
        frequency = Counter(t for doc in self.docs for t in doc)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
        self._postings: dict[str, list[tuple[int, float]]] = {}  # term → (document, its weight there)
        for i, doc in enumerate(self.docs):
            norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / self.average)
            for term, tf in doc.items():
                self._postings.setdefault(term, []).append((i, self.idf[term] * tf * (self.k1 + 1) / (tf + norm)))

    def score(self, query: Iterable[str], i: int) -> float:
        """Each term of `query` as given counts (pass a set to count a repeated word once)."""
        doc, length, total = self.docs[i], self.lengths[i], 0.0
        for term in query:
            tf = doc.get(term, 0)
            if tf:
                norm = tf + self.k1 * (1 - self.b + self.b * length / self.average)
                total += self.idf[term] * tf * (self.k1 + 1) / norm
        return total

    def matching(self, query: Iterable[str]) -> dict[int, float]:
        """Scores of the documents sharing a term with `query` (each distinct term once), read
        from postings: the cost grows with the matches, not with the number of documents."""
        totals: dict[int, float] = {}
        for term in set(query):
            for i, weight in self._postings.get(term, ()):
                totals[i] = totals.get(i, 0.0) + weight
        return totals

    def scores(self, query: Iterable[str]) -> list[float]:
        terms = list(query)
        return [self.score(terms, i) for i in range(len(self.docs))]
