"""Bring the turns up to date with the tracker store: read the new events, store their turns.

Only events after the cursor are read (and the few ids the last read skipped over, see
insight/tracker.py); each conversation's state is taken from where the last sync left it.
The reading and deriving happen outside any write transaction — on SQLite the cases share
the database, and a long write lock would keep the assistant from opening a case — and the
result is written in one short transaction that first checks the cursor has not moved. If
another sync moved it meanwhile, this one starts over from the new cursor. So a sync run
twice, or two at once, or one that fails half-way, never counts a turn twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from insight import tracker as tracker_store
from insight.privacy import conversation_key
from insight.store import InsightStore
from insight.turns import Deriver, Turn

ATTEMPTS = 3


@dataclass(frozen=True)
class Synced:
    """What one sync did."""

    events: int  # rows of the tracker store read
    turns: int  # turns stored
    last_event_id: int


class Raced(RuntimeError):
    """Another sync stored turns while this one was reading."""


def sync(tracker_url: str, store: InsightStore, now: float | None = None) -> Synced:
    """Read the tracker store at `tracker_url` past the cursor and store the new turns."""
    if tracker_store.missing_file(tracker_url):  # Rasa has written nothing yet: create nothing
        return Synced(0, 0, store.last_event_id())
    source = tracker_store.engine(tracker_url)
    try:
        for attempt in range(ATTEMPTS):
            try:
                return _once(source, store, time.time() if now is None else now)
            except Raced:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
    finally:
        source.dispose()


def _once(source, store: InsightStore, now: float) -> Synced:
    secret = store.secret()
    with store.engine.connect() as db:
        position = store.position(db)
    if not tracker_store.has_events(source):
        return Synced(0, 0, position.last_event_id)
    highest = tracker_store.highest_id(source)
    if highest < position.last_event_id:
        raise tracker_store.TrackerStoreError(
            f"the tracker store's last event is {highest} but {position.last_event_id} were read: "
            "it was reset or replaced; the turns stored so far belong to the old one")
    deriver = Deriver(lambda sender: conversation_key(secret, sender))
    read = tracker_store.read_after(source, position, now)
    found: list[Turn] = []
    for rows in read.batches:
        keys = {deriver.key_of(row.sender_id) for row in rows} - set(deriver.states)
        with store.engine.connect() as db:
            deriver.states.update(store.states(db, keys))
        finished = (deriver.feed(row.id, row.sender_id, row.type_name, row.data or "{}") for row in rows)
        found += [turn for turn in finished if turn is not None]
    found += deriver.finish()
    with store.locked() as db:
        if store.position(db) != position:
            raise Raced()  # rolled back: nothing of this attempt is written
        added = store.add(db, found)
        store.save_states(db, {key: deriver.states[key] for key in deriver.changed})
        store.save_position(db, read.position)
    return Synced(read.rows, added, read.position.last_event_id)
