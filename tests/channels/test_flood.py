"""channels/flood.py: a conversation over its rate is told to slow down, others are not."""

from __future__ import annotations

import pytest

from channels import flood
from channels.flood import FloodGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_over_the_rate_is_refused_and_served_again_after_the_window() -> None:
    clock = Clock()
    guard = FloodGuard(3, 10.0, clock)
    assert [guard.allow("a") for _ in range(5)] == [True, True, True, False, False]
    assert guard.allow("b") is True  # another conversation is not held up
    clock.now += 9.9
    assert guard.allow("a") is False
    clock.now += 0.2  # the first three have left the window; refusals were not counted
    assert [guard.allow("a") for _ in range(4)] == [True, True, True, False]


def test_a_person_pasting_questions_stays_under_the_default() -> None:
    clock = Clock()
    guard = FloodGuard(flood.DEFAULT_MESSAGES, flood.DEFAULT_SECONDS, clock)
    for _ in range(30):  # one message every 2 s, for a minute
        assert guard.allow("typing") is True
        clock.now += 2.0


def test_memory_is_bounded_by_forgetting_the_longest_idle() -> None:
    guard = FloodGuard(1, 60.0, Clock(), max_tracked=100)
    for n in range(1000):
        guard.allow(f"id-{n}")
    assert len(guard._recent) == 100 and "id-999" in guard._recent and "id-0" not in guard._recent


@pytest.mark.parametrize("environ", [{"FLOOD_MESSAGES": "0"}, {"FLOOD_SECONDS": "-1"}, {"FLOOD_MESSAGES": "many"}])
def test_a_bad_setting_stops_the_start(environ: dict) -> None:
    with pytest.raises(ValueError):
        flood.settings(environ)
    assert flood.settings({}) == (flood.DEFAULT_MESSAGES, flood.DEFAULT_SECONDS)


def test_refusals_in_a_row_are_counted_until_one_is_accepted() -> None:
    clock = Clock()
    guard = FloodGuard(2, 10.0, clock)
    results = [guard.allow("a") for _ in range(6)]
    assert results == [True, True, False, False, False, False] and guard.refused_in_a_row("a") == 4
    assert guard.refused_in_a_row("b") == 0
    clock.now += 10.0
    assert guard.allow("a") is True and guard.refused_in_a_row("a") == 0
