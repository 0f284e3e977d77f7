"""channels/session_ids.py: only ids the server signed open a conversation."""

from __future__ import annotations

import pytest

from channels import session_ids


@pytest.fixture(autouse=True)
def fixed_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WIDGET_SESSION_SECRET", "test-secret")
    session_ids.secret.cache_clear()
    yield
    session_ids.secret.cache_clear()


def test_issued_ids_are_valid_and_unique() -> None:
    issued = {session_ids.issue() for _ in range(200)}
    assert len(issued) == 200 and all(session_ids.valid(i) for i in issued)


def test_forged_copied_and_malformed_ids_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    genuine = session_ids.issue()
    random_part, signature = genuine.split("-")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    # another random part under the genuine signature (its last digit changed, never kept: an
    # id ending in 0 had made this "forgery" the genuine id, one run in sixteen)
    altered = random_part[:-1] + ("0" if random_part[-1] != "0" else "1")
    for forged in (f"{random_part}-{flipped}", random_part, f"{altered}-{signature}",
                   genuine.upper(), genuine + " ", None, 42, ""):
        assert session_ids.valid(forged) is False, forged
    monkeypatch.setenv("WIDGET_SESSION_SECRET", "another-server")
    session_ids.secret.cache_clear()
    assert session_ids.valid(genuine) is False  # signed under another secret


def test_without_the_variable_one_secret_is_kept_and_shared(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("WIDGET_SESSION_SECRET")
    monkeypatch.setattr(session_ids, "SECRET_FILE", tmp_path / "var" / "widget-session-secret")
    session_ids.secret.cache_clear()
    issued = session_ids.issue()
    assert (tmp_path / "var" / "widget-session-secret").stat().st_mode & 0o777 == 0o600
    session_ids.secret.cache_clear()  # another process on this machine reads the same file
    assert session_ids.valid(issued)
