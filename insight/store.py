"""The analytics tables, in the cases' database ($DATABASE_URL, else var/cases.db).

- `insight_turns`: one row per user turn (insight/turns.py), keyed by the tracker store's id of
  the user event, so that a turn is stored once however often the events are read;
- `insight_cursor`: how far the tracker store was read (`events`: the last id, and ids skipped
  over that may still commit) and the key of the conversation pseudonyms (`conversation_key`);
- `insight_conversations`: each conversation's state after its last event read (paused, the
  form asking, its topic), which decides the kind of its next turn;
- `insight_labels`: the audit trail of the review inbox: who labelled which turn with what, when,
  and what became of it in the training data (console/reviewed.py writes the examples).

A sync (insight/sync.py) writes in one short transaction that starts by updating the
`events` cursor row: two syncs' writes wait for each other (a row lock on PostgreSQL, the
write lock on SQLite), and a sync that fails leaves cursor, states and turns as they were.
No text but a turn's masked question (insight/privacy.py) is stored, and no conversation id
but its key.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cases.repository import database_url
from cases.schema import engine_for
from insight.privacy import conversation_key
from insight.tracker import Position
from insight.turns import ConversationState, Turn, local_day

EVENTS, KEY = "events", "conversation_key"

metadata = sa.MetaData()
turns = sa.Table(
    "insight_turns", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("conversation", sa.String(32), nullable=False, index=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("day", sa.String(10), nullable=False, index=True),  # YYYY-MM-DD in the district (UTC+8)
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(20)),
    sa.Column("text", sa.Text),
    sa.Column("intent", sa.String(100)),
    sa.Column("confidence", sa.Float),
    sa.Column("topic", sa.String(100), index=True),
    sa.Column("department", sa.String(100), index=True),
    sa.Column("unit", sa.String(200)),
    sa.Column("aspect", sa.String(40)),
    sa.Column("missing", sa.String(40)),
    sa.Column("handoff_reason", sa.String(30)),
    sa.Column("model_id", sa.String(64)),
    sa.Column("kb_version", sa.String(64)),
    sa.Column("synced_at", sa.Float, nullable=False),
)
cursor = sa.Table(
    "insight_cursor", metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("last_event_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("value", sa.Text),  # events: {id: first missed at} of the gaps; conversation_key: the key
    sa.Column("updated_at", sa.Float, nullable=False),
)
conversations = sa.Table(
    "insight_conversations", metadata,
    sa.Column("conversation", sa.String(32), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("active_loop", sa.String(100)),
    sa.Column("requested_slot", sa.String(100)),
    sa.Column("topic", sa.String(100)),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
labels = sa.Table(
    "insight_labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.BigInteger, nullable=False, index=True),  # the turn labelled
    sa.Column("text", sa.Text, nullable=False),  # its masked text, as the training data would hold it
    sa.Column("label", sa.String(100), nullable=False),  # a topic (intent) id, out_of_scope or new_topic
    sa.Column("result", sa.String(20), nullable=False),  # what the training data file did with it
    sa.Column("labelled_by", sa.String(64), nullable=False),
    sa.Column("labelled_at", sa.Float, nullable=False),
)
TURN_FIELDS = [f.name for f in fields(Turn)]
# a question NLU routed with less confidence than this is worth a person's look: routed, but
# not far above the FallbackClassifier's 0.45 (config.yml)
REVIEW_CONFIDENCE = 0.6
IN_CHUNK = 500  # ids per IN (…) clause


def _fit(table: sa.Table, values: dict) -> dict:
    """Values cut to their columns' lengths (PostgreSQL refuses longer ones, SQLite keeps them)."""
    fitted = dict(values)
    for name, value in values.items():
        length = getattr(table.c[name].type, "length", None)
        if length and isinstance(value, str):
            fitted[name] = value[:length]
    return fitted


@dataclass(frozen=True)
class Label:
    """One entry of the labels' audit trail."""

    event_id: int
    text: str
    label: str
    result: str
    labelled_by: str
    labelled_at: float


