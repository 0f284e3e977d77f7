"""lexicon/answers/unit_questions/: the questions written for each answer unit, and what they do
to the ranking (actions/ranker.py indexes them beside the units' own words)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
import yaml

from actions import ranker, units
from actions.okapi import Okapi
from actions.question import analyse
from scripts import unit_questions

BENCH = Path(__file__).resolve().parent.parent / "answers" / "bench.yml"


@pytest.fixture(scope="module")
def all_units() -> list[units.AnswerUnit]:
    return units.load()


def test_every_written_question_names_a_unit_make_kb_writes(all_units) -> None:
    ids = {u.id for u in all_units}
    written = ranker.written_questions()
    assert written, "no questions written for any unit"
    assert not sorted(set(written) - ids), "questions for units kb/generated/answer_units.json does not hold"
    assert all(q.strip() and len(q) <= 200 for qs in written.values() for q in qs)


def test_no_written_question_is_close_to_a_benchmark_question() -> None:
    """The questions are written from the seeds, never from tests/answers/bench.yml; two writers
    of the same seed sentence can still converge (「川渝通办现在能办多少项」), and a near-copy would
    let the benchmark grade what it was shown: none may be 80% alike (difflib's ratio, after
    simplified characters, lower case, no spaces or punctuation)."""
    import opencc

    t2s = opencc.OpenCC("t2s.json")
    squash = lambda text: re.sub(r"[\s，,。？?！!、]", "", t2s.convert(text.lower()))  # noqa: E731
    bench = yaml.safe_load(BENCH.read_text(encoding="utf-8"))
    asked = [squash(t) for q in bench["questions"] + bench["short"] for t in [q.get("text"), *(q.get("turns") or [])]
             if isinstance(t, str)]

    def close(question: str) -> bool:
        for other in asked:
            alike = difflib.SequenceMatcher(None, squash(question), other)
            if alike.real_quick_ratio() >= 0.8 and alike.quick_ratio() >= 0.8 and alike.ratio() >= 0.8:
                return True
        return False

    assert not [q for qs in unit_questions.written().values() for q in qs if close(q)]


def test_postings_score_as_the_plain_sum() -> None:
    okapi = Okapi([["营业", "执照", "执照"], ["执照", "注销"], ["贷款"]], k1=1.2, b=0.6)
    query = ["执照", "注销", "注销", "社保"]
    assert okapi.matching(query) == pytest.approx({i: okapi.score(set(query), i) for i in (0, 1)})


def test_a_written_question_brings_its_unit_up(all_units) -> None:
    """Words the unit does not use («挂个壳子») lift the unit whose question used them from the
    bottom of the ranking to its top ten; its own words still count (the top stays a unit that
    shares 渝中 and 公司 with the message)."""
    target = "p2021_001_1"  # 集群注册登记: the plan's words for a shared registered address
    message = "挂个壳子公司在渝中行不行"
    ask = analyse(message)

    def position(questions: dict[str, tuple[str, ...]]) -> int:
        ranked = ranker.UnitIndex(all_units, questions=questions).rank(message, None, ask)
        return [r.unit.id for r in ranked].index(target)

    assert position({}) > 100
    assert position({target: ("想在渝中挂个壳子公司，行不行",)}) < 10


def test_a_question_counts_for_the_unit_of_the_same_text(all_units) -> None:
    """fig_bangbangtuan_2 quotes art_004_10 whole: a question written for one answers for both."""
    asked = "帮帮团首批进驻了哪些楼宇园区"
    index = ranker.UnitIndex(all_units, questions={"art_004_10": (asked,)})
    scores = {r.unit.id: r.asked for r in index.rank(asked, "bangbangtuan", analyse(asked))}
    assert scores["fig_bangbangtuan_2"] == scores["art_004_10"] == 1.0
    assert scores["fig_bangbangtuan_3"] == 0.0
