"""What the WeChat channels must share across retries, processes and restarts, in SQL.

- which messages were already taken (WeChat retries a message up to three times, possibly
  to another process): the first INSERT of a message key wins, the others wait for its reply;
- the access token, fetched in one place and used by every process (each process fetching
  its own would invalidate the others': error 40001);
- the numbered choices last offered to a user, so that 「1」 means the first of them;
- unsubscribes;
- the widget's 好差评 ratings (five levels), with the answer, topic and department rated (one
  rating per answer: rating it again changes it), and
  which topics each conversation was answered on (a rating must be of one of those).

SQLite file by default, PostgreSQL (or any SQLAlchemy URL) from $DATABASE_URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cases.repository import RATING_LEVELS  # noqa: F401 - the five 好差评 levels, one definition
from cases.schema import engine_for

DEFAULT_URL = f"sqlite:///{Path(__file__).resolve().parent.parent / 'var' / 'channels.db'}"

metadata = sa.MetaData()
messages = sa.Table(
    "wechat_messages", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("reply", sa.Text),
    # NULL while the bot works; pending: reply ready, not delivered; passive | api | failed | none
    sa.Column("delivered", sa.String(20)),
)
tokens = sa.Table(
    "wechat_tokens", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
choices = sa.Table(
    "wechat_choices", metadata,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("payloads", sa.Text, nullable=False),
)
unsubscribes = sa.Table(
    "wechat_unsubscribes", metadata,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
)


ratings = sa.Table(
    "ratings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("topic", sa.String(100)),
    sa.Column("department", sa.String(100)),
    sa.Column("answer", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)
# one rating per answer: the key of (conversation, topic, department, answer) → the rating,
# which a second rating of the same answer changes instead of adding another
rating_keys = sa.Table(
    "rating_keys", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("rating_id", sa.Integer, nullable=False),
)
answers = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(200), nullable=False, index=True),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("department", sa.String(100), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)


def short_key(key: str) -> str:
    """Message keys fit the column: a long one (a WeCom userid + EventKey) is hashed."""
    return key if len(key) <= 200 else "sha1:" + hashlib.sha1(key.encode("utf-8")).hexdigest()


class ChannelStore:
    """Message claims, shared access tokens, offered choices and unsubscribes."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)  # as the cases' (one way to open a database)
        metadata.create_all(self.engine)

    def claim(self, key: str, channel: str, user_id: str) -> bool:
        """True for the first request of a message, False for WeChat's retries of it."""
        key = short_key(key)
        try:
            with self.engine.begin() as db:
                db.execute(messages.insert().values(key=key, channel=channel, user_id=user_id,
                                                    created_at=time.time()))
            return True
        except sa.exc.IntegrityError:
            return False

    def finish(self, key: str, reply: str, delivered: str) -> None:
        key = short_key(key)
        with self.engine.begin() as db:
            db.execute(messages.update().where(messages.c.key == key).values(reply=reply, delivered=delivered))

    def take_reply(self, key: str, how: str) -> str | None:
        """Take a finished reply waiting for delivery (`pending`) for delivery by `how`
        (passive | api): exactly one taker gets it, whichever process it runs in."""
        key = short_key(key)
        with self.engine.begin() as db:
            row = db.execute(sa.select(messages.c.reply).where(messages.c.key == key,
                                                               messages.c.delivered == "pending")).first()
            if row is None:
                return None
            done = db.execute(messages.update().where(messages.c.key == key, messages.c.delivered == "pending")
                              .values(delivered=how))
            return row.reply if done.rowcount == 1 else None

    def state(self, key: str) -> tuple[str | None, str | None]:
        key = short_key(key)
        with self.engine.connect() as db:
            row = db.execute(sa.select(messages.c.reply, messages.c.delivered).where(messages.c.key == key)).first()
        return (row.reply, row.delivered) if row else (None, None)

    def token(self, name: str) -> str | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(tokens.c.token, tokens.c.expires_at).where(tokens.c.name == name)).first()
        return row.token if row and row.expires_at > time.time() else None

    def save_token(self, name: str, token: str, expires_at: float) -> None:
        self._replace(tokens, tokens.c.name == name, name=name, token=token, expires_at=expires_at)

    def _replace(self, table: sa.Table, where: Any, **values: Any) -> None:
        """Delete then insert one row; a concurrent writer that got there first wins."""
        try:
            with self.engine.begin() as db:
                db.execute(table.delete().where(where))
                db.execute(table.insert().values(**values))
        except sa.exc.IntegrityError:
            pass

    def drop_token(self, name: str, token: str) -> None:
        """Forget a token the API refused, unless another process already replaced it."""
        with self.engine.begin() as db:
            db.execute(tokens.delete().where(tokens.c.name == name, tokens.c.token == token))

    def offer(self, user_id: str, payloads: list[str]) -> None:
        self._replace(choices, choices.c.user_id == user_id, user_id=user_id, payloads=json.dumps(payloads))

    def offered(self, user_id: str) -> list[str]:
        with self.engine.connect() as db:
            row = db.execute(sa.select(choices.c.payloads).where(choices.c.user_id == user_id)).first()
        return json.loads(row.payloads) if row else []

    def unsubscribed(self, user_id: str) -> None:
        self._replace(unsubscribes, unsubscribes.c.user_id == user_id, user_id=user_id, at=time.time())

    def answered(self, conversation_id: str, topic: str, department: str) -> None:
        """Remember that this conversation was shown an answer on topic (ratings check it)."""
        with self.engine.begin() as db:
            db.execute(answers.insert().values(conversation_id=conversation_id[:200], topic=topic[:100],
                                               department=department[:100], at=time.time()))

    def was_answered(self, conversation_id: str, topic: str, department: str) -> bool:
        with self.engine.connect() as db:
            row = db.execute(sa.select(answers.c.at).where(
                answers.c.conversation_id == conversation_id, answers.c.topic == topic,
                answers.c.department == department)).first()
        return row is not None


    def rate(self, conversation_id: str, channel: str, level: str, reason: str = "", topic: str = "",
             department: str = "", answer: str = "") -> int:
        """Record the rating of an answer (id); see `rate_answer`."""
        return self.rate_answer(conversation_id, channel, level, reason, topic, department, answer)[0]

    def rate_answer(self, conversation_id: str, channel: str, level: str, reason: str = "", topic: str = "",
                    department: str = "", answer: str = "") -> tuple[int, str | None]:
        """(rating id, the level it had before or None): one rating per answer, a second rating
        of the same answer changes it. ValueError for a level outside the five."""
        if level not in RATING_LEVELS or not conversation_id:
            raise ValueError(f"not a rating: {level!r}")
        values = dict(conversation_id=conversation_id[:200], channel=channel, level=level,
                      reason=(reason or "")[:500], topic=(topic or "")[:100], department=(department or "")[:100],
                      answer=(answer or "")[:4000], created_at=time.time())
        key = hashlib.sha256("\0".join((values["conversation_id"], values["topic"], values["department"],
                                         values["answer"])).encode("utf-8")).hexdigest()
        try:
            with self.engine.begin() as db:
                rating_id = int(db.execute(ratings.insert().values(**values)).inserted_primary_key[0])
                db.execute(rating_keys.insert().values(key=key, rating_id=rating_id))
            return rating_id, None
        except sa.exc.IntegrityError:  # rated before (perhaps a moment ago, by a parallel request)
            pass
        with self.engine.begin() as db:
            rating_id = db.execute(sa.select(rating_keys.c.rating_id).where(rating_keys.c.key == key)).scalar_one()
            before = db.execute(sa.select(ratings.c.level).where(ratings.c.id == rating_id)).scalar_one()
            db.execute(ratings.update().where(ratings.c.id == rating_id).values(
                level=level, reason=values["reason"], created_at=values["created_at"]))
        return rating_id, before

    def rating_counts(self, by: str) -> dict[str, dict[str, int]]:
        """{department or topic: {level: count}} over every rating."""
        column = ratings.c[by]
        with self.engine.connect() as db:
            rows = db.execute(sa.select(column, ratings.c.level, sa.func.count()).group_by(column, ratings.c.level))
            counts: dict[str, dict[str, int]] = {}
            for key, level, count in rows:
                counts.setdefault(key or "—", {})[level] = count
        return counts


@lru_cache(maxsize=4)
def store_for(url: str | None = None) -> ChannelStore:
    """One store per database URL per process ($DATABASE_URL, else the SQLite file)."""
    return ChannelStore(url or os.environ.get("DATABASE_URL") or DEFAULT_URL)
