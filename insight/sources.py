"""Where the report tables read from, and which part: the databases and the filters.

Turns are in the insight tables (insight/store.py); cases and their audit trail (claims,
ratings, the steps of a 差评's follow-up) in the cases' tables (cases/schema.py); the widget's
好差评 ratings of answers in the channels' store (channels/store.py). Under $DATABASE_URL they
are one database; on a laptop the cases (and the turns) are in var/cases.db and the ratings
in var/channels.db. Cases and ratings are read with SELECTs only: nothing here writes to
another package's tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cases.repository import FOLLOWUP_ACTIONS, FOLLOWUP_REASON, FOLLOWUP_STEPS, RATING_LEVELS, database_url
from cases.schema import case_events, cases, engine_for
from channels import store as channel_store
from insight.turns import TIMEZONE


@dataclass(frozen=True)
class Filters:
    """Which part of the data a table covers; None means all."""

    start: date | None = None  # the first day, included (the district's calendar, UTC+8)
    end: date | None = None  # the last day, included
    department: str | None = None
    channel: str | None = None

    def seconds(self) -> tuple[float | None, float | None]:
        """The Unix times the first day begins and the last day ends."""
        def midnight(day: date) -> float:
            return datetime(day.year, day.month, day.day, tzinfo=TIMEZONE).timestamp()

        return (midnight(self.start) if self.start else None,
                midnight(self.end + timedelta(days=1)) if self.end else None)

    def covers(self, at: float, department: str | None, channel: str | None) -> bool:
        start, end = self.seconds()
        return ((start is None or at >= start) and (end is None or at < end)
                and (not self.department or department == self.department)
                and (not self.channel or channel == self.channel))


@dataclass
class Sources:
    """The databases the tables read: turns, cases, the widget's ratings (often one)."""

    insight: Engine
    cases: Engine
    ratings: Engine

    @classmethod
    def of(cls, database: str | None = None) -> "Sources":
        """One database for all three (as $DATABASE_URL makes it), else the project's defaults."""
        if database:
            shared = engine_for(database)
            return cls(shared, shared, shared)
        ratings = os.environ.get("DATABASE_URL") or channel_store.DEFAULT_URL
        shared = engine_for(database_url())
        return cls(shared, shared, engine_for(ratings))


def has_table(engine: Engine, table: str) -> bool:
    with engine.connect() as db:
        return sa.inspect(db).has_table(table)


@dataclass(frozen=True)
class Rating:
    source: str  # answer (the widget's rating of an answer) | case (of a resolved case)
    at: float
    level: str
    department: str
    topic: str
    channel: str


def rating_events(sources: Sources, filters: Filters = Filters()) -> list[Rating]:
    """Every 好差评 rating in the filters, oldest first."""
    found: list[Rating] = []
    if has_table(sources.ratings, channel_store.ratings.name):
        r = channel_store.ratings.c
        with sources.ratings.connect() as db:
            for row in db.execute(sa.select(r.created_at, r.level, r.department, r.topic, r.channel)):
                found.append(Rating("answer", row.created_at, row.level, row.department or "", row.topic or "",
                                    row.channel))
    if has_table(sources.cases, cases.name):
        query = (sa.select(case_events.c.at, case_events.c.detail, cases.c.department, cases.c.topic, cases.c.channel)
                 .join(cases, cases.c.id == case_events.c.case_id).where(case_events.c.action == "rated"))
        with sources.cases.connect() as db:
            for row in db.execute(query):  # the audit trail's `rated` holds the level and when
                found.append(Rating("case", row.at, row.detail, row.department, row.topic or "", row.channel))
    return sorted((f for f in found if f.level in RATING_LEVELS and filters.covers(f.at, f.department, f.channel)),
                  key=lambda f: f.at)


@dataclass(frozen=True)
class CaseTimes:
    id: int
    department: str
    channel: str
    reason: str
    status: str
    outcome: str | None
    created_at: float
    first_claimed_at: float | None  # a released case is claimed again: the first claim is the wait
    resolved_at: float | None


def case_times(sources: Sources, filters: Filters = Filters()) -> list[CaseTimes]:
    """The cases opened in the filters, with the time of their first claim (audit trail)."""
    if not has_table(sources.cases, cases.name):
        return []
    first_claim = (sa.select(case_events.c.case_id, sa.func.min(case_events.c.at).label("at"))
                   .where(case_events.c.action == "claimed").group_by(case_events.c.case_id).subquery())
    query = (sa.select(cases.c.id, cases.c.department, cases.c.channel, cases.c.reason, cases.c.status,
                       cases.c.outcome, cases.c.created_at, first_claim.c.at, cases.c.claimed_at, cases.c.resolved_at)
             .outerjoin(first_claim, first_claim.c.case_id == cases.c.id).order_by(cases.c.id))
    with sources.cases.connect() as db:
        rows = list(db.execute(query))
    return [CaseTimes(r.id, r.department, r.channel, r.reason, r.status, r.outcome, r.created_at,
                      r.at if r.at is not None else r.claimed_at, r.resolved_at)
            for r in rows if filters.covers(r.created_at, r.department, r.channel)]


@dataclass(frozen=True)
class FollowupTimes:
    """A 差评 follow-up case and when each of its steps was last recorded (None: not yet)."""

    case: CaseTimes
    verify: float | None
    rectify: float | None
    feedback: float | None


def followup_times(sources: Sources, filters: Filters = Filters()) -> list[FollowupTimes]:
    """The follow-up cases (reason bad_rating) opened in the filters, with the latest time of
    each step in the audit trail (a step recorded again counts from its last record)."""
    followed = [case for case in case_times(sources, filters) if case.reason == FOLLOWUP_REASON]
    if not followed:
        return []
    steps = {action: step for step, action in FOLLOWUP_ACTIONS.items()}
    query = (sa.select(case_events.c.case_id, case_events.c.action, sa.func.max(case_events.c.at).label("at"))
             .join(cases, cases.c.id == case_events.c.case_id)
             .where(cases.c.reason == FOLLOWUP_REASON, case_events.c.action.in_(list(steps)))
             .group_by(case_events.c.case_id, case_events.c.action))
    latest: dict[int, dict[str, float]] = {}
    with sources.cases.connect() as db:
        for row in db.execute(query):
            latest.setdefault(row.case_id, {})[steps[row.action]] = row.at
    return [FollowupTimes(case, *(latest.get(case.id, {}).get(step) for step in FOLLOWUP_STEPS))
            for case in followed]
