"""What a question asks for: a time limit, a count, a cost, materials, where, who, yes or no.

Read from cue words in lexicon/questions.yml, so that the ranker can prefer a unit that
holds the kind of fact asked for, and the reply can say plainly when the documents hold
none (a phone number, an address, opening hours: `missing`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

LEXICON = Path(__file__).resolve().parent.parent / "lexicon" / "questions.yml"
LATIN = re.compile(r"[A-Za-z]")
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Ask:
    """The kinds of fact a message asks for, strongest cue first."""

    aspects: tuple[str, ...] = ()
    missing: str | None = None  # phone, address, hours, url, rate, person, amount
    yesno: bool = False

    @property
    def primary(self) -> str | None:
        return self.aspects[0] if self.aspects else None


@functools.lru_cache(maxsize=1)
def _cues() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    raw = yaml.safe_load(LEXICON.read_text(encoding="utf-8"))

    def ordered(table: dict[str, list[str]]) -> list[tuple[str, str]]:
        pairs = [(str(cue).lower(), kind) for kind, cues in table.items() for cue in cues]
        return sorted(pairs, key=lambda p: -len(p[0]))

    return ordered(raw["asks"]), ordered(raw["missing"])


def _found(text: str, cues: list[tuple[str, str]]) -> list[str]:
    """Kinds whose cues occur, longest cue first; a shorter cue inside a longer match is not counted."""
    kinds: list[str] = []
    taken: list[tuple[int, int]] = []
    for cue, kind in cues:
        start = text.find(cue)
        while start >= 0:
            end = start + len(cue)
            if not any(s < end and start < e for s, e in taken):
                taken.append((start, end))
                kinds.append(kind)
            start = text.find(cue, end)
    return list(dict.fromkeys(kinds))


def analyse(text: str, typed: str | None = None) -> Ask:
    """The ask of a message: `text` as normalized by the NLU, `typed` as the user wrote it.

    An English message is read as typed: the Chinese terms the normalizer appends to it name
    its topic (「office」 → 注册地址), not what it asks.
    """
    english = bool(typed) and len(LATIN.findall(typed)) > len(CJK.findall(typed))
    words = (typed if english else " ".join(filter(None, [text, typed]))).lower()
    asks, missing = _cues()
    found = _found(words, asks)
    lacking = _found(words, missing)
    yesno = "yesno" in found or words.rstrip("?？!！。 ").endswith(("吗", "不", "没", "不嘛", "没得"))
    aspects = tuple(k for k in found if k not in ("yesno", "which"))
    return Ask(aspects=aspects, missing=lacking[0] if lacking else None, yesno=yesno)
