"""Staff accounts: the rules of add(), scrypt hashes, login throttled per address, sessions, the CLI."""

from __future__ import annotations

import contextlib
import io
import secrets
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from cases.schema import staff, staff_sessions
from console import accounts as accounts_module
from console.accounts import (MIN_PASSWORD, SESSION_SECONDS, Accounts,
                              StaffMember, check_password, hash_password, main)
from console.login_throttle import BACKOFF_SECONDS, PER_SOURCE, Throttled
from console.names import departments

PASSWORD = "correct horse battery"


@pytest.fixture
def url(database_url: str) -> str:
    return database_url  # each test runs on SQLite and on PostgreSQL (tests/conftest.py)


@pytest.fixture
def accounts(url: str) -> Accounts:
    return Accounts(url)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """console.accounts' time.time(), moved by hand: clock[0] += 60."""
    now = [1_700_000_000.0]
    monkeypatch.setattr(accounts_module, "time", SimpleNamespace(time=lambda: now[0]))
    return now


@pytest.fixture
def department() -> str:
    return next(iter(departments()))


@pytest.fixture
def zhang(accounts: Accounts, department: str) -> StaffMember:
    return accounts.add("zhang", PASSWORD, "specialist", department, "张三")


def stored_row(accounts: Accounts, username: str):
    with accounts.engine.connect() as db:
        return db.execute(sa.select(staff).where(staff.c.username == username)).first()


def live_sessions(accounts: Accounts, username: str) -> int:
    with accounts.engine.connect() as db:
        return len(db.execute(sa.select(staff_sessions).where(staff_sessions.c.username == username)).all())


# add -------------------------------------------------------------------------------------
def test_add_a_specialist_and_a_supervisor(accounts: Accounts, department: str) -> None:
    assert accounts.add("zhang", PASSWORD, "specialist", department, "张三") == \
        StaffMember("zhang", "张三", "specialist", department)
    assert accounts.add("boss", PASSWORD, "supervisor", None) == StaffMember("boss", "boss", "supervisor", None)
    assert accounts.members() == [(StaffMember("boss", "boss", "supervisor", None), True),
                                  (StaffMember("zhang", "张三", "specialist", department), True)]
    assert accounts.member("zhang").name == "张三"
    assert accounts.member("nobody") is None


@pytest.mark.parametrize("username", ["", "z", "Zhang", "1zhang", "_zhang", "zh ang", "张三", "zhang!",
                                      "z" * 33, "zhang\n", "zhang\nroot"])
def test_add_refuses_a_bad_username(accounts: Accounts, department: str, username: str) -> None:
    try:
        accounts.add(username, PASSWORD, "specialist", department)
    except ValueError as error:
        assert "username" in str(error)
    else:
        pytest.fail(f"BUG: username {username!r} was accepted: USERNAME in console/accounts.py is used with "
                    "re.match and ends in `$`, which also matches before a trailing newline (use fullmatch or \\Z)")
    assert accounts.members() == []


@pytest.mark.parametrize("username", ["zh", "zhang.san", "li-si_2", "a" * 32])
def test_add_accepts_a_good_username(accounts: Accounts, department: str, username: str) -> None:
    assert accounts.add(username, PASSWORD, "specialist", department).username == username


