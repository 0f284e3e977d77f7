"""Handoff cases in SQL: migrations, the waiting → claimed → resolved life, audit trail, queue, rating."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from cases import repository as repository_module
from cases import schema
from cases.repository import LIMITS, RATING_LEVELS, CaseConflict, CaseNotFound, CaseRepository


@pytest.fixture
def url(database_url: str) -> str:
    return database_url  # each test runs on SQLite and on PostgreSQL (tests/conftest.py)


@pytest.fixture
def repo(url: str) -> CaseRepository:
    return CaseRepository(url)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The repository's time.time(), moved by hand: clock[0] += 60."""
    now = [1_700_000_000.0]
    monkeypatch.setattr(repository_module, "time", SimpleNamespace(time=lambda: now[0]))
    return now


def open_case(repo: CaseRepository, conversation: str = "u1", department: str = "shuiwu", **fields):
    case, new = repo.open(conversation, "socketio", fields.pop("reason", "user_request"), department, **fields)
    assert new
    return case


# migrations ------------------------------------------------------------------------------
ALL = [version for version, _, _ in schema.MIGRATIONS]


def test_migrate_applies_every_version_once(url: str) -> None:
    engine = schema.engine_for(url)
    assert schema.applied(engine) == []
    assert schema.migrate(engine) == ALL == [1, 2, 3, 4]
    assert schema.applied(engine) == ALL
    assert schema.migrate(engine) == []
    assert schema.applied(engine) == ALL
    tables = set(sa.inspect(engine).get_table_names())
    assert {"schema_migrations", "cases", "case_events", "staff", "staff_sessions"} <= tables


def test_engine_for_creates_the_folder_of_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/er/cases.db"
    CaseRepository(url)
    assert (tmp_path / "deep" / "er" / "cases.db").exists()


def test_two_repositories_on_the_same_file_both_work(url: str) -> None:
    first, second = CaseRepository(url), CaseRepository(url)
    case = open_case(first, "u1")
    assert second.get(case.id) == case
    assert second.open("u1", "socketio", "user_request", "shuiwu") == (case, False)
    assert schema.applied(first.engine) == ALL


def test_concurrent_starts_on_a_fresh_file(url: str) -> None:
    repos: list[CaseRepository] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            repos.append(CaseRepository(url))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(repos) == 4
    cases = [open_case(repo, f"u{n}") for n, repo in enumerate(repos)]
    assert len({case.id for case in cases}) == 4
    assert schema.applied(repos[0].engine) == ALL


