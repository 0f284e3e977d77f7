"""What a question asks for: a time limit, a count, a cost, materials, where, who, yes or no.

Read from cue words in lexicon/answers/questions.yml, so that the ranker can prefer a unit that
holds the kind of fact asked for, and the reply can say plainly when the documents hold
none (a phone number, an address, opening hours: `missing`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

LEXICON = Path(__file__).resolve().parent.parent / "lexicon" / "answers" / "questions.yml"
LATIN = re.compile(r"[A-Za-z]")
ASPECT_ORDER = ("cost", "time", "materials", "online", "channel", "department", "count", "list")
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Ask:
    """The kinds of fact a message asks for, strongest cue first."""

    aspects: tuple[str, ...] = ()
    missing: str | None = None  # phone, address, hours, url, rate, person, amount, price
    yesno: bool = False
    now: bool = False  # 「现在」「目前」: the state today, the newest document's figure

    @property
    def primary(self) -> str | None:
        return self.aspects[0] if self.aspects else None


@functools.lru_cache(maxsize=1)
def _lexicon() -> dict:
    """lexicon/answers/questions.yml, read once per process."""
    return yaml.safe_load(LEXICON.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _cues() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    raw = _lexicon()

    def ordered(table: dict[str, list[str]]) -> list[tuple[str, str]]:
        pairs = [(str(cue).lower(), kind) for kind, cues in table.items() for cue in cues]
        return sorted(pairs, key=lambda p: -len(p[0]))

    # a name holding a cue (注册地址) is matched as a whole, of no kind: the cue inside it is taken
    named = [(str(name).lower(), "") for name in raw.get("named") or []]
    return ordered(raw["asks"]), ordered(raw["missing"]) + named


@functools.lru_cache(maxsize=1)
def _statements() -> re.Pattern[str]:
    raw = _lexicon()
    return re.compile("|".join(map(re.escape, sorted(raw.get("statements") or [], key=len, reverse=True))) or "(?!)")


@functools.lru_cache(maxsize=1)
def _now_words() -> list[tuple[str, str]]:
    raw = _lexicon()
    return [(str(word).lower(), "now") for word in raw.get("now") or []]


@functools.lru_cache(maxsize=1)
def cue_words() -> frozenset[str]:
    """Every cue word: what a question asks with, not what it is about."""
    asks, missing = _cues()
    return frozenset(cue for cue, kind in (*asks, *missing) if kind)


def without_cues(text: str, kind: str) -> str:
    """The message less the cue words of one kind (「外贸的事找哪个部门」 → 「外贸的事找」): what it
    is about, not how it asks."""
    cues = [(cue, cue) for cue, k in _cues()[0] if k == kind]
    lowered = text.lower()
    for start, cue in sorted(longest_matches(lowered, cues), reverse=True):
        lowered = lowered[:start] + " " + lowered[start + len(cue):]
    return lowered


def longest_matches(text: str, pairs: list[tuple[str, str]]) -> list[tuple[int, str]]:
    """(position, value) of each (word, value) pair found in text, longest words first; a
    shorter word inside a longer match is not counted. English words match whole."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for word, value in sorted(pairs, key=lambda p: -len(p[0])):
        # an English cue is a whole word or phrase: 「who」 is not in "whole", 「fee」 not in "feel"
        pattern = re.compile(rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word))
        for match in pattern.finditer(text):
            start, end = match.span()
            if not any(s < end and start < e for s, e in taken):
                taken.append((start, end))
                found.append((start, value))
    return found


def _found(text: str, cues: list[tuple[str, str]]) -> list[str]:
    """Kinds whose cues occur, longest cue first (a name of no kind blocks the cues inside it)."""
    return list(dict.fromkeys(kind for _, kind in longest_matches(text, cues) if kind))


def mostly_english(typed: str) -> bool:
    """More Latin letters than Chinese characters: the NLU appended its Chinese terms."""
    return len(LATIN.findall(typed)) > len(CJK.findall(typed))


def analyse(text: str, typed: str | None = None) -> Ask:
    """The ask of a message: `text` as normalized by the NLU, `typed` as the user wrote it.

    An English message is read as typed: the Chinese terms the normalizer appends to it name
    its topic (「office」 → 注册地址), not what it asks.
    """
    words = (typed if typed and mostly_english(typed) else " ".join(filter(None, [text, typed]))).lower()
    words = _statements().sub(" ", words)
    asks, missing = _cues()
    found = _found(words, asks)
    lacking = _found(words, missing)
    yesno = "which" not in found and "list" not in found and (
        "yesno" in found or words.rstrip("?？!！。 ").endswith(("吗", "不", "没", "不嘛", "没得")))
    # 「多少」 asks for a count only when nothing more specific is asked (「要交多少费用」 is a cost)
    aspects = tuple(sorted((k for k in found if k not in ("yesno", "which")), key=ASPECT_ORDER.index))
    now = bool(longest_matches(words, _now_words()))  # English whole words: 「know」 is no 「now」
    return Ask(aspects=aspects, missing=lacking[0] if lacking else None, yesno=yesno, now=now)
