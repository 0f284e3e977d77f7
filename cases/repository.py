"""The one way to read and change handoff cases.

A case is what a 帮帮团 specialist needs to pick up a conversation: who (contact, company),
what (problem, topic, why the assistant handed over), where to (the department) and where the
user is (conversation id and channel). Its life: waiting → claimed → resolved, with claimed →
waiting when a specialist releases it or a supervisor reassigns it. Every change is one
conditional UPDATE, so two specialists claiming the same case cannot both win, and every staff
action is written to the audit trail (`case_events`) in the same transaction.

A case opened for a 差评 (reason `bad_rating`) is followed up in three steps, each an audit-trail
row of its own (`followup_verify`, `followup_rectify`, `followup_feedback`, the note as detail):
回访核实 (the business was contacted and what went wrong checked), 整改 (what the department
changed) and 反馈 (the reply to the business). Only the specialist who holds the claimed case
records them; a step recorded again keeps both rows and the latest counts. Such a case is
solved only once a 反馈 step exists: the 好差评 rules close a 差评 with a reply to the business.

Permissions (who may do what) are the console's business; this module guards states only.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Iterable

import sqlalchemy as sa

from cases.schema import CONVERSATION_ID_CHARS, DEFAULT_URL, MAX_ID, case_events, cases, engine_for, migrate

STATUSES = ("waiting", "claimed", "resolved")
OPEN = ("waiting", "claimed")
OUTCOMES = ("solved", "handed_back")
# why the assistant handed over
REASONS = ("user_request", "complaint", "misunderstood", "bad_rating", "needs_person")
# The five levels of the national government-service 好差评 system, best first; the last two
# are 差评, which must be followed up.
RATING_LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
BAD_RATINGS = RATING_LEVELS[3:]
ASSISTANT = "assistant"  # the actor of what the assistant itself does to a case

LIMITS = {"contact": 100, "company": 200, "problem": 4000, "detail": 4000}
FOLLOWUP_REASON = "bad_rating"
# the follow-up of a 差评, in the order it is done: 回访核实, 整改, 反馈 (the reply to the business)
FOLLOWUP_STEPS = ("verify", "rectify", "feedback")
FOLLOWUP_ACTIONS = {step: f"followup_{step}" for step in FOLLOWUP_STEPS}  # their case_events action
# a supervisor closing a flood: every open case of one client, handed back, one audit row each
BULK_CLOSED = "bulk_closed"
BULK_CLOSED_DETAIL = "批量关闭：同一来源的刷屏案件"


class CaseNotFound(LookupError):
    """No case has that id."""


class CaseConflict(RuntimeError):
    """The case is not in a state that allows this (someone else acted first)."""


class FollowupIncomplete(CaseConflict):
    """A 差评 case cannot be solved before its 反馈 step: the business has had no reply."""


@dataclass(frozen=True)
class Case:
    id: int
    conversation_id: str
    channel: str
    reason: str
    topic: str | None
    department: str
    status: str
    contact: str
    company: str
    problem: str
    assignee: str | None
    outcome: str | None
    rating: str | None
    created_at: float
    queued_at: float
    claimed_at: float | None
    resolved_at: float | None
    updated_at: float
    unreachable_at: float | None
    client: str | None = None  # channels/clients.py: who opened it (an address's keyed hash, an OpenID)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CaseEvent:
    id: int
    case_id: int
    at: float
    actor: str
    action: str
    detail: str


@dataclass(frozen=True)
class FollowupStep:
    """The latest record of one follow-up step of a case, and how often it was recorded."""

    step: str
    at: float
    actor: str
    note: str
    times: int


def _storable(case_id: int) -> bool:
    """Whether the database can hold this id: a 23-digit id from a URL is no case, not a crash
    (SQLite raises OverflowError on it)."""
    return isinstance(case_id, int) and 0 < case_id <= MAX_ID


def _cut(value: str | None, field: str) -> str:
    return (value or "").strip()[:LIMITS[field]]


class CaseRepository:
    """Cases and their audit trail in one SQL database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)
        migrate(self.engine)

    # reading ------------------------------------------------------------------------
    def get(self, case_id: int) -> Case:
        if not _storable(case_id):
            raise CaseNotFound(case_id)
        with self.engine.connect() as db:
            row = db.execute(sa.select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise CaseNotFound(case_id)
        return Case(**row._mapping)

    def open_case_of(self, conversation_id: str) -> Case | None:
        """The conversation's case still waiting or claimed, if any."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(cases).where(cases.c.conversation_id == conversation_id,
                                                    cases.c.status.in_(OPEN))
                             .order_by(cases.c.id.desc())).first()
        return Case(**row._mapping) if row else None

    def last_resolved_of(self, conversation_id: str) -> Case | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(cases).where(cases.c.conversation_id == conversation_id,
                                                    cases.c.status == "resolved")
                             .order_by(cases.c.resolved_at.desc(), cases.c.id.desc())).first()
        return Case(**row._mapping) if row else None

    def queue(self, statuses: Iterable[str] = OPEN, departments: Iterable[str] | None = None,
              limit: int = 200, offset: int = 0) -> list[Case]:
        """Cases in these statuses, longest waiting first (resolved ones: latest first); one
        page of `limit` from `offset` (`queue_size` says how many there are in all)."""
        query = sa.select(cases).where(self._in_queue(statuses, departments))
        status_order = sa.case({"waiting": 0, "claimed": 1}, value=cases.c.status, else_=2)
        query = query.order_by(status_order, cases.c.queued_at, sa.desc(cases.c.resolved_at), cases.c.id)
        with self.engine.connect() as db:
            return [Case(**row._mapping) for row in db.execute(query.limit(limit).offset(max(0, offset)))]

    def queue_size(self, statuses: Iterable[str] = OPEN, departments: Iterable[str] | None = None) -> int:
        """How many cases `queue` pages through: a flood of cases never hides one past a cap."""
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(cases)
                                  .where(self._in_queue(statuses, departments))).scalar_one())

    @staticmethod
    def _in_queue(statuses: Iterable[str], departments: Iterable[str] | None) -> Any:
        condition = cases.c.status.in_([s for s in statuses if s in STATUSES])
        if departments is not None:
            condition = sa.and_(condition, cases.c.department.in_(list(departments)))
        return condition

    def events(self, case_id: int, action: str | None = None) -> list[CaseEvent]:
        if not _storable(case_id):
            return []
        query = sa.select(case_events).where(case_events.c.case_id == case_id)
        if action:
            query = query.where(case_events.c.action == action)
        with self.engine.connect() as db:
            return [CaseEvent(**row._mapping) for row in db.execute(query.order_by(case_events.c.id))]

    def followup(self, case_id: int) -> dict[str, FollowupStep | None]:
        """Each follow-up step of the case (FOLLOWUP_STEPS order): its latest record, or None."""
        found: dict[str, FollowupStep | None] = dict.fromkeys(FOLLOWUP_STEPS)
        steps = {action: step for step, action in FOLLOWUP_ACTIONS.items()}
        for entry in self.events(case_id):  # oldest first: the last one of each step wins
            step = steps.get(entry.action)
            if step:
                times = found[step].times + 1 if found[step] else 1
                found[step] = FollowupStep(step, entry.at, entry.actor, entry.detail, times)
        return found

    # the assistant's side -----------------------------------------------------------
    def open_counts_of_clients(self, clients: Iterable[str],
                               departments: Iterable[str] | None = None) -> dict[str, int]:
        """How many open cases each of these clients has (in these departments only, if given):
        one grouped query for a whole page of the queue. A client with none is left out."""
        wanted = sorted({c[:64] for c in clients if c})
        if not wanted:
            return {}
        condition = sa.and_(cases.c.client.in_(wanted), cases.c.status.in_(OPEN))
        if departments is not None:
            condition = sa.and_(condition, cases.c.department.in_(list(departments)))
        query = (sa.select(cases.c.client, sa.func.count()).select_from(cases).where(condition)
                 .group_by(cases.c.client))
        with self.engine.connect() as db:
            return {client: int(count) for client, count in db.execute(query)}

    def open_of_client(self, client: str) -> list[Case]:
        """A client's open cases (waiting or claimed), oldest first."""
        if not client:
            return []
        with self.engine.connect() as db:
            rows = db.execute(sa.select(cases).where(cases.c.client == client[:64], cases.c.status.in_(OPEN))
                              .order_by(cases.c.id))
            return [Case(**row._mapping) for row in rows]

    def open(self, conversation_id: str, channel: str, reason: str, department: str, topic: str | None = None,
             contact: str = "", company: str = "", problem: str = "", client: str | None = None) -> tuple[Case, bool]:
        """Open a case, or return the conversation's open one: (case, newly opened)."""
        if reason not in REASONS:
            raise ValueError(f"not a handoff reason: {reason!r}")
        if not conversation_id or not department:
            raise ValueError("a case needs a conversation and a department")
        if len(conversation_id) > CONVERSATION_ID_CHARS:  # cut, it would be found by no later call
            raise ValueError(f"a conversation id longer than {CONVERSATION_ID_CHARS} characters cannot hold a case")
        existing = self.open_case_of(conversation_id)
        if existing:
            return existing, False
        now = time.time()
        try:
            with self.engine.begin() as db:
                result = db.execute(cases.insert().values(
                    conversation_id=conversation_id, channel=(channel or "unknown")[:40], reason=reason,
                    topic=topic or None, department=department, status="waiting",
                    contact=_cut(contact, "contact"), company=_cut(company, "company"),
                    problem=_cut(problem, "problem"), created_at=now, queued_at=now, updated_at=now,
                    client=client[:64] if client else None))
                case_id = int(result.inserted_primary_key[0])
                self._log(db, case_id, ASSISTANT, "opened", reason, now)
        except sa.exc.IntegrityError:  # another process opened one a moment ago (one_open_case index)
            existing = self.open_case_of(conversation_id)
            if existing is None:
                raise
            return existing, False
        return self.get(case_id), True

    def rate(self, case_id: int, conversation_id: str, level: str) -> Case:
        """The user's 好差评 rating of a resolved case, once."""
        if level not in RATING_LEVELS:
            raise ValueError(f"not a rating: {level!r}")
        if not _storable(case_id):
            raise CaseConflict(f"case {case_id} cannot be rated by this conversation now")
        now = time.time()
        with self.engine.begin() as db:
            done = db.execute(cases.update().where(
                cases.c.id == case_id, cases.c.conversation_id == conversation_id, cases.c.status == "resolved",
                cases.c.rating.is_(None)).values(rating=level, updated_at=now))
            if done.rowcount != 1:
                raise CaseConflict(f"case {case_id} cannot be rated by this conversation now")
            self._log(db, case_id, "user", "rated", level, now)
        return self.get(case_id)

    # the staff's side -----------------------------------------------------------------
    def claim(self, case_id: int, actor: str) -> Case:
        return self._move(case_id, actor, "claimed", ("waiting",),
                          {"status": "claimed", "assignee": actor, "claimed_at": time.time()})

    def release(self, case_id: int, actor: str, assignee: str | None = None) -> Case:
        """Back to the queue, unowned (the bot stays paused: the user still waits for a person).
        With `assignee`, only while that person still owns it."""
        return self._move(case_id, actor, "released", ("claimed",),
                          {"status": "waiting", "assignee": None, "queued_at": time.time()}, assignee=assignee)

    def reassign(self, case_id: int, actor: str, department: str) -> Case:
        """To another department's queue, unowned."""
        if not department:
            raise ValueError("no department")
        return self._move(case_id, actor, "reassigned", OPEN,
                          {"status": "waiting", "assignee": None, "department": department,
                           "queued_at": time.time()}, detail=department)

    def resolve(self, case_id: int, actor: str, outcome: str = "solved", assignee: str | None = None) -> Case:
        """Solved (from claimed) or handed back to the bot (from claimed or waiting); with
        `assignee`, only while the case is still as the caller saw it (that owner, or none)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"not an outcome: {outcome!r}")
        if outcome == "handed_back":
            return self._move(case_id, actor, "handed_back", OPEN,
                              {"status": "resolved", "outcome": outcome, "resolved_at": time.time()}, assignee=assignee)
        replied = sa.exists().where(case_events.c.case_id == cases.c.id,
                                    case_events.c.action == FOLLOWUP_ACTIONS["feedback"])
        try:  # a 差评 is solved only with a reply to the business: checked in the same UPDATE
            return self._move(case_id, actor, "resolved", ("claimed",),
                              {"status": "resolved", "outcome": outcome, "resolved_at": time.time()},
                              assignee=assignee, condition=sa.or_(cases.c.reason != FOLLOWUP_REASON, replied))
        except CaseConflict:  # why: the 反馈 missing, or the case moved (as for any case)
            case = self.get(case_id)
            movable = case.status == "claimed" and (assignee is None or case.assignee == assignee)
            if movable and case.reason == FOLLOWUP_REASON and not self.followup(case_id)["feedback"]:
                raise FollowupIncomplete(f"case {case_id} is a 差评 follow-up without a feedback step") from None
            raise

    def close_client_cases(self, client: str, actor: str, case_ids: Iterable[int] | None = None,
                           detail: str = BULK_CLOSED_DETAIL) -> list[Case]:
        """Hand back every open case of a client (only those of `case_ids`, if given): a flood
        cleaned up by a supervisor. One transaction; each case is one conditional UPDATE (still
        open, still that client's), so a case resolved meanwhile is skipped, not an error. Each
        closed case gets a `bulk_closed` row in its audit trail. The cases closed, by id."""
        if not client:
            raise ValueError("a case without a client cannot be closed with its client's others")
        query = sa.select(cases.c.id).where(cases.c.client == client[:64], cases.c.status.in_(OPEN))
        if case_ids is not None:
            ids = [i for i in case_ids if _storable(i)]
            if not ids:
                return []
            query = query.where(cases.c.id.in_(ids))
        now, closed = time.time(), []
        with self.engine.begin() as db:
            for case_id in db.execute(query.order_by(cases.c.id)).scalars().all():
                done = db.execute(cases.update().where(
                    cases.c.id == case_id, cases.c.client == client[:64], cases.c.status.in_(OPEN)).values(
                    status="resolved", outcome="handed_back", resolved_at=now, updated_at=now))
                if done.rowcount == 1:
                    self._log(db, case_id, actor, BULK_CLOSED, detail, now)
                    closed.append(case_id)
        if not closed:
            return []
        with self.engine.connect() as db:
            rows = db.execute(sa.select(cases).where(cases.c.id.in_(closed)).order_by(cases.c.id))
            return [Case(**row._mapping) for row in rows]

    def note(self, case_id: int, actor: str, text: str) -> CaseEvent:
        text = _cut(text, "detail")
        if not text:
            raise ValueError("empty note")
        return self.record(case_id, actor, "note", text)

    def record_followup(self, case_id: int, actor: str, step: str, note: str) -> CaseEvent:
        """Record a follow-up step of a 差评 case, claimed by `actor`; again later: both rows stay.

        The 反馈 step is the reply to the business: the caller records it once the reply was
        accepted for delivery (console/server.py sends it first)."""
        if step not in FOLLOWUP_STEPS:
            raise ValueError(f"not a follow-up step: {step!r}")
        note = _cut(note, "detail")
        if not note:
            raise ValueError("empty follow-up note")
        if not _storable(case_id):
            raise CaseNotFound(case_id)
        now = time.time()
        with self.engine.begin() as db:
            done = db.execute(cases.update().where(
                cases.c.id == case_id, cases.c.reason == FOLLOWUP_REASON, cases.c.status == "claimed",
                cases.c.assignee == actor).values(updated_at=now))
            if done.rowcount != 1:
                current = db.execute(sa.select(cases.c.status, cases.c.reason, cases.c.assignee)
                                     .where(cases.c.id == case_id)).first()
                if current is None:
                    raise CaseNotFound(case_id)
                if current.reason != FOLLOWUP_REASON:
                    raise CaseConflict(f"case {case_id} is no 差评 follow-up (reason {current.reason})")
                raise CaseConflict(f"case {case_id} is {current.status}"
                                   + (f" by {current.assignee}" if current.assignee else ""))
            event_id = self._log(db, case_id, actor, FOLLOWUP_ACTIONS[step], note, now)
        return CaseEvent(event_id, case_id, now, actor, FOLLOWUP_ACTIONS[step], note)

    def record(self, case_id: int, actor: str, action: str, detail: str = "",
               unreachable: bool | None = None) -> CaseEvent:
        """Add to the audit trail (a reply sent or refused, a note); mark reachability."""
        if not _storable(case_id):
            raise CaseNotFound(case_id)
        now = time.time()
        with self.engine.begin() as db:
            values: dict[str, Any] = {"updated_at": now}
            if unreachable is not None:
                values["unreachable_at"] = now if unreachable else None
            if db.execute(cases.update().where(cases.c.id == case_id).values(**values)).rowcount != 1:
                raise CaseNotFound(case_id)
            event_id = self._log(db, case_id, actor, action, detail, now)
        return CaseEvent(event_id, case_id, now, actor, action, _cut(detail, "detail"))

    # internals --------------------------------------------------------------------------
    def _move(self, case_id: int, actor: str, action: str, from_statuses: tuple[str, ...],
              values: dict[str, Any], detail: str = "", assignee: str | None = None,
              condition: Any = None) -> Case:
        if not _storable(case_id):
            raise CaseNotFound(case_id)
        now = time.time()
        query = cases.update().where(cases.c.id == case_id, cases.c.status.in_(from_statuses))
        if assignee is not None:  # "" = unowned
            query = query.where(cases.c.assignee == assignee if assignee else cases.c.assignee.is_(None))
        if condition is not None:
            query = query.where(condition)
        with self.engine.begin() as db:
            done = db.execute(query.values(updated_at=now, **values))
            if done.rowcount != 1:
                current = db.execute(sa.select(cases.c.status).where(cases.c.id == case_id)).first()
                if current is None:
                    raise CaseNotFound(case_id)
                raise CaseConflict(f"case {case_id} is {current.status}")
            self._log(db, case_id, actor, action, detail, now)
        return self.get(case_id)

    @staticmethod
    def _log(db: sa.engine.Connection, case_id: int, actor: str, action: str, detail: str, at: float) -> int:
        result = db.execute(case_events.insert().values(case_id=case_id, at=at, actor=actor[:64], action=action,
                                                        detail=_cut(detail, "detail")))
        return int(result.inserted_primary_key[0])


def database_url() -> str:
    """$DATABASE_URL (shared with the channels' store), else a SQLite file under var/."""
    return os.environ.get("DATABASE_URL") or DEFAULT_URL


@lru_cache(maxsize=4)
def repository_for(url: str | None = None) -> CaseRepository:
    """One repository per database URL per process."""
    return CaseRepository(url or database_url())