def test_a_migration_interrupted_part_way_can_be_applied_again(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed (or a disk full) in the middle of a migration must not leave the
    database in a state no later start can migrate."""
    engine = schema.engine_for(url)

    def interrupted(db) -> None:
        schema.cases.create(db)
        raise sa.exc.OperationalError("CREATE TABLE case_events", {}, Exception("disk I/O error"))

    monkeypatch.setattr(schema, "MIGRATIONS", [(1, "interrupted", interrupted)])
    with pytest.raises(sa.exc.OperationalError):
        schema.migrate(engine, attempts=1)
    monkeypatch.undo()
    try:
        applied = schema.migrate(engine, attempts=1)
    except sa.exc.OperationalError as error:
        pytest.fail("BUG: on SQLite the DDL of a failed migration is not rolled back (pysqlite runs CREATE TABLE "
                    f"outside the transaction), so every later migrate() fails: {error.orig}")
    assert applied == ALL


def test_a_version_one_database_is_upgraded_to_one_open_case_per_conversation(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = schema.engine_for(url)
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    assert schema.migrate(engine) == [1]
    monkeypatch.undo()
    assert "one_open_case_per_conversation" not in {i["name"] for i in sa.inspect(engine).get_indexes("cases")}
    repository = CaseRepository(url)  # a start with the new code applies migration 2
    assert schema.applied(engine) == ALL
    first, _ = repository.open("u1", "socketio", "user_request", "scjg")
    row = {key: value for key, value in first.as_dict().items() if key != "id"}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as db:  # a second open one, bypassing open()
        db.execute(schema.cases.insert().values(**row))
    repository.resolve(first.id, "zhang", "handed_back")
    with engine.begin() as db:  # resolved cases do not count
        db.execute(schema.cases.insert().values(**{**row, "status": "resolved"}))
    assert repository.open("u1", "socketio", "user_request", "scjg")[1] is True


def test_a_lost_race_to_open_returns_the_winners_case(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes open a case for one conversation at once: both get the same case."""
    repository = CaseRepository(url)
    winner, _ = repository.open("u1", "socketio", "user_request", "scjg")
    seen = iter([None])  # the loser looked before the winner inserted
    original = repository.open_case_of
    monkeypatch.setattr(repository, "open_case_of", lambda c: next(seen, None) or original(c))
    assert repository.open("u1", "wechat", "complaint", "shuiwu") == (winner, False)


# opening ---------------------------------------------------------------------------------
def test_open_returns_the_open_case_until_it_is_resolved(repo: CaseRepository) -> None:
    case, new = repo.open("u1", "wechat", "complaint", "shuiwu", "tax", contact="13812345678", company="某公司",
                          problem="发票开不出来")
    assert new is True
    assert (case.conversation_id, case.channel, case.reason, case.topic, case.department) == \
        ("u1", "wechat", "complaint", "tax", "shuiwu")
    assert (case.status, case.assignee, case.outcome, case.rating) == ("waiting", None, None, None)
    assert (case.contact, case.company, case.problem) == ("13812345678", "某公司", "发票开不出来")
    assert case.is_open and case.created_at == case.queued_at
    assert repo.open_case_of("u1") == case

    again, new = repo.open("u1", "wechat", "user_request", "scjg")
    assert (again, new) == (case, False)
    repo.claim(case.id, "zhang")
    assert repo.open("u1", "wechat", "user_request", "scjg") == (repo.get(case.id), False)

    repo.resolve(case.id, "zhang")
    assert repo.open_case_of("u1") is None
    later, new = repo.open("u1", "wechat", "user_request", "scjg")
    assert new is True and later.id != case.id and later.department == "scjg"


def test_open_cases_are_per_conversation(repo: CaseRepository) -> None:
    one, two = open_case(repo, "u1"), open_case(repo, "u2")
    assert one.id != two.id
    assert repo.open_case_of("u1").id == one.id and repo.open_case_of("u2").id == two.id
    assert repo.open_case_of("u3") is None


@pytest.mark.parametrize("conversation, reason, department", [
    ("u1", "because", "shuiwu"),
    ("u1", "", "shuiwu"),
    ("u1", "user_request", ""),
    ("", "user_request", "shuiwu"),
])
def test_open_rejects_a_bad_reason_or_a_missing_department(repo: CaseRepository, conversation: str, reason: str,
                                                           department: str) -> None:
    with pytest.raises(ValueError):
        repo.open(conversation, "socketio", reason, department)
    assert repo.queue(statuses=("waiting", "claimed", "resolved")) == []


def test_a_conversation_id_too_long_to_store_is_refused_before_anything_is_written(repo: CaseRepository) -> None:
    """It used to be cut to 200 characters on INSERT: no later call found the case by the full id,
    so `/restart` could not close it and the next handoff hit the one-open-case index."""
    longest, too_long = "w" * schema.CONVERSATION_ID_CHARS, "w" * (schema.CONVERSATION_ID_CHARS + 1)
    with pytest.raises(ValueError, match="longer than 200"):
        repo.open(too_long, "socketio", "user_request", "shuiwu")
    with pytest.raises(ValueError):
        repo.open(too_long, "socketio", "user_request", "shuiwu")  # the same answer again, not an IntegrityError
    assert repo.queue(statuses=("waiting", "claimed", "resolved")) == [] and repo.open_case_of(too_long) is None
    case = open_case(repo, longest)
    assert case.conversation_id == longest and repo.open_case_of(longest) == case
    assert repo.open(longest, "socketio", "user_request", "shuiwu") == (case, False)
    assert repo.resolve(case.id, "user", "handed_back").status == "resolved"  # what /restart does
    assert repo.open_case_of(longest) is None


def test_open_without_a_channel_or_topic(repo: CaseRepository) -> None:
    case, _ = repo.open("u1", "", "user_request", "shuiwu", topic="")
    assert case.channel == "unknown" and case.topic is None


@pytest.mark.parametrize("field", ["contact", "company", "problem"])
def test_long_fields_are_cut_to_the_limits(repo: CaseRepository, field: str) -> None:
    case = open_case(repo, **{field: "  " + "长" * (LIMITS[field] + 50) + "  "})
    assert getattr(case, field) == "长" * LIMITS[field]


def test_html_is_stored_verbatim(repo: CaseRepository) -> None:
    html = "<script>alert('x')</script> & <b>粗</b>"
    case = open_case(repo, contact=html[:40], company=html, problem=html)
    stored = repo.get(case.id)
    assert (stored.contact, stored.company, stored.problem) == (html[:40], html, html)
    event = repo.note(case.id, "zhang", html)
    assert event.detail == html and repo.events(case.id, "note")[0].detail == html


# transitions -----------------------------------------------------------------------------
def test_claim_then_a_second_claim_conflicts(repo: CaseRepository, clock: list[float]) -> None:
    case = open_case(repo)
    clock[0] += 30
    claimed = repo.claim(case.id, "zhang")
    assert (claimed.status, claimed.assignee, claimed.claimed_at) == ("claimed", "zhang", clock[0])
    assert claimed.updated_at == clock[0]
    with pytest.raises(CaseConflict):
        repo.claim(case.id, "li")
    assert repo.get(case.id).assignee == "zhang"


def test_release_puts_the_case_back_in_the_queue(repo: CaseRepository, clock: list[float]) -> None:
    case = open_case(repo)
    clock[0] += 30
    repo.claim(case.id, "zhang")
    clock[0] += 60
    released = repo.release(case.id, "zhang")
    assert (released.status, released.assignee) == ("waiting", None)
    assert released.queued_at == clock[0] > case.queued_at
    with pytest.raises(CaseConflict):
        repo.release(case.id, "zhang")  # waiting: nothing to release


@pytest.mark.parametrize("claimed_first", [False, True])
def test_reassign_moves_the_case_to_another_queue(repo: CaseRepository, clock: list[float],
                                                  claimed_first: bool) -> None:
    case = open_case(repo, department="shuiwu")
    if claimed_first:
        repo.claim(case.id, "zhang")
    clock[0] += 60
    moved = repo.reassign(case.id, "boss", "scjg")
    assert (moved.department, moved.status, moved.assignee, moved.queued_at) == ("scjg", "waiting", None, clock[0])
    assert repo.events(case.id, "reassigned")[0].detail == "scjg"


def test_reassign_needs_a_department(repo: CaseRepository) -> None:
    case = open_case(repo)
    with pytest.raises(ValueError):
        repo.reassign(case.id, "boss", "")
    assert repo.get(case.id).department == "shuiwu"


def test_resolve_solved_only_from_claimed(repo: CaseRepository) -> None:
    case = open_case(repo)
    with pytest.raises(CaseConflict):
        repo.resolve(case.id, "zhang", "solved")
    assert repo.get(case.id).status == "waiting"
    repo.claim(case.id, "zhang")
    done = repo.resolve(case.id, "zhang", "solved")
    assert (done.status, done.outcome, done.is_open) == ("resolved", "solved", False)
    assert done.resolved_at is not None


@pytest.mark.parametrize("claimed_first", [False, True])
def test_resolve_handed_back_from_waiting_or_claimed(repo: CaseRepository, claimed_first: bool) -> None:
    case = open_case(repo)
    if claimed_first:
        repo.claim(case.id, "zhang")
    done = repo.resolve(case.id, "boss", "handed_back")
    assert (done.status, done.outcome) == ("resolved", "handed_back")
    assert repo.events(case.id)[-1].action == "handed_back"


def test_resolve_rejects_an_unknown_outcome(repo: CaseRepository) -> None:
    case = open_case(repo)
    repo.claim(case.id, "zhang")
    with pytest.raises(ValueError):
        repo.resolve(case.id, "zhang", "closed")
    assert repo.get(case.id).status == "claimed"


@pytest.mark.parametrize("act", [
    lambda repo, case_id: repo.claim(case_id, "li"),
    lambda repo, case_id: repo.release(case_id, "zhang"),
    lambda repo, case_id: repo.reassign(case_id, "boss", "scjg"),
    lambda repo, case_id: repo.resolve(case_id, "zhang", "solved"),
    lambda repo, case_id: repo.resolve(case_id, "zhang", "handed_back"),
], ids=["claim", "release", "reassign", "resolve", "hand_back"])
def test_nothing_moves_a_resolved_case(repo: CaseRepository, act) -> None:
    case = open_case(repo)
    repo.claim(case.id, "zhang")
    resolved = repo.resolve(case.id, "zhang")
    with pytest.raises(CaseConflict):
        act(repo, case.id)
    assert repo.get(case.id) == resolved


# 23 digits (from a URL: SQLite raised OverflowError, a 500), one past a 32-bit INTEGER, zero
@pytest.mark.parametrize("case_id", [999, 12345678901234567890123, 2 ** 31, 0, -1])
@pytest.mark.parametrize("act", [
    lambda repo, case_id: repo.get(case_id),
    lambda repo, case_id: repo.claim(case_id, "zhang"),
    lambda repo, case_id: repo.release(case_id, "zhang"),
    lambda repo, case_id: repo.reassign(case_id, "boss", "scjg"),
    lambda repo, case_id: repo.resolve(case_id, "zhang", "handed_back"),
    lambda repo, case_id: repo.note(case_id, "zhang", "备注"),
    lambda repo, case_id: repo.record(case_id, "zhang", "replied", "你好"),
], ids=["get", "claim", "release", "reassign", "resolve", "note", "record"])
def test_an_unknown_case_is_not_found(repo: CaseRepository, act, case_id: int) -> None:
    open_case(repo)
    with pytest.raises(CaseNotFound):
        act(repo, case_id)
    assert repo.events(case_id) == []


# audit trail -----------------------------------------------------------------------------
def test_the_audit_trail_lists_every_action_with_its_actor_in_order(repo: CaseRepository) -> None:
    case = open_case(repo, reason="complaint")
    repo.claim(case.id, "zhang")
    repo.note(case.id, "zhang", "  已电话联系  ")
    repo.release(case.id, "zhang")
    repo.reassign(case.id, "boss", "scjg")
    repo.claim(case.id, "li")
    repo.record(case.id, "li", "replied", "您好，我是专员")
    repo.resolve(case.id, "li")
    trail = [(e.action, e.actor, e.detail) for e in repo.events(case.id)]
    assert trail == [
        ("opened", "assistant", "complaint"),
        ("claimed", "zhang", ""),
        ("note", "zhang", "已电话联系"),
        ("released", "zhang", ""),
        ("reassigned", "boss", "scjg"),
        ("claimed", "li", ""),
        ("replied", "li", "您好，我是专员"),
        ("resolved", "li", ""),
    ]
    assert [e.actor for e in repo.events(case.id, "claimed")] == ["zhang", "li"]
    assert all(e.case_id == case.id for e in repo.events(case.id))


def test_a_failed_transition_leaves_no_trace(repo: CaseRepository) -> None:
    case = open_case(repo)
    repo.claim(case.id, "zhang")
    with pytest.raises(CaseConflict):
        repo.claim(case.id, "li")
    assert [e.action for e in repo.events(case.id)] == ["opened", "claimed"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_note_is_refused(repo: CaseRepository, text: str) -> None:
    case = open_case(repo)
    with pytest.raises(ValueError):
        repo.note(case.id, "zhang", text)
    assert repo.events(case.id, "note") == []


def test_record_marks_and_clears_unreachable(repo: CaseRepository, clock: list[float]) -> None:
    case = open_case(repo)
    clock[0] += 10
    event = repo.record(case.id, "zhang", "reply_failed", "45015 超过 48 小时", unreachable=True)
    assert (event.action, event.actor, event.at) == ("reply_failed", "zhang", clock[0])
    assert repo.get(case.id).unreachable_at == clock[0]
    clock[0] += 10
    repo.record(case.id, "zhang", "note", "只是备注")  # unreachable=None: unchanged
    assert repo.get(case.id).unreachable_at == clock[0] - 10
    repo.record(case.id, "zhang", "replied", "你好", unreachable=False)
    assert repo.get(case.id).unreachable_at is None
    assert repo.get(case.id).updated_at == clock[0]


# the queue -------------------------------------------------------------------------------
def test_queue_waiting_first_then_longest_waiting(repo: CaseRepository, clock: list[float]) -> None:
    ids = {}
    for name, department in [("a", "shuiwu"), ("b", "scjg"), ("c", "shuiwu"), ("d", "shuiwu"), ("e", "scjg")]:
        ids[name] = open_case(repo, name, department).id
        clock[0] += 60
    repo.claim(ids["a"], "zhang")  # oldest, but claimed: after every waiting case
    repo.claim(ids["c"], "zhang")
    repo.claim(ids["d"], "li")
    repo.release(ids["d"], "li")  # back in the queue now: behind b and e
    repo.claim(ids["e"], "li")
    repo.resolve(ids["e"], "li")

    assert [c.conversation_id for c in repo.queue()] == ["b", "d", "a", "c"]
    assert [c.conversation_id for c in repo.queue(departments=["shuiwu"])] == ["d", "a", "c"]
    assert [c.conversation_id for c in repo.queue(departments=["scjg"])] == ["b"]
    assert repo.queue(departments=[]) == []
    assert [c.conversation_id for c in repo.queue(statuses=["waiting"])] == ["b", "d"]
    assert [c.conversation_id for c in repo.queue(statuses=["resolved"])] == ["e"]
    assert [c.conversation_id for c in repo.queue(statuses=["bogus"])] == []
    assert len(repo.queue(limit=2)) == 2


# rating ----------------------------------------------------------------------------------
def _resolved(repo: CaseRepository, conversation: str = "u1"):
    case = open_case(repo, conversation)
    repo.claim(case.id, "zhang")
    return repo.resolve(case.id, "zhang")


def test_rate_a_resolved_case_once_from_its_own_conversation(repo: CaseRepository) -> None:
    case = _resolved(repo)
    with pytest.raises(CaseConflict):
        repo.rate(case.id, "someone-else", "非常满意")
    rated = repo.rate(case.id, "u1", "满意")
    assert rated.rating == "满意"
    with pytest.raises(CaseConflict):
        repo.rate(case.id, "u1", "非常不满意")
    assert repo.get(case.id).rating == "满意"
    assert [(e.actor, e.action, e.detail) for e in repo.events(case.id, "rated")] == [("user", "rated", "满意")]


@pytest.mark.parametrize("claimed", [False, True])
def test_an_open_case_cannot_be_rated(repo: CaseRepository, claimed: bool) -> None:
    case = open_case(repo)
    if claimed:
        repo.claim(case.id, "zhang")
    with pytest.raises(CaseConflict):
        repo.rate(case.id, "u1", "满意")
    assert repo.get(case.id).rating is None


@pytest.mark.parametrize("level", ["", "好", "very good", "满意 ", None])
def test_rate_refuses_a_level_outside_the_five(repo: CaseRepository, level) -> None:
    case = _resolved(repo)
    with pytest.raises(ValueError):
        repo.rate(case.id, "u1", level)
    assert repo.get(case.id).rating is None


@pytest.mark.parametrize("case_id", [999, 12345678901234567890123])
def test_rate_an_unknown_case_conflicts(repo: CaseRepository, case_id: int) -> None:
    with pytest.raises(CaseConflict):  # one answer for "no such case" and "not yours": nothing to probe
        repo.rate(case_id, "u1", RATING_LEVELS[0])


def test_last_resolved_of_a_conversation(repo: CaseRepository, clock: list[float]) -> None:
    assert repo.last_resolved_of("u1") is None
    first = _resolved(repo)
    clock[0] += 60
    second = _resolved(repo)
    open_case(repo, "u1")  # open ones do not count
    assert repo.last_resolved_of("u1").id == second.id != first.id
    assert repo.last_resolved_of("u2") is None


# restart ---------------------------------------------------------------------------------
def test_a_case_survives_a_restart(url: str) -> None:
    before = CaseRepository(url)
    case = open_case(before, "u1", contact="13812345678", problem="开餐馆")
    before.claim(case.id, "zhang")
    before.engine.dispose()
    after = CaseRepository(url)
    assert after.get(case.id) == before.get(case.id)
    assert after.open_case_of("u1").assignee == "zhang"
    assert [e.action for e in after.events(case.id)] == ["opened", "claimed"]
    assert schema.applied(after.engine) == ALL


def test_of_eight_specialists_claiming_at_once_exactly_one_wins(url: str) -> None:
    repositories = [CaseRepository(url) for _ in range(8)]  # as if eight console processes
    case = open_case(repositories[0], "race-1")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            repositories[n].claim(case.id, f"staff{n}")
            outcomes.append(f"staff{n}")
        except CaseConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "conflict"]
    assert len(outcomes) == 8 and len(winners) == 1
    assert repositories[0].get(case.id).assignee == winners[0]
    assert [e.action for e in repositories[0].events(case.id)].count("claimed") == 1


def test_an_owner_move_on_a_stale_view_is_refused(url: str) -> None:
    """zhang saw the case as his; meanwhile it was released and claimed by wang."""
    repository = CaseRepository(url)
    case = open_case(repository, "stale-1")
    repository.claim(case.id, "zhang")
    repository.release(case.id, "boss")
    repository.claim(case.id, "wang")
    with pytest.raises(CaseConflict):
        repository.resolve(case.id, "zhang", "solved", assignee="zhang")
    with pytest.raises(CaseConflict):
        repository.release(case.id, "zhang", assignee="zhang")
    assert repository.get(case.id).assignee == "wang"
    assert repository.resolve(case.id, "wang", "solved", assignee="wang").status == "resolved"