@pytest.mark.parametrize("role, dept, message", [
    ("admin", None, "role"),
    ("", None, "role"),
    ("specialist", None, "specialist needs"),
    ("specialist", "no_such_unit", "specialist needs"),
    ("supervisor", "no_such_unit", "unknown department"),
])
def test_add_refuses_a_bad_role_or_department(accounts: Accounts, role: str, dept: str | None,
                                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        accounts.add("zhang", PASSWORD, role, dept)
    assert accounts.members() == []


def test_add_refuses_a_short_password(accounts: Accounts, department: str) -> None:
    with pytest.raises(ValueError, match="password"):
        accounts.add("zhang", "x" * (MIN_PASSWORD - 1), "specialist", department)
    assert accounts.add("zhang", "x" * MIN_PASSWORD, "specialist", department).username == "zhang"


def test_add_refuses_a_duplicate(accounts: Accounts, zhang: StaffMember, department: str) -> None:
    with pytest.raises(ValueError, match="exists"):
        accounts.add("zhang", "another password", "supervisor", None, "另一个张三")
    assert accounts.members() == [(zhang, True)]


# passwords -------------------------------------------------------------------------------
def test_the_stored_hash_is_scrypt_not_the_password(accounts: Accounts, zhang: StaffMember) -> None:
    stored = stored_row(accounts, "zhang").password_hash
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert check_password(PASSWORD, stored)
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # salted


@pytest.mark.parametrize("password, stored, expected", [
    (PASSWORD, None, True),
    ("wrong password", None, False),
    (PASSWORD.upper(), None, False),
    ("", None, False),
    (PASSWORD, "", False),
    (PASSWORD, "garbage", False),
    (PASSWORD, "scrypt$x$y$z$salt$digest", False),
    (PASSWORD, "bcrypt$16384$8$1$c2FsdA==$ZGlnZXN0", False),
    (PASSWORD, "scrypt$16384$8$1$!!!$???", False),
    (PASSWORD, PASSWORD, False),
])
def test_check_password(password: str, stored: str | None, expected: bool) -> None:
    assert check_password(password, stored if stored is not None else hash_password(PASSWORD)) is expected


# login -----------------------------------------------------------------------------------
def test_login_with_the_right_password(accounts: Accounts, zhang: StaffMember) -> None:
    member, token = accounts.login("zhang", PASSWORD)
    assert member == zhang
    assert len(token) >= 32
    assert accounts.session(token) == zhang
    with accounts.engine.connect() as db:
        hashes = db.execute(sa.select(staff_sessions.c.token_hash)).scalars().all()
    assert token not in hashes and len(hashes) == 1  # only the token's hash is stored


@pytest.mark.parametrize("username, password", [
    ("zhang", "wrong password"),
    ("zhang", ""),
    ("nobody", PASSWORD),
    ("ZHANG", PASSWORD),
])
def test_login_fails(accounts: Accounts, zhang: StaffMember, username: str, password: str) -> None:
    assert accounts.login(username, password) is None
    assert live_sessions(accounts, "zhang") == 0


def test_a_disabled_account_cannot_log_in(accounts: Accounts, zhang: StaffMember) -> None:
    accounts.set_active("zhang", False)
    assert accounts.login("zhang", PASSWORD) is None
    assert accounts.member("zhang") is None
    accounts.set_active("zhang", True)
    assert accounts.login("zhang", PASSWORD)[0] == zhang


def test_wrong_passwords_slow_the_guesser_not_the_colleague(accounts: Accounts, zhang: StaffMember,
                                                            clock: list[float]) -> None:
    for _ in range(PER_SOURCE):
        assert accounts.login("zhang", "wrong password", "203.0.113.9") is None
    with pytest.raises(Throttled) as throttled:
        accounts.login("zhang", PASSWORD, "203.0.113.9")
    assert throttled.value.retry_after == BACKOFF_SECONDS
    # zhang, at her own desk, logs in all the same
    member, token = accounts.login("zhang", PASSWORD, "10.0.0.5")
    assert member == zhang and accounts.session(token) == zhang
    clock[0] += BACKOFF_SECONDS + 1  # the guesser's wait is over: one more try, then twice as long
    assert accounts.login("zhang", "wrong password", "203.0.113.9") is None
    with pytest.raises(Throttled) as throttled:
        accounts.login("zhang", "wrong password", "203.0.113.9")
    assert throttled.value.retry_after == 2 * BACKOFF_SECONDS


def test_an_unknown_name_is_answered_like_a_known_one(accounts: Accounts, zhang: StaffMember) -> None:
    for name in ("zhang", "nobody"):
        for _ in range(PER_SOURCE):
            assert accounts.login(name, "wrong password", "203.0.113.9") is None
        with pytest.raises(Throttled) as throttled:
            accounts.login(name, "wrong password", "203.0.113.9")
        assert throttled.value.retry_after == BACKOFF_SECONDS


def test_the_right_password_starts_the_count_afresh(accounts: Accounts, zhang: StaffMember) -> None:
    for _ in range(PER_SOURCE - 1):
        assert accounts.login("zhang", "wrong password", "10.0.0.5") is None
    assert accounts.login("zhang", PASSWORD, "10.0.0.5") is not None
    for _ in range(PER_SOURCE - 1):
        assert accounts.login("zhang", "wrong password", "10.0.0.5") is None
    assert accounts.login("zhang", PASSWORD, "10.0.0.5") is not None  # not throttled: the count started again


def test_a_new_password_clears_every_count(accounts: Accounts, zhang: StaffMember) -> None:
    for _ in range(PER_SOURCE + 1):
        with contextlib.suppress(Throttled):
            accounts.login("zhang", "wrong password", "203.0.113.9")
    accounts.set_password("zhang", PASSWORD + "-new")
    assert accounts.login("zhang", PASSWORD + "-new", "203.0.113.9") is not None


# sessions --------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "not-a-token", secrets.token_urlsafe(32)])
def test_an_unknown_token_opens_no_session(accounts: Accounts, zhang: StaffMember, token: str | None) -> None:
    accounts.login("zhang", PASSWORD)
    assert accounts.session(token) is None


def test_a_session_expires(accounts: Accounts, zhang: StaffMember, clock: list[float]) -> None:
    _, token = accounts.login("zhang", PASSWORD)
    clock[0] += SESSION_SECONDS - 1
    assert accounts.session(token) == zhang
    clock[0] += 2
    assert accounts.session(token) is None


def test_logout_ends_only_that_session(accounts: Accounts, zhang: StaffMember) -> None:
    _, first = accounts.login("zhang", PASSWORD)
    _, second = accounts.login("zhang", PASSWORD)
    accounts.logout(first)
    assert accounts.session(first) is None
    assert accounts.session(second) == zhang


def test_a_new_password_ends_every_session(accounts: Accounts, zhang: StaffMember) -> None:
    tokens = [accounts.login("zhang", PASSWORD)[1] for _ in range(2)]
    accounts.set_password("zhang", "a brand new password")
    assert [accounts.session(token) for token in tokens] == [None, None]
    assert accounts.login("zhang", PASSWORD) is None
    assert accounts.login("zhang", "a brand new password")[0] == zhang


def test_set_password_rules(accounts: Accounts, zhang: StaffMember) -> None:
    _, token = accounts.login("zhang", PASSWORD)
    with pytest.raises(ValueError, match="password"):
        accounts.set_password("zhang", "short")
    assert accounts.session(token) == zhang  # nothing changed
    with pytest.raises(ValueError, match="no account"):
        accounts.set_password("nobody", "a brand new password")


def test_disabling_ends_every_session(accounts: Accounts, zhang: StaffMember) -> None:
    _, token = accounts.login("zhang", PASSWORD)
    accounts.set_active("zhang", False)
    assert accounts.session(token) is None
    assert live_sessions(accounts, "zhang") == 0
    accounts.set_active("zhang", True)
    assert accounts.session(token) is None  # enabling again does not revive old sessions


def test_sessions_are_shared_by_processes_on_the_same_database(url: str, accounts: Accounts,
                                                               zhang: StaffMember) -> None:
    _, token = accounts.login("zhang", PASSWORD)
    assert Accounts(url).session(token) == zhang


# StaffMember -----------------------------------------------------------------------------
@pytest.mark.parametrize("member, department, expected", [
    (StaffMember("zhang", "张三", "specialist", "shuiwu"), "shuiwu", True),
    (StaffMember("zhang", "张三", "specialist", "shuiwu"), "scjg", False),
    (StaffMember("zhang", "张三", "specialist", None), "shuiwu", False),
    (StaffMember("boss", "主管", "supervisor", None), "shuiwu", True),
    (StaffMember("boss", "主管", "supervisor", "scjg"), "shuiwu", True),
])
def test_may_see(member: StaffMember, department: str, expected: bool) -> None:
    assert member.may_see(department) is expected
    assert member.is_supervisor is (member.role == "supervisor")


# command line ----------------------------------------------------------------------------
def run_cli(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--database-url", url, *argv])


def test_cli_add_then_list(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, url: str,
                           department: str) -> None:
    assert run_cli(monkeypatch, url, "add", "zhang", "--role", "specialist", "--department", department,
                   "--name", "张三", "--password-stdin", stdin=PASSWORD + "\n") == 0
    assert "created zhang" in capsys.readouterr().out
    assert Accounts(url).login("zhang", PASSWORD)[0] == StaffMember("zhang", "张三", "specialist", department)

    assert run_cli(monkeypatch, url, "list") == 0
    assert capsys.readouterr().out.splitlines() == [f"zhang\t张三\tspecialist\t{department}\tactive"]

    assert run_cli(monkeypatch, url, "disable", "zhang") == 0
    capsys.readouterr()
    assert run_cli(monkeypatch, url, "list") == 0
    assert capsys.readouterr().out.strip().endswith("disabled")


def test_cli_add_with_a_bad_department_returns_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                 url: str) -> None:
    assert run_cli(monkeypatch, url, "add", "zhang", "--role", "specialist", "--department", "no_such_unit",
                   "--password-stdin", stdin=PASSWORD + "\n") == 2
    assert "error:" in capsys.readouterr().err
    assert Accounts(url).members() == []


@pytest.mark.parametrize("argv, message", [
    (["--role", "specialist", "--department", "no_such_unit"], "'no_such_unit' is not one"),
    (["--role", "specialist"], "a specialist needs --department"),
    (["--role", "supervisor", "--department", "no_such_unit"], "unknown department 'no_such_unit'"),
], ids=["unknown", "missing", "supervisor"])
def test_cli_add_checks_the_department_before_asking_for_the_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, url: str, argv: list[str],
        message: str) -> None:
    """`make staff DEPT=scjq` used to ask for the password twice, then refuse the typo."""
    def no_prompt(prompt: str = "") -> str:
        raise AssertionError(f"asked {prompt!r} before checking the department")

    monkeypatch.setattr(accounts_module.getpass, "getpass", no_prompt)
    assert run_cli(monkeypatch, url, "add", "zhang", *argv) == 2
    err = capsys.readouterr().err
    assert message in err
    listed = [line.split("\t") for line in err.splitlines() if line.startswith("  ")]
    assert listed == [[f"  {unit}", name] for unit, name in departments().items()]
    assert Accounts(url).members() == []


