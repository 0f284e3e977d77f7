"""Reading Rasa's SQL tracker store: where it is, and its events after a given id.

The store is found as Rasa finds it: the `tracker_store` section of endpoints.yml (`type:
SQL`, `dialect`, `host`, `port`, `db`, `username`, `password`, `query`; `${VAR}` taken from
the environment, as Rasa does), turned into a URL by Rasa's own `SQLTrackerStore.get_db_url`.
A relative SQLite `db` is in the project's folder, where scripts/run.sh starts Rasa.

Rows are read by id (`events.id`, Rasa's autoincrement key), in batches. On PostgreSQL two Rasa
processes can commit out of id order: a row with a lower id may appear after a higher one was
read. The ids skipped over are returned as gaps and asked for again on the next reads, for
`GAP_WAIT_SECONDS`; after that they are taken for ids a rolled-back transaction used up.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL, Engine

from cases.schema import engine_for

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENDPOINTS = ROOT / "endpoints.yml"
BATCH = 2000
GAP_WAIT_SECONDS = 600.0
MAX_GAPS = 1000

# Rasa's table (rasa.core.tracker_store.SQLTrackerStore.SQLEvent), read only
events = sa.Table(
    "events", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


class TrackerStoreError(RuntimeError):
    """The tracker store cannot be read for analytics (not SQL, or reset under the cursor)."""


def _section(endpoints: Path | str) -> dict:
    """The tracker_store section with `${VAR}` expanded as Rasa expands it; only this section,
    so that a file whose other sections need variables of another process (docker's
    ${ACTIONS_SECRET}) can still be read."""
    try:
        text = Path(endpoints).read_text(encoding="utf-8")
    except OSError as error:
        raise TrackerStoreError(f"cannot read {endpoints}: {error}") from None
    section = (yaml.safe_load(text) or {}).get("tracker_store")
    if not isinstance(section, dict):
        return {}
    expanded = {}
    for key, value in section.items():
        if isinstance(value, str):
            value = os.path.expandvars(value)
            if re.search(r"\$\{?\w+", value):
                raise TrackerStoreError(f"{endpoints}: set the environment variable in tracker_store.{key}")
        expanded[key] = value
    return expanded


def tracker_url(endpoints: Path | str = DEFAULT_ENDPOINTS) -> str:
    """The SQLAlchemy URL of the SQL tracker store endpoints.yml configures."""
    options = _section(endpoints)
    if str(options.pop("type", options.pop("store_type", ""))).lower() != "sql":
        raise TrackerStoreError(f"{endpoints} configures no SQL tracker store (tracker_store: type: SQL)")
    dialect, db, host = options.get("dialect", "sqlite"), str(options.get("db", "rasa.db")), options.get("host")
    if dialect == "sqlite" and not host:
        path = Path(db)
        return f"sqlite:///{path if path.is_absolute() else ROOT / path}"
    with warnings.catch_warnings():  # the module's declarative_base() warns about SQLAlchemy 2.0
        warnings.simplefilter("ignore")
        from rasa.core.tracker_store import SQLTrackerStore

    url = SQLTrackerStore.get_db_url(dialect, host, options.get("port"), db, options.get("username"),
                                     options.get("password"), None, options.get("query"))
    return url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)


def engine(url: str) -> Engine:
    """An engine on the tracker store; on PostgreSQL in the schema Rasa uses ($POSTGRESQL_SCHEMA)."""
    schema = os.environ.get("POSTGRESQL_SCHEMA")
    if url.startswith("postgresql") and schema:
        return sa.create_engine(url, future=True, pool_pre_ping=True,
                                connect_args={"connect_timeout": 5, "options": f"-csearch_path={schema}"})
    return engine_for(url)


def missing_file(url: str) -> bool:
    """A SQLite tracker store Rasa has not written yet (opening it would create it)."""
    return url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists()


@dataclass
class Position:
    """How far the events were read: the highest id, and lower ids not seen yet (id → since when)."""

    last_event_id: int = 0
    gaps: dict[int, float] = field(default_factory=dict)


@dataclass
class Read:
    """The rows read, batch by batch, and the position after them."""

    batches: Iterator[list[sa.engine.Row]]
    position: Position
    rows: int = 0


def has_events(tracker: Engine) -> bool:
    with tracker.connect() as db:
        return sa.inspect(db).has_table("events")


def highest_id(tracker: Engine) -> int:
    with tracker.connect() as db:
        return int(db.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0)


def read_after(tracker: Engine, position: Position, now: float, batch: int = BATCH) -> Read:
    """The events after `position` (and the gaps it still waits for), in id order per batch;
    `read.position` is where the next read starts, complete once the batches are consumed."""
    after = Position(position.last_event_id, {i: t for i, t in position.gaps.items() if now - t < GAP_WAIT_SECONDS})
    read = Read(iter(()), after)

    def batches() -> Iterator[list[sa.engine.Row]]:
        columns = (events.c.id, events.c.sender_id, events.c.type_name, events.c.data)
        with tracker.connect() as db:
            if after.gaps:
                late = list(db.execute(sa.select(*columns).where(events.c.id.in_(list(after.gaps)))
                                       .order_by(events.c.id)))
                for row in late:
                    after.gaps.pop(row.id, None)
                if late:
                    read.rows += len(late)
                    yield late
            while True:
                rows = list(db.execute(sa.select(*columns).where(events.c.id > after.last_event_id)
                                       .order_by(events.c.id).limit(batch)))
                if not rows:
                    return
                expected = after.last_event_id + 1
                for row in rows:
                    after.gaps.update({missing: now for missing in range(max(expected, row.id - MAX_GAPS), row.id)})
                    expected = row.id + 1
                after.last_event_id = rows[-1].id
                if len(after.gaps) > MAX_GAPS:
                    for oldest in sorted(after.gaps)[:len(after.gaps) - MAX_GAPS]:
                        del after.gaps[oldest]
                read.rows += len(rows)
                yield rows

    read.batches = batches()
    return read
