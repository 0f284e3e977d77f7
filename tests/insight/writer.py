"""Save conversations (tests/insight/rasa_events.py) through Rasa's own SQLTrackerStore, as the
Rasa server does for each message: retrieve the tracker, apply the message's events, save."""

from __future__ import annotations

import asyncio
import functools

from tests.conftest import ROOT
from tests.insight.rasa_events import Conversation


@functools.lru_cache(maxsize=1)
def domain():
    """The assistant's domain (its slots: topic, the handoff's, requested_slot)."""
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


def tracker_store(url: str):
    """Rasa's own SQLTrackerStore on this database URL."""
    from rasa.core.tracker_store import SQLTrackerStore

    if url.startswith("sqlite:///"):
        return SQLTrackerStore(domain(), dialect="sqlite", db=url[len("sqlite:///"):])
    return SQLTrackerStore(domain(), dialect="postgresql", host=url)  # a host with :// is the whole URL


def write(url: str, conversations: list[Conversation]) -> None:
    """Save the conversations' messages in time order, as Rasa does: retrieve, update, save."""
    from rasa.shared.core.trackers import DialogueStateTracker

    store = tracker_store(url)
    pending = sorted(((m[0].timestamp, n, c.sender, m) for c in conversations
                      for n, m in enumerate(c.messages)), key=lambda p: (p[0], p[1]))

    async def save_all() -> None:
        for _, _, sender, events in pending:
            tracker = await store.retrieve(sender) or DialogueStateTracker(sender, domain().slots)
            for event in events:
                tracker.update(event)
            await store.save(tracker)

    asyncio.run(save_all())
    for conversation in conversations:
        conversation.messages = []  # written: the next write adds only what comes after
    store.engine.dispose()
