"""A per-conversation flood guard, applied by every channel beside the size bound (limits.py).

One conversation sending faster than a person types (a script, a stuck retry loop) would
otherwise cost an NLU run and a tracker write per message, and hold the conversation's lock
so its own real messages wait. Over `FLOOD_MESSAGES` messages in `FLOOD_SECONDS` seconds
(defaults 12 in 20 s: a person pasting several questions stays well under), a message is
answered with `TOO_FAST` and goes no further; the conversation is served again as soon as
its window has room. Only the first refusal of a run is answered and logged: a client that
ignores it costs no reply and no log line per message (a socket.io client sent 45,000 in 5 s),
and the widget channel drops a socket refused `DROP_AFTER` times in a row.

The window is per process: behind nginx (production/nginx.conf.template) the per-address
limit is the cluster-wide one, and this guard is the second line for `make run` and for one
address carrying many conversations. Counted in memory, bounded: at most `MAX_TRACKED`
conversations are remembered, the longest idle ones forgotten first.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Callable

DEFAULT_MESSAGES = 12
DEFAULT_SECONDS = 20.0
MAX_TRACKED = 50_000
DROP_AFTER = 100  # refusals in a row after which a socket.io connection is closed
TOO_FAST = "消息发得太快了，请稍等几秒再发，我会继续为您解答。"


def settings(environ: Mapping[str, str]) -> tuple[int, float]:
    """(messages, seconds) from $FLOOD_MESSAGES / $FLOOD_SECONDS; a bad value stops the start."""
    messages = environ.get("FLOOD_MESSAGES", "").strip() or str(DEFAULT_MESSAGES)
    seconds = environ.get("FLOOD_SECONDS", "").strip() or str(DEFAULT_SECONDS)
    try:
        parsed = int(messages), float(seconds)
    except ValueError:
        parsed = (0, 0.0)
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"FLOOD_MESSAGES / FLOOD_SECONDS must be positive, not {messages!r} / {seconds!r}")
    return parsed


class FloodGuard:
    """Sliding-window count of each conversation's recent messages."""

    def __init__(self, messages: int, seconds: float, clock: Callable[[], float] = time.monotonic,
                 max_tracked: int = MAX_TRACKED) -> None:
        self.messages = messages
        self.seconds = seconds
        self.clock = clock
        self.max_tracked = max_tracked
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._refused: dict[str, int] = {}

    def allow(self, conversation: str) -> bool:
        """Count this message; False when the conversation is over its rate (not counted then,
        so a flood that pauses is served again after one window)."""
        now = self.clock()
        recent = self._recent.pop(conversation, None) or deque()
        while recent and now - recent[0] >= self.seconds:
            recent.popleft()
        allowed = len(recent) < self.messages
        if allowed:
            recent.append(now)
            self._refused.pop(conversation, None)
        else:
            self._refused[conversation] = self._refused.get(conversation, 0) + 1
        self._recent[conversation] = recent  # most recently seen last
        while len(self._recent) > self.max_tracked:
            forgotten, _ = self._recent.popitem(last=False)
            self._refused.pop(forgotten, None)
        return allowed

    def refused_in_a_row(self, conversation: str) -> int:
        """Messages refused since this conversation's last accepted one: a channel tells the
        user once (the first), and may drop a connection that goes on far past the limit."""
        return self._refused.get(conversation, 0)


GUARD = FloodGuard(*settings(os.environ))


def allow(conversation: str) -> bool:
    """Whether this process answers one more message of `conversation` now."""
    return GUARD.allow(conversation)


def refused_in_a_row(conversation: str) -> int:
    return GUARD.refused_in_a_row(conversation)
