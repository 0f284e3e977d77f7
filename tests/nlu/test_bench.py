"""Robustness floors on the benchmark (tests/nlu/bench.yml), against the BM25 search baseline.

The targets (routing ≥ 95%, out of scope ≥ 90%, 30 points above BM25) are measured by
`make bench-nlu` and written in docs/measurements.md; these floors sit a little below them so that a
real drop fails the run while run-to-run noise does not.
"""

from __future__ import annotations

import asyncio

import pytest

from scripts import bench_nlu
from tests.conftest import ROOT

pytestmark = pytest.mark.model

ROUTING_FLOOR = 0.92
OUT_OF_SCOPE_FLOOR = 0.88
MARGIN_OVER_BM25 = 0.30


@pytest.fixture(scope="module")
def result(agent, knowledge_base) -> dict:
    cases = bench_nlu.load_cases(ROOT / "tests" / "nlu" / "bench.yml")
    return asyncio.run(bench_nlu.benchmark(agent, knowledge_base, cases))


def test_bench_is_large_and_varied() -> None:
    cases = bench_nlu.load_cases(ROOT / "tests" / "nlu" / "bench.yml")
    categories = {c.category for c in cases}
    assert len(cases) >= 300
    assert {"colloquial", "typo", "traditional", "english", "long", "followup", "out_of_scope"} <= categories


def test_bench_never_appears_in_training_nor_in_the_heldout_set() -> None:
    from tests.nlu.test_data import HELDOUT, TRAINING

    seen = {line for lines in (*TRAINING.values(), *HELDOUT.values()) for line in lines}
    cases = bench_nlu.load_cases(ROOT / "tests" / "nlu" / "bench.yml")
    assert [t for c in cases for t in c.turns if t in seen] == []


def test_routing_floor(result: dict) -> None:
    assert result["assistant"]["routing_accuracy"] >= ROUTING_FLOOR, result["misses"]


def test_out_of_scope_floor(result: dict) -> None:
    assert result["assistant"]["out_of_scope_rejection"] >= OUT_OF_SCOPE_FLOOR, result["misses"]


def test_well_above_the_search_baseline(result: dict) -> None:
    assistant, search = result["assistant"], result["bm25"]
    assert assistant["routing_accuracy"] - search["routing_accuracy"] >= MARGIN_OVER_BM25
    assert assistant["out_of_scope_rejection"] - search["out_of_scope_rejection"] >= MARGIN_OVER_BM25


def test_every_category_routes_mostly_right(result: dict) -> None:
    for category, value in result["assistant"]["by_category"].items():
        assert value >= 0.8, (category, value)