def test_cli_add_refuses_a_taken_name_before_asking_for_the_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, url: str, zhang: StaffMember,
        department: str) -> None:
    monkeypatch.setattr(accounts_module.getpass, "getpass", lambda prompt="": pytest.fail("password asked"))
    assert run_cli(monkeypatch, url, "add", "zhang", "--role", "specialist", "--department", department) == 2
    assert "zhang exists already" in capsys.readouterr().err


def test_cli_add_asks_for_the_password_twice_once_the_rest_is_valid(
        monkeypatch: pytest.MonkeyPatch, url: str, department: str) -> None:
    prompts: list[str] = []
    monkeypatch.setattr(accounts_module.getpass, "getpass", lambda prompt="": prompts.append(prompt) or PASSWORD)
    assert run_cli(monkeypatch, url, "add", "zhang", "--role", "specialist", "--department", department) == 0
    assert prompts == ["password: ", "again: "] and Accounts(url).login("zhang", PASSWORD) is not None


def test_cli_passwd_reads_stdin(monkeypatch: pytest.MonkeyPatch, url: str, zhang: StaffMember) -> None:
    assert run_cli(monkeypatch, url, "passwd", "zhang", "--password-stdin", stdin="a brand new password\n") == 0
    assert Accounts(url).login("zhang", "a brand new password") is not None
    assert run_cli(monkeypatch, url, "passwd", "nobody", "--password-stdin", stdin="a brand new password\n") == 2
