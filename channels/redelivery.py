"""At-least-once delivery of the widget's messages: message ids, acknowledgements, resends.

A socket.io message in flight is lost when its socket dies with it: the replica holding the
socket is killed, or the phone drops off the network before the answer arrives. The widget
therefore names every message (`message_id`, made by the client), keeps it until the server
acknowledges it, and sends it again, marked `resent`, once its socket is back (possibly on
another replica). The server

- records the id as the user turn's `message_id` (Rasa's UserUttered field), so the turn
  says which message it answers;
- acknowledges a message once its turn is over (`ACK_*` below), as socket.io's ack;
- treats a resent message whose turn is already in the tracker as delivered: it is not
  processed twice, and the answer that turn produced is sent again (the first one may have
  gone to the dead socket).

The check for a resend runs under the conversation's lock, so a turn still being processed
elsewhere (a socket that dropped while its replica lived) finishes and is seen. Messages
without an id (Rasa's own clients, rasa-webchat) are served as before: no ack, no check.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.shared.core.events import BotUttered, UserUttered

MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

ACK_ANSWERED = "answered"  # the turn is over: answered and in the tracker
ACK_REFUSED = "refused"  # answered here without a turn (too long, too fast): do not resend
ACK_FAILED = "failed"  # the assistant failed and said so; the user decides to send it again
ACK_IGNORED = "ignored"  # not this socket's conversation, or not a message


def message_id_of(data: dict[str, Any]) -> str | None:
    """The client's id of a message, when it is one a client could have made; else None."""
    value = data.get("message_id")
    return value if isinstance(value, str) and MESSAGE_ID.match(value) else None


def ack(status: str, message_id: str | None) -> dict[str, Any] | None:
    """The acknowledgement of a message that carried an id (None: nothing to acknowledge)."""
    return {"message_id": message_id, "status": status} if message_id else None


def answer_of(events: list[Any], message_id: str) -> list[BotUttered] | None:
    """The bot events of the turn of user message `message_id`, in order; None when the
    tracker holds no such turn (it was never processed)."""
    answer: list[BotUttered] | None = None
    for event in events:
        if isinstance(event, UserUttered):
            if answer is not None:
                break
            if event.message_id == message_id:
                answer = []
        elif answer is not None and isinstance(event, BotUttered):
            answer.append(event)
    return answer


async def delivered_answer(agent: Any, sender: str, message_id: str) -> list[BotUttered] | None:
    """For a resent message: the answer its turn produced when the tracker already holds it.

    Read under the conversation's lock, so a turn being processed when the socket dropped is
    over before the tracker is read."""
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve(sender)
    return answer_of(list(tracker.events) if tracker else [], message_id)
