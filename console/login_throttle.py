"""Slow password guessing down without letting a guesser lock a colleague out.

An account-wide lockout (five wrong passwords, 15 minutes) was a weapon: anyone who knew a
specialist's user name could keep them out of the console all day, and a locked name answered
differently from an unknown one. Here failures are counted per (address, user name):

- from one address, `PER_SOURCE` attempts on a name are allowed; then that address waits
  `BACKOFF_SECONDS`, doubling with every further failure up to `MAX_BACKOFF_SECONDS`, while the
  colleague logging in from their own desk is not affected;
- across all addresses, a name that has drawn `PER_ACCOUNT` failures (a guesser spread over
  many addresses) takes one attempt every `ACCOUNT_SPACING_SECONDS`: slower, never shut;
- a count left alone for `WINDOW_SECONDS` starts afresh;
- an unknown name is counted exactly like a known one, so the answers do not tell them apart.

An attempt is counted before its password is checked, in one UPDATE, so parallel guesses cannot
slip past the limit while the first ones are being checked; a correct password clears its
address's count. State lives in the cases database (`login_throttle`), shared by every console.
"""

from __future__ import annotations

import time
import sqlalchemy as sa

from cases.schema import login_throttle

PER_SOURCE = 5
BACKOFF_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 15 * 60.0
PER_ACCOUNT = 30
ACCOUNT_SPACING_SECONDS = 5.0
WINDOW_SECONDS = 3600.0
ANY_SOURCE = "*"  # the key of a name's count over every address


class Throttled(Exception):
    """Too many attempts: the next one is accepted `retry_after` seconds from now."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = max(1.0, retry_after)


def _key(source: str, username: str) -> str:
    return f"{source[:64]}|{username[:64]}"


def _wait(limit: int, blocks: int) -> float:
    """How long the `blocks`-th block of a key lasts."""
    if limit == PER_ACCOUNT:
        return ACCOUNT_SPACING_SECONDS
    return min(BACKOFF_SECONDS * 2 ** min(blocks - 1, 10), MAX_BACKOFF_SECONDS)


def _insert_new(db: sa.engine.Connection, values: dict) -> sa.sql.Executable:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect of the database (SQLite or PostgreSQL)."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(login_throttle).values(**values).on_conflict_do_nothing(index_elements=["key"])


class LoginThrottle:
    """Counts login attempts per (address, name) and per name, in the cases database."""

    def __init__(self, engine: sa.engine.Engine, clock=time.time) -> None:
        self.engine = engine
        self.clock = clock

    def attempt(self, source: str, username: str) -> None:
        """Count one attempt before the password is checked; Throttled when it must wait.

        A key allows `limit` attempts, and one more after each block it served: the first
        attempt past them starts a block (60 s, 120 s, … for an address; 5 s for a name), and
        an attempt refused is not counted."""
        now = self.clock()
        for key, limit in ((_key(source, username), PER_SOURCE), (_key(ANY_SOURCE, username), PER_ACCOUNT)):
            self._check(key, limit, now)

    def _check(self, key: str, limit: int, now: float) -> None:
        table = login_throttle
        with self.engine.begin() as db:
            self._count(db, key, now)
            row = db.execute(sa.select(table).where(table.c.key == key)).one()
            if row.blocked_until and row.blocked_until > now:
                wait = row.blocked_until - now
            elif row.attempts > limit + row.blocks:
                wait = _wait(limit, row.blocks + 1)
                # only one of several parallel attempts starts the block
                started = db.execute(table.update().where(
                    table.c.key == key, table.c.blocks == row.blocks,
                    sa.or_(table.c.blocked_until.is_(None), table.c.blocked_until <= now))
                    .values(blocks=table.c.blocks + 1, blocked_until=now + wait)).rowcount
                if not started:
                    wait = (db.execute(sa.select(table.c.blocked_until).where(table.c.key == key)).scalar()
                            or now + wait) - now
            else:
                return
            db.execute(table.update().where(table.c.key == key).values(attempts=table.c.attempts - 1))
        raise Throttled(wait)

    @staticmethod
    def _count(db: sa.engine.Connection, key: str, now: float) -> None:
        """Add this attempt to the key's count; a key left alone for WINDOW_SECONDS starts afresh
        (so a guesser who keeps going stays at the longest wait)."""
        table = login_throttle
        if db.execute(table.update().where(table.c.key == key, table.c.last_at > now - WINDOW_SECONDS)
                      .values(attempts=table.c.attempts + 1, last_at=now)).rowcount:
            return
        # none, or left alone long enough and no block running: start afresh (with every other
        # key left alone as long; a row another attempt has just written is not one of them)
        db.execute(table.delete().where(table.c.last_at <= now - WINDOW_SECONDS,
                                        sa.or_(table.c.blocked_until.is_(None), table.c.blocked_until <= now)))
        fresh = {"key": key, "attempts": 1, "blocks": 0, "window_start": now, "last_at": now}
        if not db.execute(_insert_new(db, fresh)).rowcount:  # another attempt made it first, or a block runs
            db.execute(table.update().where(table.c.key == key).values(attempts=table.c.attempts + 1, last_at=now))

    def succeeded(self, source: str, username: str) -> None:
        """The right password: this address starts afresh (the name's count over every address
        does not: a guesser elsewhere gains nothing from the colleague's login)."""
        with self.engine.begin() as db:
            db.execute(login_throttle.delete().where(login_throttle.c.key == _key(source, username)))

    def clear(self, username: str) -> None:
        """A new password was set: every count of the name goes."""
        with self.engine.begin() as db:
            db.execute(login_throttle.delete().where(login_throttle.c.key.endswith(f"|{username[:64]}", autoescape=True)))
