"""Make what users type look like what the model knows, before anything tokenizes it.

Runs first in the pipeline, on training examples and on every message alike:

1. full-width letters, digits and punctuation → half-width; runs of !?。~ collapse to one;
2. traditional → simplified characters (OpenCC `t2s`, the converter from the registry);
3. Chongqing dialect → standard Mandarin (lexicon/dialect.yml: 啥子 → 什么, 好久 → 多久 …);
4. pinyin-keyboard typos of domain words → the word (续代 → 续贷, 住测 → 注册): a window of
   the message whose toneless pinyin, with the southwestern mergers z/zh, c/ch, s/sh, n/l,
   -n/-ng folded, equals a known term's is replaced by that term. Terms are the kb lookup
   tables (names, aliases, keywords) plus lexicon/terms.yml;
5. English words and phrases map to Chinese domain terms (lexicon/english.yml): an English
   question becomes its terms ("Can I renew my loan?" → 续贷 贷款), a Chinese one with a few
   English words gets them appended. What the user typed stays in `raw_text`.

Steps 2–4 keep the text's length wherever the lexicon does (step 1 shortens runs of
punctuation), so entity offsets mostly still point into what the user typed. A message
written mostly in English is marked `typed_language: en` for the actions. The lexicon and the term index are stored in the model, so a
trained model needs nothing outside it; the lexicon folder is part of the fingerprint.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.kb_jieba_tokenizer import folder_digest

logger = logging.getLogger(__name__)
LEXICON_FILE = "lexicon.json"
RAW_TEXT = "raw_text"
NLU_CHARS = 300  # of a message, the end NLU parses (actions/ranker.py searches the same end)
# what Rasa's RegexMessageHandler unpacks (after the pipeline): /intent, /intent@0.9, /intent{…}
INTENT_PAYLOAD = re.compile(r"^/[A-Za-z_][A-Za-z0-9_]*(@[0-9.]+)?(\{.*\})?$", re.S)
# "en" when the user wrote mostly English, so actions can add an English line
TYPED_LANGUAGE = "typed_language"
CJK = re.compile(r"[\u4e00-\u9fff]")
PUNCTUATION_RUN = re.compile(r"([!?。~～…,，.])\1+")
ENGLISH_WORD = re.compile(r"[A-Za-z]")
FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"))


def fold_width(text: str) -> str:
    """Full-width ASCII (Ａ１！) and the ideographic space → half-width, one char for one."""
    return "".join(
        unicodedata.normalize("NFKC", ch) if "\uff01" <= ch <= "\uff5e" or ch == "\u3000" else ch
        for ch in text
    )


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s.json")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


@lru_cache(maxsize=8192)
def plain_pinyin(char: str) -> str | None:
    """Toneless pinyin of one Chinese character (its most common reading)."""
    if not CJK.match(char):
        return None
    from pypinyin import lazy_pinyin

    return lazy_pinyin(char)[0]


@lru_cache(maxsize=8192)
def fuzzy_pinyin(char: str) -> str | None:
    """Toneless pinyin of one Chinese character with southwestern mergers folded."""
    syllable = plain_pinyin(char)
    if syllable is None:
        return None
    for long, short in FUZZY_INITIALS:
        if syllable.startswith(long):
            syllable = short + syllable[len(long):]
            break
    return syllable[:-1] if syllable.endswith("ng") else syllable


def pinyin_key(word: str) -> tuple[str, ...] | None:
    keys = tuple(fuzzy_pinyin(ch) for ch in word)
    return None if None in keys else keys  # type: ignore[return-value]


def build_term_index(terms: list[str]) -> dict[str, str]:
    """{'|'.join(pinyin key): term} for terms of 2–8 Chinese characters; first term wins."""
    index: dict[str, str] = {}
    for term in terms:
        if 2 <= len(term) <= 8 and all(CJK.match(ch) for ch in term):
            key = pinyin_key(term)
            if key:
                index.setdefault("|".join(key), term)
    return index


@lru_cache(maxsize=1)
def plain_jieba():
    """jieba with its own dictionary only (not the kb words), to know real words."""
    import jieba

    return jieba.Tokenizer()


def dictionary_words(text: str) -> list[tuple[int, int]]:
    """Spans of the multi-character dictionary words in text (jieba without HMM)."""
    return [(start, end) for word, start, end in plain_jieba().tokenize(text, HMM=False) if end - start > 1]


def _keeps_real_words(words: list[tuple[int, int]], start: int, term: str, window: str) -> bool:
    """A correction may not cut into a real word, nor change one: 找人 stays, 包装 stays."""
    end = start + len(window)
    for w_start, w_end in words:
        if w_end <= start or w_start >= end:
            continue
        if w_start < start or w_end > end:
            return False
        if term[w_start - start:w_end - start] != window[w_start - start:w_end - start]:
            return False
    return True


def _plausible_typo(term: str, window: str) -> bool:
    """At most half the characters differ; a two-character word may differ in both only
    when it sounds exactly the same (住测 → 注册), not merely alike (老是 ≠ 闹事)."""
    differing = sum(a != b for a, b in zip(term, window))
    if differing <= max(1, len(term) // 2):
        return True
    return len(term) == 2 and [plain_pinyin(c) for c in term] == [plain_pinyin(c) for c in window]


def correct_typos(text: str, index: dict[str, str], lengths: list[int], known: set[str]) -> str:
    """Replace windows that sound like a known term but are spelled otherwise.

    `known` words (the terms themselves and protected real words) are kept as they stand.
    """
    if not index or not CJK.search(text):
        return text
    words = dictionary_words(text)
    out: list[str] = []
    i = 0
    while i < len(text):
        step = 1
        piece = text[i]
        for length in lengths:
            window = text[i:i + length]
            if len(window) < length or not CJK.match(window[0]):
                continue
            if window in known:
                piece, step = window, length
                break
            key = pinyin_key(window)
            term = index.get("|".join(key)) if key else None
            if term and _plausible_typo(term, window) and _keeps_real_words(words, i, term, window):
                piece, step = term, length
                break
        out.append(piece)
        i += step
    return "".join(out)


EnglishPatterns = list[tuple[re.Pattern[str], str]]


def english_patterns(table: dict[str, str]) -> EnglishPatterns:
    """Each English phrase's pattern with its Chinese terms, longest phrases first, compiled once
    per lexicon: `re.search` on the bare phrases fell out of Python's 512-pattern cache past ~470
    phrases, and an English message then took 56 ms instead of 1.3 ms. A phrase matches as whole
    words, plurals too (invoice(s)) except for two-letter ones: 「hi」 is not in 「his」."""
    return [(re.compile(r"(?<![a-z])" + re.escape(phrase) + (r"(?:s|es)?" if len(phrase) > 2 else "")
                        + r"(?![a-z])"), table[phrase]) for phrase in sorted(table, key=len, reverse=True)]


def english_terms(text: str, patterns: EnglishPatterns) -> list[str]:
    """The Chinese terms of the English words and phrases in text, longest phrases first."""
    if not patterns or not ENGLISH_WORD.search(text):
        return []
    lowered = text.lower()
    found: list[str] = []
    for pattern, terms in patterns:
        if pattern.search(lowered):
            found.append(terms)
            lowered = pattern.sub(" ", lowered)
    return found


def mostly_english(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) / len(letters) >= 0.6


def with_english_terms(text: str, patterns: EnglishPatterns) -> str:
    """An English question becomes its Chinese terms (what the model knows best); Chinese
    mixed with a few English words keeps them and gets the terms appended."""
    terms = english_terms(text, patterns)
    if not terms:
        return text
    return " ".join(terms) if mostly_english(text) else f"{text} {' '.join(terms)}"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class TextNormalizer(GraphComponent):
    """Normalizes message text (width, script, dialect, typos, English) before tokenizing."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "lexicon_path": "lexicon",
            # lookup tables whose elements the typo corrector may restore
            "correct_to_lookups": True,
        }

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        path = config.get("lexicon_path")
        if not path:
            return None
        if not Path(path).is_dir():
            raise ValueError(f"lexicon_path must be the lexicon folder: {path}")
        return folder_digest(path)

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 lexicon: dict[str, Any] | None = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._use(lexicon or {"dialect": {}, "english": {}, "terms": {}, "protect": []})

    def _use(self, lexicon: dict[str, Any]) -> None:
        """Keep the lexicon and what is derived from it once, not per message."""
        self.lexicon = lexicon
        self._lengths = sorted({len(t) for t in lexicon["terms"].values()} | {len(p) for p in lexicon["protect"]},
                               reverse=True)
        self._known = set(lexicon["terms"].values()) | set(lexicon["protect"])
        self._english = english_patterns(lexicon["english"])
        table = lexicon["dialect"]
        self._dialect = re.compile("|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))) if table else None

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> TextNormalizer:
        return cls(config, model_storage, resource)

    @classmethod
    def from_lexicon(cls, folder: Path | str) -> TextNormalizer:
        """A normalizer outside a model, on lexicon/ alone (no lookup tables for the typo
        corrector): `make kb` normalizes the questions written for answer units with it, so
        they meet a message in the form the actions receive it."""
        normalizer = cls({"lexicon_path": str(folder)}, None, None)  # type: ignore[arg-type]
        normalizer._use(normalizer._read_lexicon([]))
        return normalizer

    def _read_lexicon(self, extra_terms: list[str]) -> dict[str, Any]:
        folder = Path(self._config["lexicon_path"])

        def read(name: str, key: str) -> Any:
            path = folder / name
            return yaml.safe_load(path.read_text(encoding="utf-8"))[key] if path.exists() else {}

        terms = list(read("terms.yml", "terms") or []) + extra_terms
        return {
            "protect": list(read("terms.yml", "protect") or []),
            "dialect": read("dialect.yml", "replace") or {},
            "english": {k.lower(): v for k, v in (read("english.yml", "append") or {}).items()},
            "terms": build_term_index(terms),
        }

    def train(self, training_data: TrainingData) -> Resource:
        extra: list[str] = []
        if self._config["correct_to_lookups"]:
            for table in training_data.lookup_tables:
                if isinstance(table.get("elements"), list):
                    extra += [to_simplified(fold_width(e)) for e in table["elements"]]
        self._use(self._read_lexicon(extra))
        with self._model_storage.write_to(self._resource) as directory:
            (directory / LEXICON_FILE).write_text(json.dumps(self.lexicon, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> TextNormalizer:
        try:
            with model_storage.read_from(resource) as directory:
                lexicon = json.loads((directory / LEXICON_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("TextNormalizer has no stored lexicon: messages are only width- and script-normalized")
            lexicon = None
        return cls(config, model_storage, resource, lexicon)

    def normalize(self, text: str) -> str:
        text = PUNCTUATION_RUN.sub(r"\1", fold_width(text))
        text = to_simplified(text)
        if self._dialect:
            text = self._dialect.sub(lambda m: self.lexicon["dialect"][m.group(0)], text)
        text = correct_typos(text, self.lexicon["terms"], self._lengths, self._known)
        return with_english_terms(text, self._english)

    def _normalize_message(self, message: Message, keep_raw: bool = False) -> None:
        text = message.get(TEXT)
        if isinstance(text, str) and INTENT_PAYLOAD.match(text.strip()):
            return  # a button's or a channel's `/intent{"entity": …}`: Rasa unpacks it as sent
        if isinstance(text, str) and text:
            # NLU reads the end of a long message, where people put the question after the story
            # (DIET's cost grows with the length: 202 ms of CPU for 2,000 characters, on the
            # event loop every other conversation waits on); actions read the whole as typed
            normalized = self.normalize(text[-NLU_CHARS:] if keep_raw else text)
            if keep_raw and normalized != text:
                # parse_data["text"] becomes the normalized text; actions read what was typed here
                message.set(RAW_TEXT, text, add_to_output=True)
            if keep_raw and mostly_english(text):
                message.set(TYPED_LANGUAGE, "en", add_to_output=True)
            message.set(TEXT, normalized)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            if not example.get("entities"):  # annotated offsets would shift; none are annotated
                self._normalize_message(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._normalize_message(message, keep_raw=True)
        return messages
