"""The normalizer turns what people type into what the model knows, without inventing words."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.text_normalizer import NLU_CHARS, TextNormalizer

ROOT = Path(__file__).resolve().parents[2]
LOOKUPS = [{"name": "topic_first_loan_renewal", "elements": ["续贷", "首贷续贷中心"]},
           {"name": "channel", "elements": ["渝快办"]}]


@pytest.fixture(scope="module")
def normalizer(tmp_path_factory) -> TextNormalizer:
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    context = ExecutionContext(GraphSchema({}), "test")
    component = TextNormalizer.create({"lexicon_path": str(ROOT / "lexicon")}, storage, Resource("norm"), context)
    component.train(TrainingData(lookup_tables=LOOKUPS))
    return TextNormalizer.load({}, storage, Resource("norm"), context)


@pytest.mark.parametrize("typed, expected", [
    ("公司註冊要多久", "公司注册要多久"),                 # traditional
    ("續貸中心在哪裡", "续贷中心在哪里"),
    ("ＡＢＣ１２３？？？", "ABC123?"),                    # full width, punctuation run
    ("开个火锅店要啥子手续哦", "开个火锅店要什么手续哦"),  # dialect
    ("执照好久能拿到", "执照多久能拿到"),
    ("续代咋个申请", "续贷怎么申请"),                      # pinyin typo + dialect
    ("住测公司", "注册公司"),
    ("专利质压贷款", "专利质押贷款"),
    ("发漂怎么开", "发票怎么开"),
    ("不动产登纪", "不动产登记"),
])
def test_normalizes(normalizer: TextNormalizer, typed: str, expected: str) -> None:
    assert normalizer.normalize(typed) == expected


@pytest.mark.parametrize("text", [
    "我要找人帮忙", "对手把包装做得跟我们一样", "保税展示", "增值税专票能开电子的不", "试用期辞退员工",
    "继承的房产登记", "财产保全", "工程招标全流程都电子化了吗", "最近老是停电", "没钱租办公室",
])
def test_real_words_are_never_corrected(normalizer: TextNormalizer, text: str) -> None:
    assert normalizer.normalize(text) == text


def test_english_becomes_its_chinese_terms(normalizer: TextNormalizer) -> None:
    assert set(normalizer.normalize("Can I use my patent as collateral for a loan?").split()) == {"专利", "质押", "贷款"}
    assert normalizer.normalize("How do I register a company?") == "注册公司"
    assert normalizer.normalize("What's the weather like?") == "What's the weather like?"  # no terms: kept
    assert normalizer.normalize("我想 register 一个公司要多久") == "我想 register 一个公司要多久 注册"


def test_english_phrases_match_whole_words_and_plurals() -> None:
    from components.text_normalizer import english_patterns, english_terms

    patterns = english_patterns({"hi": "你好", "invoice": "发票", "tax": "税务", "tax office": "税务局"})
    assert english_terms("His invoices are late", patterns) == ["发票"]  # 「hi」 is not in 「his」
    assert english_terms("hi, where is the tax office?", patterns) == ["税务局", "你好"]  # longest first
    assert english_terms("taxes", patterns) == ["税务"] and english_terms("syntax", patterns) == []


def test_every_english_phrase_of_the_lexicon_is_compiled_once(normalizer: TextNormalizer) -> None:
    """Bare phrases handed to re.search each time fell out of Python's 512-pattern cache past
    ~470 of them (an English message: 1.3 → 56 ms); the lexicon's phrases are compiled on load."""
    import re

    assert len(normalizer._english) == len(normalizer.lexicon["english"])
    assert all(isinstance(pattern, re.Pattern) for pattern, _ in normalizer._english)


def test_messages_keep_what_was_typed(normalizer: TextNormalizer) -> None:
    [message] = normalizer.process([Message(data={"text": "續貸"})])
    assert message.get("text") == "续贷" and message.get("raw_text") == "續貸"
    [unchanged] = normalizer.process([Message(data={"text": "续贷"})])
    assert unchanged.get("raw_text") is None
    [empty] = normalizer.process([Message(data={"text": ""})])
    assert empty.get("text") == ""


@pytest.mark.parametrize("payload", [
    '/answer_rated_badly{"rating_level": "非常不满意", "topic": "construction_permit", "rating_reason": "答非所问"}',
    '/rate_service{"rating_level": "满意", "case_id": "3"}', "/company_opening", "/nlu_fallback@0.9",
])
def test_intent_payloads_pass_untouched(normalizer: TextNormalizer, payload: str) -> None:
    """Buttons and channels send /intent{…}; Rasa unpacks it after the pipeline, as sent."""
    [message] = normalizer.process([Message(data={"text": payload})])
    assert message.get("text") == payload and message.get("typed_language") is None


def test_a_slash_before_words_is_still_a_message(normalizer: TextNormalizer) -> None:
    [message] = normalizer.process([Message(data={"text": "/開公司"})])
    assert message.get("text") == "/开公司"


def test_training_examples_are_normalized_too(normalizer: TextNormalizer) -> None:
    data = TrainingData([Message(data={"text": "啷个續貸", "intent": "first_loan_renewal"})])
    assert normalizer.process_training_data(data).training_examples[0].get("text") == "怎么续贷"


def test_fingerprint_follows_the_lexicon(tmp_path: Path) -> None:
    (tmp_path / "dialect.yml").write_text("replace:\n  啥子: 什么\n", encoding="utf-8")
    before = TextNormalizer.fingerprint_addon({"lexicon_path": str(tmp_path)})
    (tmp_path / "dialect.yml").write_text("replace:\n  啥子: 什么\n  咋个: 怎么\n", encoding="utf-8")
    assert TextNormalizer.fingerprint_addon({"lexicon_path": str(tmp_path)}) != before


def test_nlu_reads_the_end_of_a_long_message_and_actions_the_whole(normalizer: TextNormalizer) -> None:
    story = "我们公司在解放碑开了一家火锅店，今年想扩大经营再开一家分店，" * 40
    typed = story + "请问开分店营业执照要多久能办下来"
    [message] = normalizer.process([Message(data={"text": typed})])
    assert len(message.get("text")) <= NLU_CHARS and message.get("text").endswith("营业执照要多久能办下来")
    assert message.get("raw_text") == typed  # the handoff's problem description, the ranker's context
    [short] = normalizer.process([Message(data={"text": "开公司要多久"})])
    assert short.get("text") == "开公司要多久"
