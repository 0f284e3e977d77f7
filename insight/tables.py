"""The report tables: what businesses ask, where the assistant fails, how cases and ratings go.

Each function takes the `Sources` and `Filters` (insight/sources.py: days from–to in the
district's time, a department, a channel) and returns rows of a dataclass whose fields are
the table's columns, in order (`columns()`). The `department` filter is what a specialist's
view passes: turns, cases and ratings attributed to that department only (a question declined
or asked back names no department, so it is in no department's view).

- `daily`: per day and channel, questions and their four outcomes (insight/turns.py);
- `topics`: per topic, questions, answered, handed over, answered without the fact asked
  (`not_published`: the card's `answer.missing`), and the answered rate;
- `outcomes`: per day, the share of each outcome;
- `ratings` / `ratings_weekly`: 好差评 counts per level, per source, department and topic,
  and per week (from Monday), source and department: `answer` ratings from the widget,
  `case` ratings of resolved cases;
- `cases`: per department, time to the first claim and to the solution (median and p90 in
  hours, nearest rank) and the share solved within the target ($CASE_TARGET_HOURS);
- `followups`: 差评 per department, the follow-up cases they opened (reason `bad_rating`) by
  status, how many have each step done (回访核实 `verify`, 整改 `rectify`, 反馈 `feedback`: the
  reply to the business), how many were closed with that reply, and the median days from the
  case's opening to each step (its latest record);
- `followup_cases`: one row per follow-up case: the day it opened and the day of each step and
  of its resolution (the district's calendar).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Callable

import sqlalchemy as sa

from cases.repository import BAD_RATINGS, FOLLOWUP_STEPS, RATING_LEVELS
from insight.sources import (CaseTimes, Filters, FollowupTimes, Sources, case_times, followup_times, has_table,
                             rating_events)
from insight.store import turns
from insight.turns import OUTCOMES, local_day

# A service target is a setting, not a fact of the documents (kb/ holds only cited facts, and
# the seeds set no time for a 帮帮团 case): read from the environment like every setting.
TARGET_ENV = "CASE_TARGET_HOURS"
DEFAULT_TARGET_HOURS = 24.0


def target_hours(environ: dict[str, str] | None = None) -> float:
    """The hours within which a case should be solved: $CASE_TARGET_HOURS, default 24."""
    value = (environ if environ is not None else os.environ).get(TARGET_ENV, "").strip()
    if not value:
        return DEFAULT_TARGET_HOURS
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if not 0 < hours < float("inf"):
        raise ValueError(f"{TARGET_ENV} must be a positive number of hours, not {value!r}")
    return hours


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def _hours(values: list[float], quantile: float | None = None) -> float | None:
    """Median (quantile None) or nearest-rank quantile of durations in seconds, in hours."""
    if not values:
        return None
    ordered = sorted(values)
    value = statistics.median(ordered) if quantile is None else ordered[math.ceil(quantile * len(ordered)) - 1]
    return round(value / 3600, 2)


def _days(values: list[float]) -> float | None:
    """The median of durations in seconds, in days."""
    return round(statistics.median(values) / 86400, 2) if values else None


def _counts(sources: Sources, filters: Filters, *by: str) -> list[Any]:
    """Questions counted in SQL per `by` columns and outcome, with how many of the answers
    said the documents do not publish what was asked."""
    if not has_table(sources.insight, turns.name):
        return []
    keys = [turns.c[name] for name in by]
    unpublished = sa.case((sa.and_(turns.c.outcome == "answered", turns.c.missing.isnot(None)), 1), else_=0)
    query = sa.select(*keys, turns.c.outcome, sa.func.count().label("n"),
                      sa.func.sum(unpublished).label("not_published")).where(turns.c.kind == "question")
    if filters.start:
        query = query.where(turns.c.day >= filters.start.isoformat())
    if filters.end:
        query = query.where(turns.c.day <= filters.end.isoformat())
    if filters.department:
        query = query.where(turns.c.department == filters.department)
    if filters.channel:
        query = query.where(turns.c.channel == filters.channel)
    with sources.insight.connect() as db:
        return list(db.execute(query.group_by(*keys, turns.c.outcome)))


# a. daily ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DailyRow:
    date: str
    channel: str
    questions: int
    answered: int
    asked_back: int
    out_of_scope: int
    handed_over: int


def daily(sources: Sources, filters: Filters = Filters()) -> list[DailyRow]:
    """Questions per day and channel, by outcome (questions = the four outcomes' sum)."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for row in _counts(sources, filters, "day", "channel"):
        counts[(row.day, row.channel)][row.outcome] += int(row.n)
    return [DailyRow(day, channel, sum(c.values()), *(c[o] for o in OUTCOMES))
            for (day, channel), c in sorted(counts.items())]


# b. topics -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopicRow:
    topic: str
    questions: int
    answered: int
    handed_over: int
    not_published: int  # answered, but the documents do not publish what was asked
    answered_rate: float


def topics(sources: Sources, filters: Filters = Filters()) -> list[TopicRow]:
    """Questions routed to each topic, most asked first."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in _counts(sources, filters, "topic"):
        if row.topic:
            counts[row.topic][row.outcome] += int(row.n)
            counts[row.topic]["not_published"] += int(row.not_published or 0)
    rows = [TopicRow(topic, sum(c[o] for o in OUTCOMES), c["answered"], c["handed_over"], c["not_published"],
                     _share(c["answered"], sum(c[o] for o in OUTCOMES))) for topic, c in counts.items()]
    return sorted(rows, key=lambda r: (-r.questions, r.topic))


# c. outcomes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutcomeRow:
    date: str
    questions: int
    answered_rate: float
    asked_back_rate: float
    out_of_scope_rate: float
    handed_over_rate: float


def outcomes(sources: Sources, filters: Filters = Filters()) -> list[OutcomeRow]:
    """The share of each outcome per day, every channel together (or the one filtered)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in _counts(sources, filters, "day"):
        counts[row.day][row.outcome] += int(row.n)
    return [OutcomeRow(day, sum(c.values()), *(_share(c[o], sum(c.values())) for o in OUTCOMES))
            for day, c in sorted(counts.items())]


# d. ratings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatingRow:
    source: str
    department: str
    topic: str
    very_satisfied: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    very_dissatisfied: int
    total: int
    bad_rate: float  # 差评 (不满意, 非常不满意) of the total


@dataclass(frozen=True)
class RatingWeekRow:
    week: str  # the Monday the week starts
    source: str
    department: str
    very_satisfied: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    very_dissatisfied: int
    total: int
    bad_rate: float


def _levels(counted: Counter) -> list[Any]:
    total = sum(counted.values())
    bad = sum(counted[level] for level in BAD_RATINGS)
    return [*(counted[level] for level in RATING_LEVELS), total, _share(bad, total)]


def ratings(sources: Sources, filters: Filters = Filters()) -> list[RatingRow]:
    """好差评 per source, department and topic, counted per level."""
    counts: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    for rating in rating_events(sources, filters):
        counts[(rating.source, rating.department, rating.topic)][rating.level] += 1
    return [RatingRow(*key, *_levels(c)) for key, c in sorted(counts.items())]


def ratings_weekly(sources: Sources, filters: Filters = Filters()) -> list[RatingWeekRow]:
    """好差评 per week, source and department: the trend."""
    counts: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    for rating in rating_events(sources, filters):
        day = local_day(rating.at)
        monday = (day - timedelta(days=day.weekday())).isoformat()
        counts[(monday, rating.source, rating.department)][rating.level] += 1
    return [RatingWeekRow(*key, *_levels(c)) for key, c in sorted(counts.items())]


# e. cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseRow:
    department: str
    cases: int
    waiting: int
    claimed: int
    solved: int
    handed_back: int  # closed without a solution: the user stopped waiting, or staff gave it back to the bot
    claim_median_hours: float | None
    claim_p90_hours: float | None
    resolve_median_hours: float | None  # opened → solved
    resolve_p90_hours: float | None
    target_hours: float
    decided: int  # cases whose target is settled: closed, or open past the target
    within_target: int  # solved within the target
    within_target_share: float


def case_table(sources: Sources, filters: Filters = Filters(), target: float | None = None,
               now: float | None = None) -> list[CaseRow]:
    """Cases per department: waiting and resolution times, and the share solved within target."""
    target = target_hours() if target is None else target
    now = time.time() if now is None else now
    by_department: dict[str, list[CaseTimes]] = defaultdict(list)
    for case in case_times(sources, filters):
        by_department[case.department].append(case)
    rows = []
    for department, group in sorted(by_department.items()):
        waits = [c.first_claimed_at - c.created_at for c in group if c.first_claimed_at is not None]
        solved = [c for c in group if c.status == "resolved" and c.outcome == "solved"]
        resolve = [c.resolved_at - c.created_at for c in solved if c.resolved_at is not None]
        decided = [c for c in group if c.status == "resolved" or now - c.created_at > target * 3600]
        within = sum(1 for seconds in resolve if seconds <= target * 3600)
        statuses = Counter(c.status for c in group)
        rows.append(CaseRow(
            department, len(group), statuses["waiting"], statuses["claimed"], len(solved),
            sum(1 for c in group if c.outcome == "handed_back"), _hours(waits), _hours(waits, 0.9),
            _hours(resolve), _hours(resolve, 0.9), target, len(decided), within, _share(within, len(decided))))
    return rows


# f. follow-ups of 差评 -------------------------------------------------------------------------
@dataclass(frozen=True)
class FollowupRow:
    department: str
    bad_ratings: int  # 差评 given in the period, of answers and of cases
    followup_cases: int  # cases opened for a 差评 (reason bad_rating)
    waiting: int
    claimed: int
    solved: int
    handed_back: int
    verify_done: int  # cases with a 回访核实 step
    rectify_done: int  # … with a 整改 step
    feedback_done: int  # … with a 反馈 step: the reply reached the business
    closed_with_reply: int  # resolved after a 反馈
    verify_median_days: float | None  # opened → the step's latest record
    rectify_median_days: float | None
    feedback_median_days: float | None


def followups(sources: Sources, filters: Filters = Filters()) -> list[FollowupRow]:
    """差评 per department, where their follow-up cases stand and how far their steps went."""
    bad = Counter(r.department for r in rating_events(sources, filters) if r.level in BAD_RATINGS)
    follow: dict[str, list[FollowupTimes]] = defaultdict(list)
    for followed in followup_times(sources, filters):
        follow[followed.case.department].append(followed)
    rows = []
    for department in sorted(set(bad) | set(follow)):
        group = follow[department]
        statuses = Counter(f.case.outcome if f.case.status == "resolved" else f.case.status for f in group)
        to_step = {step: [getattr(f, step) - f.case.created_at for f in group if getattr(f, step) is not None]
                   for step in FOLLOWUP_STEPS}  # seconds from the case's opening, of the cases with the step
        rows.append(FollowupRow(
            department, bad[department], len(group), statuses["waiting"], statuses["claimed"], statuses["solved"],
            statuses["handed_back"], *(len(to_step[step]) for step in FOLLOWUP_STEPS),
            sum(1 for f in group if f.case.status == "resolved" and f.feedback is not None),
            *(_days(to_step[step]) for step in FOLLOWUP_STEPS)))
    return rows


@dataclass(frozen=True)
class FollowupCaseRow:
    case_id: int
    department: str
    created: str  # days in the district's calendar (YYYY-MM-DD); None: not yet
    verify: str | None
    rectify: str | None
    feedback: str | None
    resolved: str | None


def followup_cases(sources: Sources, filters: Filters = Filters()) -> list[FollowupCaseRow]:
    """Each 差评 follow-up case opened in the period: the day of each step, oldest case first."""
    def day(at: float | None) -> str | None:
        return local_day(at).isoformat() if at is not None else None

    return [FollowupCaseRow(f.case.id, f.case.department, day(f.case.created_at), day(f.verify), day(f.rectify),
                            day(f.feedback), day(f.case.resolved_at)) for f in followup_times(sources, filters)]


TableFunction = Callable[[Sources, Filters], list[Any]]
# name → (function, row class): the order `scripts/insight.py --table all` prints them in
TABLES: dict[str, tuple[TableFunction, type]] = {
    "daily": (daily, DailyRow),
    "topics": (topics, TopicRow),
    "outcomes": (outcomes, OutcomeRow),
    "ratings": (ratings, RatingRow),
    "ratings_weekly": (ratings_weekly, RatingWeekRow),
    "cases": (case_table, CaseRow),
    "followups": (followups, FollowupRow),
    "followup_cases": (followup_cases, FollowupCaseRow),
}


def columns(row_class: type) -> list[str]:
    """A table's column names, in order."""
    return [f.name for f in fields(row_class)]
