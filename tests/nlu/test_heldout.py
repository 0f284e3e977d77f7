"""The trained model on the held-out set: accuracy floors that fail the run when quality drops.

Floors, not timings: latency is measured by `make evaluate` and written in docs/measurements.md.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sklearn.metrics import f1_score

from scripts.evaluate import routes_right

from tests.nlu.test_data import HELDOUT

pytestmark = pytest.mark.model

MACRO_F1_FLOOR = 0.90
ROUTING_FLOOR = 0.90
OUT_OF_SCOPE_FLOOR = 0.85


@pytest.fixture(scope="module")
def parsed(agent) -> list[tuple[str, str, dict]]:
    async def parse_all() -> list[tuple[str, str, dict]]:
        return [(intent, text, await agent.parse_message(text))
                for intent, lines in HELDOUT.items() for text in lines]

    return asyncio.run(parse_all())


def test_intent_macro_f1_floor(parsed) -> None:
    expected = [intent for intent, _, _ in parsed]
    predicted = [result["intent"]["name"] for _, _, result in parsed]
    score = f1_score(expected, predicted, labels=sorted(set(expected)), average="macro", zero_division=0)
    assert score >= MACRO_F1_FLOOR, f"macro F1 {score:.3f}"


def test_routing_accuracy_floor(parsed, knowledge_base) -> None:
    """Share of topic questions whose answer would name the right lead department."""
    routed = Counter()
    for intent, _, result in parsed:
        if intent not in knowledge_base.topics:
            continue
        predicted = knowledge_base.topic(result["intent"]["name"])
        routed[routes_right(knowledge_base.topics[intent], predicted)] += 1
    accuracy = routed[True] / sum(routed.values())
    assert accuracy >= ROUTING_FLOOR, f"routing accuracy {accuracy:.3f}"


def test_out_of_scope_questions_get_no_department(parsed, knowledge_base) -> None:
    out = [result["intent"]["name"] for intent, _, result in parsed if intent == "out_of_scope"]
    declined = sum(name not in knowledge_base.topics for name in out) / len(out)
    assert declined >= OUT_OF_SCOPE_FLOOR, f"out of scope declined {declined:.3f}"


def test_entities_arrive_as_kb_ids(agent) -> None:
    result = asyncio.run(agent.parse_message("市监局旁边的续贷中心能办助企贷不"))
    found = {(e["entity"], e["value"]) for e in result["entities"]}
    assert {("department", "scjg"), ("channel", "shoudai_xudai_zhongxin"), ("product", "zhuqidai"),
            ("topic", "first_loan_renewal")} <= found
