"""A flood cleaned up: the open cases of one client counted per queue page, and handed back at
once (cases/repository.py `open_counts_of_clients`, `close_client_cases`), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cases.repository import BULK_CLOSED, BULK_CLOSED_DETAIL, CaseRepository


@pytest.fixture
def repo(database_url: str) -> CaseRepository:
    return CaseRepository(database_url)  # each test runs on SQLite and on PostgreSQL (tests/conftest.py)


def opened(repo: CaseRepository, conversation: str, client: str | None, department: str = "scjg") -> int:
    case, new = repo.open(conversation, "rest", "user_request", department, problem="刷屏", client=client)
    assert new
    return case.id


def test_open_cases_are_counted_per_client_in_one_query(repo: CaseRepository) -> None:
    flood = [opened(repo, f"f-{n}", "flooder", "scjg" if n < 3 else "shuiwu") for n in range(5)]
    opened(repo, "other", "someone")
    opened(repo, "anonymous", None)
    repo.resolve(flood[0], "boss", "handed_back")  # resolved: no longer counted
    assert repo.open_counts_of_clients(["flooder", "someone", "nobody"]) == {"flooder": 4, "someone": 1}
    assert repo.open_counts_of_clients(["flooder"], departments=["scjg"]) == {"flooder": 2}
    assert repo.open_counts_of_clients(["flooder"], departments=["fagai"]) == {}
    assert repo.open_counts_of_clients([]) == {}


def test_close_client_cases_hands_back_only_that_clients_open_cases(repo: CaseRepository) -> None:
    waiting = [opened(repo, f"f-{n}", "flooder", "scjg" if n % 2 else "shuiwu") for n in range(4)]
    claimed = repo.claim(waiting[1], "zhang").id
    done_before = waiting[3]
    repo.resolve(done_before, "zhang", "handed_back")
    other = opened(repo, "other", "someone")
    anonymous = opened(repo, "anonymous", None)

    closed = repo.close_client_cases("flooder", "boss")

    assert sorted(c.id for c in closed) == sorted([waiting[0], claimed, waiting[2]])
    for case in closed:
        assert (case.status, case.outcome, case.client) == ("resolved", "handed_back", "flooder")
        assert case.resolved_at is not None
        last = repo.events(case.id)[-1]
        assert (last.action, last.actor, last.detail) == (BULK_CLOSED, "boss", BULK_CLOSED_DETAIL)
    # resolved before: untouched, no bulk event
    assert [e.action for e in repo.events(done_before)] == ["opened", "handed_back"]
    for untouched in (other, anonymous):
        assert repo.get(untouched).status == "waiting" and repo.events(untouched, BULK_CLOSED) == []
    assert repo.open_counts_of_clients(["flooder", "someone"]) == {"someone": 1}
    assert repo.close_client_cases("flooder", "boss") == []  # nothing left: nothing closed, no error


def test_a_case_resolved_meanwhile_is_skipped_not_an_error(repo: CaseRepository) -> None:
    ids = [opened(repo, f"f-{n}", "flooder") for n in range(3)]
    seen = repo.open_of_client("flooder")
    assert [c.id for c in seen] == ids
    repo.resolve(ids[1], "zhang", "handed_back")  # between the console's look and its close
    closed = repo.close_client_cases("flooder", "boss", [c.id for c in seen])
    assert [c.id for c in closed] == [ids[0], ids[2]]
    assert [e.action for e in repo.events(ids[1])] == ["opened", "handed_back"]


def test_only_the_listed_cases_are_closed(repo: CaseRepository) -> None:
    ids = [opened(repo, f"f-{n}", "flooder") for n in range(3)]
    someone = opened(repo, "other", "someone")
    # the console lists only those it could resume; another client's id is never closed this way
    closed = repo.close_client_cases("flooder", "boss", [ids[0], ids[2], someone])
    assert [c.id for c in closed] == [ids[0], ids[2]]
    assert repo.get(ids[1]).status == "waiting" and repo.get(someone).status == "waiting"
    assert repo.close_client_cases("flooder", "boss", []) == []
    assert repo.get(ids[1]).status == "waiting"


def test_no_client_is_refused(repo: CaseRepository) -> None:
    opened(repo, "anonymous", None)
    with pytest.raises(ValueError):
        repo.close_client_cases("", "boss")
    assert repo.open_of_client("") == []
