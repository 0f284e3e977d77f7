"""The secret Rasa shows the action server: what it sends, and the check that it was sent.

Anyone who can reach the action server's `/webhook` can run any action with a tracker they
invent (close a user's case with `action_restart`, open one with invented contacts with
`action_open_case`), so the server runs nothing for a caller who does not hold the secret
in `$ACTIONS_SECRET`. Rasa sends it from endpoints.yml's `action_endpoint.headers` as
`Authorization: Bearer <secret>`. A header rather than Rasa's `token` (a query parameter):
URLs end up in access logs, proxies and error messages, headers do not.

Standard library only, so scripts/write_endpoints.py can use it without loading rasa-sdk.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

SECRET_ENV = "ACTIONS_SECRET"
HEADER = "Authorization"
SCHEME = "Bearer"
MIN_LENGTH = 16
# RFC 6750's b64token: secrets.token_urlsafe() qualifies; nothing a header or YAML
# (Rasa expands ${VAR} in endpoints files) would read otherwise
ALLOWED = re.compile(r"[A-Za-z0-9._~+/-]+=*")
# what answers without the secret: Rasa's and the tests' liveness check, which runs no action
OPEN_PATHS = frozenset({"/health"})


def checked(secret: str | None) -> str:
    """The secret, if it is one the server may start with.

    Raises:
        ValueError: unset, shorter than MIN_LENGTH, or not usable in a header. The server
            refuses to start rather than run open, or behind a secret a guess finds.
    """
    if not secret:
        raise ValueError(f"{SECRET_ENV} is not set: the action server runs no action without a shared secret")
    if len(secret) < MIN_LENGTH:
        raise ValueError(f"{SECRET_ENV} is shorter than {MIN_LENGTH} characters")
    if not ALLOWED.fullmatch(secret):
        raise ValueError(f"{SECRET_ENV} may hold only letters, digits and -._~+/ (then =): it travels in a header")
    return secret


def headers(secret: str) -> dict[str, str]:
    """The headers Rasa must send (endpoints.yml `action_endpoint.headers`)."""
    return {HEADER: f"{SCHEME} {secret}"}


def authorized(received: str | None, secret: str) -> bool:
    """Whether an Authorization header value carries the secret (constant time, no `==`)."""
    if received is None:
        return False
    expected = f"{SCHEME} {secret}".encode()
    return hmac.compare_digest(received.encode("utf-8", "surrogatepass"), expected)


def allowed(path: str, request_headers: Mapping[str, str], secret: str) -> bool:
    """Whether a request may reach the app: an open path, or the secret shown."""
    return path in OPEN_PATHS or authorized(request_headers.get(HEADER), secret)
