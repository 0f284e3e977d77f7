"""The review inbox: the questions a person should look at, and why each is there.

`InsightStore.review()` finds the questions asked back, declined, or routed with little
confidence; this module adds the answers a business rated badly in the widget (the 差评 of
an answer reaches the dialogue as `/answer_rated_badly{…}`, a `rating` turn) and gives each
question its reasons. Everything here reads the insight tables only: the masked text, never
a conversation id. The labels a person gives are kept in `insight_labels` (insight/store.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from insight.store import REVIEW_CONFIDENCE, TURN_FIELDS, InsightStore, turns
from insight.turns import Turn

# why a question is in the inbox, in the order they are listed
REVIEW_REASONS = ("asked_back", "out_of_scope", "low_confidence", "bad_rating")
BAD_ANSWER_INTENT = "answer_rated_badly"  # the widget's 差评 of an answer (actions/rating.py)


@dataclass(frozen=True)
class ReviewItem:
    """A question of the inbox and why it is there (REVIEW_REASONS, in that order)."""

    turn: Turn
    reasons: tuple[str, ...]


def _in(turn: Turn, start: str | None, end: str | None, department: str | None, channel: str | None) -> bool:
    day = turn.day.isoformat()
    return ((not start or day >= start) and (not end or day <= end)
            and (not department or turn.department == department) and (not channel or turn.channel == channel))


def rated_badly(store: InsightStore, start: str | None = None, end: str | None = None,
                department: str | None = None, channel: str | None = None, limit: int = 1000) -> list[Turn]:
    """The answers the widget's 差评 was given to: for each `answer_rated_badly` turn, the last
    answered question of its conversation before it (of the rated department, when the rating
    names one). The widget rates an answer the user has just read, nearly always the last one;
    the rating turn itself carries no text."""
    # a rating comes after its question: ratings before `start` rate questions before it
    ratings = store.turns(start=start, kinds=("rating",), limit=limit, where=turns.c.intent == BAD_ANSWER_INTENT)
    found: dict[int, Turn] = {}
    for rating in ratings:
        query = (sa.select(*(turns.c[name] for name in TURN_FIELDS))
                 .where(turns.c.conversation == rating.conversation, turns.c.kind == "question",
                        turns.c.outcome == "answered", turns.c.at <= rating.at)
                 .order_by(turns.c.at.desc(), turns.c.event_id.desc()).limit(1))
        if rating.department:
            query = query.where(turns.c.department == rating.department)
        with store.engine.connect() as db:
            row = db.execute(query).first()
        if row is not None and _in(rated := Turn(**row._mapping), start, end, department, channel):
            found[rated.event_id] = rated
    return sorted(found.values(), key=lambda t: (t.at, t.event_id))


def inbox(store: InsightStore, start: str | None = None, end: str | None = None, department: str | None = None,
          channel: str | None = None, below: float = REVIEW_CONFIDENCE, limit: int = 1000) -> list[ReviewItem]:
    """`store.review()` and `rated_badly()` together, each question once with its reasons,
    oldest first. A question without its text (typed while the handoff form asked, whose
    text is never kept) is left out: there is nothing to label."""
    found: dict[int, Turn] = {}
    reasons: dict[int, set[str]] = {}
    for turn in store.review(start, end, department, channel, below, limit):
        found[turn.event_id] = turn
        reasons[turn.event_id] = {turn.outcome} & set(REVIEW_REASONS)
        if turn.confidence is not None and turn.confidence < below:
            reasons[turn.event_id].add("low_confidence")
    for turn in rated_badly(store, start, end, department, channel, limit):
        found.setdefault(turn.event_id, turn)
        reasons.setdefault(turn.event_id, set()).add("bad_rating")
    ordered = sorted((t for t in found.values() if t.text), key=lambda t: (t.at, t.event_id))
    return [ReviewItem(t, tuple(r for r in REVIEW_REASONS if r in reasons[t.event_id])) for t in ordered[:limit]]
