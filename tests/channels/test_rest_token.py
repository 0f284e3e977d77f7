"""channels/rest.py: with REST_TOKEN set, the webhook answers only requests that carry it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from channels.rest import authorized


def request(headers: dict[str, str] | None = None, args: dict[str, str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(headers={k.lower(): v for k, v in (headers or {}).items()}, args=args or {})


@pytest.mark.parametrize("given, ok", [
    (request({"Authorization": "Bearer s3cret-token"}), True),
    (request({"Authorization": "bearer s3cret-token"}), True),
    (request(args={"token": "s3cret-token"}), True),
    (request(), False),
    (request({"Authorization": "Bearer wrong"}), False),
    (request({"Authorization": "Basic s3cret-token"}), False),
    (request({"Authorization": "Bearer "}), False),
])
def test_a_configured_token_must_be_carried(given, ok: bool) -> None:
    assert authorized(given, "s3cret-token") is ok


def test_without_a_token_configured_anyone_may_post() -> None:  # make run: the demo page and curl
    assert authorized(request(), "") is True


def test_production_without_a_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """REST_TOKEN_REQUIRED (make up-prod, compose's prod profile) and no token: the channel's
    blueprint, built when Rasa starts, raises instead of opening the webhook to anyone."""
    from channels.rest import RestInput

    monkeypatch.setenv("REST_TOKEN_REQUIRED", "1")
    monkeypatch.delenv("REST_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="REST_TOKEN"):
        RestInput().blueprint(lambda message: None)
    monkeypatch.setenv("REST_TOKEN", "district-token")
    assert RestInput().blueprint(lambda message: None).name == "rest_webhook"


def test_without_the_requirement_an_empty_token_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.rest import RestInput

    monkeypatch.delenv("REST_TOKEN_REQUIRED", raising=False)
    monkeypatch.delenv("REST_TOKEN", raising=False)
    assert RestInput().blueprint(lambda message: None).name == "rest_webhook"
