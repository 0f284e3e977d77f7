"""The review inbox's parts without a server: insight/review.py and the labels' audit trail on
SQLite and PostgreSQL, the grouping (console/review.py) and the reviewed file (console/reviewed.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from console.review import features, group, similarity
from console.reviewed import EMPTY, HELD_OUT, IN_TRAINING, MOVED, UNCHANGED, WRITTEN, Example, ReviewedFile, clean
from insight import review
from insight.store import InsightStore, Label
from insight.sync import sync
from insight.turns import Turn
from tests.conftest import ROOT
from tests.console.test_insight_api import HELD_OUT as HELD_OUT_TEXT
from tests.console.test_insight_api import later_day
from tests.insight import day
from tests.insight.writer import write


@pytest.fixture
def tracker_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/tracker.db"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(tracker_url: str, database_url: str) -> InsightStore:
    conversations = day.part_one()
    write(tracker_url, list(conversations.values()))
    write(tracker_url, day.part_two(conversations))
    write(tracker_url, later_day())
    store = InsightStore(database_url)
    sync(tracker_url, store)
    return store


def test_the_inbox_has_the_unsure_the_declined_and_the_badly_rated(store: InsightStore) -> None:
    items = review.inbox(store)
    assert [(i.turn.text, i.reasons) for i in items] == [
        ("今天天气怎么样", ("out_of_scope",)), ("办个证", ("asked_back",)),
        ("我电话***********，帮我订张机票", ("out_of_scope",)), ("阿斯顿发噶", ("asked_back", "low_confidence")),
        ("施工许可多少个工作日", ("bad_rating",)), ("1", ("out_of_scope",)),
        ("注册商标找谁", ("asked_back", "low_confidence")), ("北京的社保怎么交", ("out_of_scope",)),
        ("今天天气怎么样啊", ("out_of_scope",)), ("明天天气怎么样", ("out_of_scope",)),
        ("工商执照在哪里弄", ("low_confidence",)), ("执照在哪里弄啊", ("low_confidence",)),
        (HELD_OUT_TEXT, ("out_of_scope",))]
    assert [t.text for t in review.rated_badly(store)] == ["施工许可多少个工作日"]
    assert [i.turn.text for i in review.inbox(store, department="zhujian")] == ["施工许可多少个工作日"]
    assert review.rated_badly(store, start="2026-03-03") == [] and review.rated_badly(store, channel="rest") == []
    assert [i.turn.text for i in review.inbox(store, start="2026-03-10", channel="socketio")] == [
        "工商执照在哪里弄", "执照在哪里弄啊"]
    assert [i.turn.text for i in review.inbox(store, below=0.9, department="renshe")] == ["公司拖欠工资三个月了怎么办"]


def test_labels_are_an_audit_trail(store: InsightStore) -> None:
    ids = [i.turn.event_id for i in review.inbox(store)]
    assert set(store.turns_by_id(ids[:3])) == set(ids[:3]) and store.turns_by_id([10**9]) == {}
    store.record_labels([Label(ids[0], "今天天气怎么样", "out_of_scope", "written", "boss", 100.0),
                         Label(ids[1], "办个证", "company_opening", "in_training", "boss", 101.0)])
    store.record_labels([Label(ids[0], "今天天气怎么样", "company_opening", "moved", "li" * 40, 102.0)])
    assert [(a.event_id, a.label, a.labelled_by) for a in store.labels([ids[0]])] == [
        (ids[0], "out_of_scope", "boss"), (ids[0], "company_opening", "li" * 32)]  # names cut to their column
    assert [a.labelled_at for a in store.labels()] == [100.0, 101.0, 102.0]
    assert store.labels(range(10**6, 10**6 + 1200)) == []  # more ids than one IN (…) takes


def turn(text: str, event_id: int) -> review.ReviewItem:
    return review.ReviewItem(Turn(event_id, "k", "rest", float(event_id), "question", "out_of_scope", text), ())


@pytest.mark.parametrize("a, b, alike", [
    ("今天天气怎么样", "今天天气怎么样啊", 6 / 7), ("今天天气怎么样", "北京的社保怎么交", 1 / 12),
    ("我电话***********", "我电话", 1.0), ("ＡＢＣ", "abc", 1.0), ("1", "1", 1.0), ("1", "2", 0.0), ("", "", 0.0)])
def test_similarity_is_the_jaccard_index_of_character_pairs(a: str, b: str, alike: float) -> None:
    assert similarity(features(a), features(b)) == pytest.approx(alike)


def test_groups_are_led_by_their_oldest_question_largest_first() -> None:
    texts = ["办个证", "今天天气怎么样", "工商执照在哪里弄", "明天天气怎么样", "执照在哪里弄啊", "今天天气怎么样啊"]
    found = group([turn(t, n) for n, t in enumerate(texts)])
    assert [[i.turn.text for i in g.items] for g in found] == [
        ["今天天气怎么样", "明天天气怎么样", "今天天气怎么样啊"], ["工商执照在哪里弄", "执照在哪里弄啊"], ["办个证"]]
    assert len(group([turn(t, n) for n, t in enumerate(texts)], threshold=1.0)) == 6


def test_the_reviewed_file_is_sorted_masked_and_never_repeats(tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    path = tmp_path / "nlu" / "reviewed.yml"
    (tmp_path / "nlu").mkdir()
    (tmp_path / "nlu" / "company.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: company_opening\n  examples: |\n    - [开公司](topic)好久能办完下来\n', encoding="utf-8")
    reviewed = ReviewedFile(path, ROOT)
    at = "2026-03-10T10:00:00+08:00"
    results = reviewed.add([Example("注销要多久", "deregistration", "boss", at),
                            Example("  我的微信 zhang_san88 帮我开公司 ", "company_opening", "boss", at),
                            Example("开公司好久能办完下来", "company_opening", "boss", at),
                            Example("/company_opening", "company_opening", "boss", at),
                            Example(HELD_OUT_TEXT, "out_of_scope", "boss", at),
                            Example("看看[这个](链接)", "out_of_scope", "boss", at),
                            Example("注销要多久", "deregistration", "li", at)])
    assert results == [WRITTEN, WRITTEN, IN_TRAINING, EMPTY, HELD_OUT, WRITTEN, UNCHANGED]
    assert reviewed.add([Example("注销要多久", "company_opening", "li", at)]) == [MOVED]
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [(e["intent"], [x["text"] for x in e["examples"]]) for e in document["nlu"]] == [
        ("company_opening", ["我的微信 *********** 帮我开公司", "注销要多久"]), ("out_of_scope", ["看看［这个］(链接)"])]
    assert document["nlu"][0]["examples"][1]["metadata"] == {"labelled_by": "li", "labelled_at": at}
    assert sorted(m.get("text") for m in load_data(str(path)).training_examples) == sorted(
        ["我的微信 *********** 帮我开公司", "注销要多久", "看看［这个］(链接)"])  # no entity taken from a user's brackets
    assert clean("电话 138 1234 5678") == "电话 *** **** ****"


def test_two_reviewers_at_once_lose_no_label(tmp_path: Path) -> None:
    reviewed = ReviewedFile(tmp_path / "reviewed.yml")
    errors: list[Exception] = []

    def label(who: str) -> None:
        try:
            for n in range(15):
                reviewed.add([Example(f"{who} 的问题 {n}", "out_of_scope", who, "2026-03-10T10:00:00+08:00")])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=label, args=(who,)) for who in ("boss", "zhang", "li")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(reviewed.read()) == 45
    assert not list(tmp_path.glob(".reviewed.*"))  # no temporary file left beside it
