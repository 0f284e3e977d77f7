"""The KB entity ruler tags names as entities; the jieba tokenizer retrains on a new dictionary."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.kb_entity_ruler import KBEntityRuler
from components.kb_jieba_tokenizer import KBJiebaTokenizer
from components.short_message_guard import ShortMessageGuard

LOOKUPS = [
    {"name": "channel", "elements": ["首贷续贷中心", "续贷中心", "E企办"]},
    {"name": "department", "elements": ["区市场监管局", "市场监管局", "市监局"]},
    {"name": "topic_first_loan_renewal", "elements": ["续贷", "首贷"]},
    {"name": "topic_tax", "elements": ["税"]},
    {"name": "topic_tax_dispute", "elements": ["税务纠纷"]},
    {"name": "unrelated", "elements": ["不该出现"]},
]


@pytest.fixture
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def trained_ruler(storage: LocalModelStorage) -> KBEntityRuler:
    context = ExecutionContext(GraphSchema({}), "test")
    ruler = KBEntityRuler.create({}, storage, Resource("ruler"), context)
    ruler.train(TrainingData(lookup_tables=LOOKUPS))
    return ruler


def entities(ruler: KBEntityRuler, text: str) -> list[tuple[str, str, str]]:
    [message] = ruler.process([Message(data={"text": text})])
    return [(e["entity"], e["value"], text[e["start"]:e["end"]]) for e in message.get("entities")]


def test_ruler_tags_names_topics_longest_first(storage) -> None:
    ruler = trained_ruler(storage)
    assert entities(ruler, "首贷续贷中心在哪，找市场监管局还是e企办") == [
        ("channel", "首贷续贷中心", "首贷续贷中心"),
        ("topic", "first_loan_renewal", "首贷"),
        ("topic", "first_loan_renewal", "续贷"),
        ("department", "市场监管局", "市场监管局"),
        ("channel", "e企办", "e企办"),
    ]
    assert entities(ruler, "跟税务局有税务纠纷") == [("topic", "tax", "税"), ("topic", "tax_dispute", "税务纠纷")]
    assert entities(ruler, "不该出现") == []


def test_ruler_survives_persist_and_load(storage) -> None:
    trained_ruler(storage)
    context = ExecutionContext(GraphSchema({}), "test")
    loaded = KBEntityRuler.load({}, storage, Resource("ruler"), context)
    assert entities(loaded, "续贷中心") == [("channel", "续贷中心", "续贷中心"), ("topic", "first_loan_renewal", "续贷")]


def test_ruler_leaves_empty_messages_alone(storage) -> None:
    ruler = trained_ruler(storage)
    [message] = ruler.process([Message(data={"text": ""})])
    assert not message.get("entities")


def test_jieba_fingerprint_follows_the_dictionary_content(tmp_path: Path) -> None:
    folder = tmp_path / "dict"
    folder.mkdir()
    (folder / "terms.txt").write_text("首贷续贷中心 2000 nz\n", encoding="utf-8")
    before = KBJiebaTokenizer.fingerprint_addon({"dictionary_path": str(folder)})
    (folder / "terms.txt").write_text("首贷续贷中心 2000 nz\n渝中融 2000 nz\n", encoding="utf-8")
    after = KBJiebaTokenizer.fingerprint_addon({"dictionary_path": str(folder)})
    assert before != after
    assert KBJiebaTokenizer.fingerprint_addon({"dictionary_path": None}) is None


def test_jieba_dictionary_path_must_be_a_folder(tmp_path: Path) -> None:
    single = tmp_path / "terms.txt"
    single.write_text("渝中融 2000 nz\n", encoding="utf-8")
    with pytest.raises(ValueError):
        KBJiebaTokenizer.fingerprint_addon({"dictionary_path": str(single)})


def test_kb_dictionary_keeps_names_whole() -> None:
    import jieba

    from components.kb_jieba_tokenizer import JiebaTokenizer

    JiebaTokenizer._load_custom_dictionary(str(Path(__file__).resolve().parents[2] / "jieba_dict"))
    assert "首贷续贷中心" in jieba.lcut("渝中区首贷续贷中心在哪里")
    assert "知识产权质押" in jieba.lcut("知识产权质押怎么弄")


@pytest.mark.parametrize("text, intent, falls_back", [
    ("钱的问题", "goodbye", True),      # DIET's guess on a fragment without a goodbye's words
    ("办个证", "complain", True),
    ("在哪办", "out_of_scope", True),   # out of scope, yet it holds a word of the service
    ("多少天", "out_of_scope", True),
    ("那成都呢", "out_of_scope", True),  # the same question of another place, on the current topic
    ("再见啦", "goodbye", False),       # the intent's own words keep it
    ("我要投诉", "complain", False),
    ("讲个笑话", "out_of_scope", False),
    ("你好", "greet", False),
    ("能寄给我吗", "bot_capabilities", True),  # asks about the service, not the assistant
    ("你会干啥", "bot_capabilities", False),
    ("这是一条很长的消息说再见之外的东西", "goodbye", False),  # longer messages are DIET's to judge
    ("/goodbye", "goodbye", False),     # a button's payload
])
def test_the_short_message_guard(text: str, intent: str, falls_back: bool) -> None:
    guard = ShortMessageGuard(ShortMessageGuard.get_default_config())
    message = Message(data={"text": text, "intent": {"name": intent, "confidence": 0.9},
                            "intent_ranking": [{"name": intent, "confidence": 0.9}]})
    [out] = guard.process([message])
    assert (out.get("intent")["name"] == "nlu_fallback") is falls_back
    if falls_back:  # what DIET guessed stays in the ranking, below the fallback
        assert [r["name"] for r in out.get("intent_ranking")] == ["nlu_fallback", intent]
