"""The handoff tables and their migrations.

One ordered list of migrations, each applied once and recorded in `schema_migrations`, so
that the same code creates or upgrades a SQLite file or a PostgreSQL database. Every process
that opens the database runs `migrate()`; concurrent starts are safe (PostgreSQL: an advisory
lock; SQLite: the loser of a race retries and finds the work done).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

DEFAULT_URL = f"sqlite:///{Path(__file__).resolve().parent.parent / 'var' / 'cases.db'}"
ADVISORY_LOCK = 7_700_707  # any constant: serialises migrations across processes on PostgreSQL
# the longest conversation id a case can hold: a key, so never cut (a cut id finds no case)
CONVERSATION_ID_CHARS = 200
# the largest id an INTEGER column holds on every database (PostgreSQL's is 32-bit)
MAX_ID = 2 ** 31 - 1

metadata = sa.MetaData()

migrations_table = sa.Table(
    "schema_migrations", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)
cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(CONVERSATION_ID_CHARS), nullable=False, index=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("reason", sa.String(30), nullable=False),
    sa.Column("topic", sa.String(100)),
    sa.Column("department", sa.String(100), nullable=False, index=True),
    sa.Column("status", sa.String(10), nullable=False, index=True),  # waiting | claimed | resolved
    sa.Column("contact", sa.String(100), nullable=False, server_default=""),
    sa.Column("company", sa.String(200), nullable=False, server_default=""),
    sa.Column("problem", sa.Text, nullable=False, server_default=""),
    sa.Column("assignee", sa.String(64)),
    sa.Column("outcome", sa.String(20)),  # solved | handed_back, once resolved
    sa.Column("rating", sa.String(10)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("queued_at", sa.Float, nullable=False),  # when it last entered the queue
    sa.Column("claimed_at", sa.Float),
    sa.Column("resolved_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("unreachable_at", sa.Float),  # the channel refused a reply: user out of reach
    sa.Column("client", sa.String(64), index=True),  # who opened it, as channels/clients.py names clients
)
case_events = sa.Table(
    "case_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),  # a staff username, or "assistant"
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)
staff = sa.Table(
    "staff", metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),  # specialist | supervisor
    sa.Column("department", sa.String(100)),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
)
staff_sessions = sa.Table(
    "staff_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("staff.username"), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# login attempts per (address, user name) and per name: console/login_throttle.py
login_throttle = sa.Table(
    "login_throttle", metadata,
    sa.Column("key", sa.String(140), primary_key=True),  # "<address>|<name>", "*|<name>"
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("blocks", sa.Integer, nullable=False),  # blocks served in this window
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Column("blocked_until", sa.Float),
)

# at most one open case per conversation, whatever two processes do at the same moment
one_open_case = sa.Index("one_open_case_per_conversation", cases.c.conversation_id, unique=True,
                         sqlite_where=cases.c.status.in_(("waiting", "claimed")),
                         postgresql_where=cases.c.status.in_(("waiting", "claimed")))
cases.indexes.discard(one_open_case)  # created by migration 2, not with the table


def _v1(db: Connection) -> None:
    # checkfirst: SQLite runs DDL outside the transaction, so a start killed half-way through
    # leaves some tables behind without the version; the next start completes the step
    for table in (cases, case_events, staff, staff_sessions):
        table.create(db, checkfirst=True)


def _v2(db: Connection) -> None:
    one_open_case.create(db, checkfirst=True)



def _v3(db: Connection) -> None:
    login_throttle.create(db, checkfirst=True)


def _v4(db: Connection) -> None:
    # a database made by v1 after this column joined the table has it already
    if "client" not in {c["name"] for c in sa.inspect(db).get_columns("cases")}:
        db.execute(sa.text("ALTER TABLE cases ADD COLUMN client VARCHAR(64)"))
    index = next(i for i in cases.indexes if i.name == "ix_cases_client")
    index.create(db, checkfirst=True)


# (version, what it does, step). Append only; never edit a step that has shipped.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "cases, their audit trail, staff accounts and sessions", _v1),
    (2, "one open case per conversation (partial unique index)", _v2),
    (3, "login attempts per address and user name (console/login_throttle.py)", _v3),
    (4, "the client that opened a case, for the open-case quota per client", _v4),
]


CONNECT_RETRY_SECONDS = 5.0  # a server restarting (refusing, "starting up") is waited for this long


def engine_for(url: str) -> Engine:
    """An engine for url; a SQLite file's folder is created, writers wait for each other. A
    server database's pooled connections are checked before use, and a new connection is tried
    again while the server restarts: `pg_ctl restart` refuses connections for ~0.2 s, and a
    WeChat message arriving then got 500 on each of WeChat's retries (bench_prod fault b)."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url, future=True, connect_args={"timeout": 30})
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = sa.create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args)
    sa.event.listen(engine, "do_connect", _connect_through_a_restart)
    return engine


def _connect_through_a_restart(dialect, connection_record, cargs, cparams):  # noqa: ANN001 - SQLAlchemy's hook
    """The DBAPI connect, tried again (0.1 s doubling to 1 s) for CONNECT_RETRY_SECONDS. Callers
    run in worker threads (the servers' database calls are off their event loops)."""
    deadline, delay = time.monotonic() + CONNECT_RETRY_SECONDS, 0.1
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.dbapi.OperationalError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def applied(engine: Engine) -> list[int]:
    with engine.connect() as db:
        if not sa.inspect(db).has_table("schema_migrations"):
            return []
        return sorted(db.execute(sa.select(migrations_table.c.version)).scalars())


def migrate(engine: Engine, attempts: int = 5) -> list[int]:
    """Apply the migrations this database lacks; the versions applied now."""
    for attempt in range(attempts):
        try:
            with engine.begin() as db:
                if db.dialect.name == "postgresql":
                    db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
                migrations_table.create(db, checkfirst=True)
                done = set(db.execute(sa.select(migrations_table.c.version)).scalars())
                now = []
                for version, name, step in MIGRATIONS:
                    if version in done:
                        continue
                    step(db)
                    db.execute(migrations_table.insert().values(version=version, name=name, applied_at=time.time()))
                    now.append(version)
                return now
        except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # another process was migrating: look again
    return []
