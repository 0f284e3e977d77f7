"""console/login_throttle.py: guessing slowed per address and per name, nobody locked out."""

from __future__ import annotations

import threading

import pytest

from cases.schema import engine_for, migrate
from console import login_throttle
from console.login_throttle import (ACCOUNT_SPACING_SECONDS, BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, PER_ACCOUNT,
                                    PER_SOURCE, WINDOW_SECONDS, LoginThrottle, Throttled)


@pytest.fixture
def clock() -> list[float]:
    return [1_700_000_000.0]


@pytest.fixture
def throttle(database_url: str, clock: list[float]) -> LoginThrottle:
    engine = engine_for(database_url)  # SQLite and PostgreSQL (tests/conftest.py)
    migrate(engine)
    return LoginThrottle(engine, clock=lambda: clock[0])


def attempts_allowed(throttle: LoginThrottle, source: str, name: str, tries: int) -> int:
    allowed = 0
    for _ in range(tries):
        try:
            throttle.attempt(source, name)
            allowed += 1
        except Throttled:
            pass
    return allowed


def test_an_address_gets_its_tries_then_waits_longer_each_time(throttle: LoginThrottle, clock: list[float]) -> None:
    assert attempts_allowed(throttle, "203.0.113.9", "zhang", 20) == PER_SOURCE
    waits = []
    for _ in range(12):
        with pytest.raises(Throttled) as throttled:
            throttle.attempt("203.0.113.9", "zhang")
        waits.append(throttled.value.retry_after)
        clock[0] += throttled.value.retry_after + 0.5
        throttle.attempt("203.0.113.9", "zhang")  # the wait over, one more try is checked
    assert waits[:3] == [BACKOFF_SECONDS, 2 * BACKOFF_SECONDS, 4 * BACKOFF_SECONDS]
    assert max(waits) == MAX_BACKOFF_SECONDS  # never a day-long lock


def test_refused_attempts_do_not_lengthen_the_wait(throttle: LoginThrottle, clock: list[float]) -> None:
    attempts_allowed(throttle, "203.0.113.9", "zhang", PER_SOURCE + 1)
    assert attempts_allowed(throttle, "203.0.113.9", "zhang", 50) == 0  # hammering while blocked
    clock[0] += BACKOFF_SECONDS + 0.5
    assert attempts_allowed(throttle, "203.0.113.9", "zhang", 1) == 1


def test_other_addresses_and_names_are_not_affected(throttle: LoginThrottle) -> None:
    attempts_allowed(throttle, "203.0.113.9", "zhang", PER_SOURCE + 3)
    assert attempts_allowed(throttle, "10.0.0.5", "zhang", PER_SOURCE) == PER_SOURCE
    assert attempts_allowed(throttle, "203.0.113.9", "li", PER_SOURCE) == PER_SOURCE


def test_a_guesser_on_many_addresses_is_slowed_not_the_account_shut(throttle: LoginThrottle,
                                                                    clock: list[float]) -> None:
    sources = [f"198.51.100.{n}" for n in range(PER_ACCOUNT)]
    assert sum(attempts_allowed(throttle, s, "zhang", 1) for s in sources) == PER_ACCOUNT
    with pytest.raises(Throttled) as throttled:
        throttle.attempt("10.0.0.5", "zhang")  # the colleague: a few seconds, not minutes
    assert throttled.value.retry_after == ACCOUNT_SPACING_SECONDS
    clock[0] += ACCOUNT_SPACING_SECONDS + 0.5
    throttle.attempt("10.0.0.5", "zhang")
    clock[0] += WINDOW_SECONDS + 1  # a new window: the name's count starts again
    assert attempts_allowed(throttle, "10.0.0.5", "zhang", PER_SOURCE) == PER_SOURCE


def test_parallel_guesses_get_no_more_checks_than_the_limit(throttle: LoginThrottle) -> None:
    allowed: list[bool] = []
    start = threading.Barrier(30)

    def guess() -> None:
        start.wait()
        try:
            throttle.attempt("203.0.113.9", "zhang")
            allowed.append(True)
        except Throttled:
            allowed.append(False)

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == PER_SOURCE and len(allowed) == 30


def test_a_success_clears_its_address_only(throttle: LoginThrottle) -> None:
    attempts_allowed(throttle, "10.0.0.5", "zhang", PER_SOURCE - 1)
    throttle.succeeded("10.0.0.5", "zhang")
    assert attempts_allowed(throttle, "10.0.0.5", "zhang", PER_SOURCE) == PER_SOURCE
    assert login_throttle.ANY_SOURCE  # the name's count over every address stays (not cleared by one login)


# -- over HTTP: the console's /api/login ---------------------------------------------------
from tests.console.test_api import PASSWORD, console  # noqa: E402,F401 - the console process fixture


@pytest.mark.servers
def test_the_login_api_throttles_the_guessing_address_only(console) -> None:  # noqa: F811
    import requests

    def login(name: str, password: str, address: str) -> requests.Response:
        # the console believes X-Real-IP from nginx on this machine (the test's own loopback)
        return requests.post(f"{console.url}/api/login", json={"username": name, "password": password},
                             headers={"X-Real-IP": address}, timeout=10)

    for name in ("zhang", "no-such-name"):  # a known and an unknown name answer alike
        answers = [login(name, "wrong password", "203.0.113.9") for _ in range(PER_SOURCE + 1)]
        assert [a.status_code for a in answers] == [401] * PER_SOURCE + [429]
        assert answers[-1].headers["Retry-After"] == str(int(BACKOFF_SECONDS))
        assert "秒后再试" in answers[-1].json()["error"]
    assert login("zhang", PASSWORD, "203.0.113.9").status_code == 429  # the guesser waits …
    assert login("zhang", PASSWORD, "10.0.0.5").status_code == 200  # … zhang, at her desk, does not
