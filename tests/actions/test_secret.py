"""actions/secret.py: which secrets the server starts with, which requests carry it."""

from __future__ import annotations

import secrets

import pytest

from actions import secret

SECRET = "unit-test-secret-0123456789"


@pytest.mark.parametrize("value, reason", [
    (None, "not set"), ("", "not set"), ("x" * 15, "shorter"),
    ("with space-0123456789", "may hold only"), ("newline-0123456789\n", "may hold only"),
    ("dollar-${HOME}-0123456789", "may hold only"),  # Rasa would expand it in an endpoints file
    ("密钥密钥密钥密钥密钥密钥密钥密钥", "may hold only"),
])
def test_an_unusable_secret_refuses_to_start(value: str | None, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        secret.checked(value)


@pytest.mark.parametrize("value", [secrets.token_urlsafe(32), "a" * 16, "b64+token/with~dots.and=="])
def test_a_bearer_token_is_a_secret(value: str) -> None:
    assert secret.checked(value) == value


def test_rasa_sends_the_header_the_check_accepts() -> None:
    (name, value), = secret.headers(SECRET).items()
    assert name == "Authorization" and secret.authorized(value, SECRET)


@pytest.mark.parametrize("received", [
    None, "", SECRET, f"Bearer {SECRET[:-1]}", f"Bearer {SECRET}x", f"Bearer {SECRET[:-1]}X",
    f"bearer {SECRET}", f"Basic {SECRET}", f"Bearer  {SECRET}", f"Bearer {SECRET} ", "Bearer 密钥",
    "Bearer \udcff",  # a header a client decoded badly: refused, not an exception
])
def test_anything_but_the_exact_header_is_refused(received: str | None) -> None:
    assert not secret.authorized(received, SECRET)


@pytest.mark.parametrize("path, headers, allowed", [
    ("/health", {}, True),  # liveness, runs nothing
    ("/webhook", {}, False),
    ("/webhook", {"Authorization": "Bearer wrong-secret-0123456789"}, False),
    ("/webhook", secret.headers(SECRET), True),
    ("/actions", {}, False),  # the action names are nobody else's business either
    ("/health/", {}, False),
])
def test_only_health_is_open(path: str, headers: dict[str, str], allowed: bool) -> None:
    assert secret.allowed(path, headers, SECRET) is allowed