class InsightStore:
    """The turns, the cursor and the conversations' states in one SQL database."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or database_url()
        self.engine = engine_for(self.url)
        for attempt in range(5):
            try:
                metadata.create_all(self.engine)
                break
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
                if attempt == 4:  # another process creating the same tables at the same moment
                    raise
                time.sleep(0.2 * (attempt + 1))
        self._secret: str | None = None

    # the sync's side ---------------------------------------------------------------------
    def _ensure(self, name: str, value: str | None = None) -> None:
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as db:
            if db.execute(sa.select(cursor.c.name).where(cursor.c.name == name)).first() is None:
                db.execute(cursor.insert().values(name=name, last_event_id=0, value=value, updated_at=time.time()))

    @contextlib.contextmanager
    def locked(self) -> Iterator[Connection]:
        """A transaction holding the events cursor: one sync writes at a time."""
        self._ensure(EVENTS)
        with self.engine.begin() as db:
            db.execute(cursor.update().where(cursor.c.name == EVENTS).values(updated_at=time.time()))
            yield db

    def secret(self) -> str:
        """The key of the conversation pseudonyms, made once per database."""
        if self._secret is None:
            self._ensure(KEY, secrets.token_hex(32))
            with self.engine.connect() as db:
                self._secret = db.execute(sa.select(cursor.c.value).where(cursor.c.name == KEY)).scalar_one()
        return self._secret

    def key(self, conversation_id: str) -> str:
        """The pseudonym under which a conversation's turns are stored (a case's, say)."""
        return conversation_key(self.secret(), conversation_id)

    @staticmethod
    def position(db: Connection) -> Position:
        row = db.execute(sa.select(cursor.c.last_event_id, cursor.c.value).where(cursor.c.name == EVENTS)).first()
        if row is None:
            return Position()
        gaps = {int(i): float(t) for i, t in json.loads(row.value or "{}").items()}
        return Position(int(row.last_event_id), gaps)

    @staticmethod
    def save_position(db: Connection, position: Position) -> None:
        db.execute(cursor.update().where(cursor.c.name == EVENTS).values(
            last_event_id=position.last_event_id, value=json.dumps(position.gaps), updated_at=time.time()))

    @staticmethod
    def states(db: Connection, keys: Iterable[str]) -> dict[str, ConversationState]:
        found: dict[str, ConversationState] = {}
        keys = list(keys)
        for start in range(0, len(keys), IN_CHUNK):
            query = sa.select(conversations).where(conversations.c.conversation.in_(keys[start:start + IN_CHUNK]))
            for row in db.execute(query):
                found[row.conversation] = ConversationState(bool(row.paused), row.active_loop, row.requested_slot,
                                                            row.topic, int(row.last_event_id))
        return found

    @staticmethod
    def save_states(db: Connection, states: dict[str, ConversationState]) -> None:
        keys, now = list(states), time.time()
        for start in range(0, len(keys), IN_CHUNK):
            db.execute(conversations.delete().where(conversations.c.conversation.in_(keys[start:start + IN_CHUNK])))
        if keys:
            db.execute(conversations.insert(), [_fit(conversations, {"conversation": k, **asdict(s), "updated_at": now})
                                                for k, s in states.items()])

    @staticmethod
    def add(db: Connection, new: list[Turn]) -> int:
        """Store the turns not stored yet; how many were new."""
        ids = [t.event_id for t in new]
        stored: set[int] = set()
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start:start + IN_CHUNK]
            stored |= set(db.execute(sa.select(turns.c.event_id).where(turns.c.event_id.in_(chunk))).scalars())
        now, rows = time.time(), []
        for turn in new:
            if turn.event_id in stored:
                continue
            stored.add(turn.event_id)
            rows.append(_fit(turns, {**asdict(turn), "day": local_day(turn.at).isoformat(), "synced_at": now}))
        if rows:
            db.execute(turns.insert(), rows)
        return len(rows)

    # reading ------------------------------------------------------------------------------
    def last_event_id(self) -> int:
        with self.engine.connect() as db:
            return self.position(db).last_event_id

    def turns(self, start: str | None = None, end: str | None = None, department: str | None = None,
              channel: str | None = None, kinds: Iterable[str] | None = None, outcomes: Iterable[str] | None = None,
              conversation: str | None = None, limit: int = 1000, where: Any = None) -> list[Turn]:
        """Stored turns, oldest first: days from `start` to `end` (YYYY-MM-DD, both included),
        of one department or channel, of these kinds or outcomes, of one conversation key."""
        query = sa.select(*(turns.c[name] for name in TURN_FIELDS))
        if where is not None:
            query = query.where(where)
        for column, value in (("department", department), ("channel", channel), ("conversation", conversation)):
            if value:
                query = query.where(turns.c[column] == value)
        if start:
            query = query.where(turns.c.day >= start)
        if end:
            query = query.where(turns.c.day <= end)
        if kinds is not None:
            query = query.where(turns.c.kind.in_(list(kinds)))
        if outcomes is not None:
            query = query.where(turns.c.outcome.in_(list(outcomes)))
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(turns.c.at, turns.c.event_id).limit(limit))
            return [Turn(**row._mapping) for row in rows]

    def review(self, start: str | None = None, end: str | None = None, department: str | None = None,
               channel: str | None = None, below: float = REVIEW_CONFIDENCE, limit: int = 1000) -> list[Turn]:
        """The review inbox: questions asked back, declined, or routed with confidence below
        `below`, with their masked text (a department sees its own low-confidence ones only:
        the others name no department)."""
        unsure = sa.or_(turns.c.outcome.in_(("asked_back", "out_of_scope")), turns.c.confidence < below)
        return self.turns(start, end, department, channel, kinds=("question",), limit=limit, where=unsure)

    def turns_by_id(self, event_ids: Iterable[int]) -> dict[int, Turn]:
        """Stored turns by the tracker store's id of their user event."""
        ids, found = list(event_ids), {}
        with self.engine.connect() as db:
            for start in range(0, len(ids), IN_CHUNK):
                query = sa.select(*(turns.c[name] for name in TURN_FIELDS)).where(
                    turns.c.event_id.in_(ids[start:start + IN_CHUNK]))
                found.update({row.event_id: Turn(**row._mapping) for row in db.execute(query)})
        return found

    # labels -------------------------------------------------------------------------------
    def record_labels(self, entries: list[Label]) -> None:
        """Add entries to the labels' audit trail, in one transaction."""
        if entries:
            with self.engine.begin() as db:
                db.execute(labels.insert(), [_fit(labels, asdict(entry)) for entry in entries])

    def labels(self, event_ids: Iterable[int] | None = None) -> list[Label]:
        """The audit trail, oldest first: of these turns, or all."""
        query = sa.select(labels.c.id, *(labels.c[f.name] for f in fields(Label)))
        ids = None if event_ids is None else list(event_ids)
        chunks = [None] if ids is None else [ids[i:i + IN_CHUNK] for i in range(0, len(ids), IN_CHUNK)]
        found = []
        with self.engine.connect() as db:
            for chunk in chunks:
                chosen = query if chunk is None else query.where(labels.c.event_id.in_(chunk))
                found += list(db.execute(chosen))
        found.sort(key=lambda row: (row.labelled_at, row.id))
        return [Label(*row[1:]) for row in found]
