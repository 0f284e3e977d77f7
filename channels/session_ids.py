"""Widget conversation ids that only the server can issue.

A socket.io client asks to join a conversation by its id (a reload continues the same one).
Before, any id of the right shape was accepted, so whoever learnt another user's id (a
screenshot, a shared computer's log, a support ticket) could join that conversation's room and
read its answers and staff replies as they arrived. Now the server issues `<32 hex>-<16 hex>`:
a random id and its HMAC-SHA256 under a secret, and takes a requested id only when the
signature holds; anything else gets a fresh conversation.

The secret is $WIDGET_SESSION_SECRET, else one kept in var/widget-session-secret (created once,
mode 600), so `make run` and the replicas of `make up-prod` on one machine agree; replicas on
several machines need the variable (docker-compose: .env).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import uuid
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET_FILE = ROOT / "var" / "widget-session-secret"
SHAPE = re.compile(r"^([0-9a-f]{32})-([0-9a-f]{16})$")


@lru_cache(maxsize=1)
def secret() -> bytes:
    """The signing secret: the environment's, else the kept file's (made on first use)."""
    given = os.environ.get("WIDGET_SESSION_SECRET", "").strip()
    if given:
        return given.encode()
    SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not SECRET_FILE.exists():  # written whole beside it, then linked in: of two processes
        fresh = SECRET_FILE.with_name(f".{SECRET_FILE.name}.{os.getpid()}")  # starting together,
        descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # one wins, and
        with os.fdopen(descriptor, "w") as handle:  # neither can read a half-written file
            handle.write(secrets.token_hex(32))
        try:
            os.link(fresh, SECRET_FILE)
        except FileExistsError:
            pass
        finally:
            fresh.unlink(missing_ok=True)
    kept = SECRET_FILE.read_text().strip()
    if not kept:
        raise RuntimeError(f"{SECRET_FILE} is empty: remove it (a new one is made) or set WIDGET_SESSION_SECRET")
    return kept.encode()


def _signature(random_part: str) -> str:
    return hmac.new(secret(), random_part.encode(), hashlib.sha256).hexdigest()[:16]


def issue() -> str:
    """A new conversation id, signed."""
    random_part = uuid.uuid4().hex
    return f"{random_part}-{_signature(random_part)}"


def valid(conversation_id: object) -> bool:
    """Whether this server issued the id."""
    if not isinstance(conversation_id, str):
        return False
    shape = SHAPE.match(conversation_id)
    return bool(shape) and hmac.compare_digest(shape.group(2), _signature(shape.group(1)))
