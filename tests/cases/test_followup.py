"""The follow-up of a 差评 case: 回访核实, 整改, 反馈 in the audit trail, and no solution without 反馈.

On SQLite and on PostgreSQL, as every repository test (the fixtures of test_repository.py).
"""

from __future__ import annotations

import pytest

from cases.repository import (FOLLOWUP_ACTIONS, FOLLOWUP_STEPS, LIMITS, CaseConflict, CaseNotFound, CaseRepository,
                              FollowupIncomplete, FollowupStep)
from tests.cases.test_repository import clock, open_case, repo, url  # noqa: F401 - fixtures


def claimed_bad_rating(repo: CaseRepository, conversation: str = "u1", actor: str = "zhang"):
    case = open_case(repo, conversation, reason="bad_rating")
    return repo.claim(case.id, actor)


def test_each_step_is_an_audit_row_and_the_latest_counts(repo: CaseRepository, clock: list[float]) -> None:
    case = claimed_bad_rating(repo)
    assert repo.followup(case.id) == {"verify": None, "rectify": None, "feedback": None}
    start = clock[0]
    clock[0] = start + 3600
    first = repo.record_followup(case.id, "zhang", "verify", "  电话联系企业：窗口要求重复提交材料  ")
    assert (first.action, first.detail, first.at, first.actor) == (
        "followup_verify", "电话联系企业：窗口要求重复提交材料", start + 3600, "zhang")
    clock[0] = start + 7200
    repo.record_followup(case.id, "zhang", "verify", "再次回访：企业补充了办理时间")
    clock[0] = start + 86400
    repo.record_followup(case.id, "zhang", "rectify", "窗口已改为一次告知")
    state = repo.followup(case.id)
    assert state == {"verify": FollowupStep("verify", start + 7200, "zhang", "再次回访：企业补充了办理时间", 2),
                     "rectify": FollowupStep("rectify", start + 86400, "zhang", "窗口已改为一次告知", 1),
                     "feedback": None}
    assert [(e.action, e.at) for e in repo.events(case.id)][2:] == [
        ("followup_verify", start + 3600), ("followup_verify", start + 7200), ("followup_rectify", start + 86400)]
    assert repo.get(case.id).updated_at == start + 86400
    assert repo.get(case.id).status == "claimed"  # a step moves no state


def test_the_step_names_and_their_actions() -> None:
    assert FOLLOWUP_STEPS == ("verify", "rectify", "feedback")
    assert [FOLLOWUP_ACTIONS[s] for s in FOLLOWUP_STEPS] == ["followup_verify", "followup_rectify",
                                                             "followup_feedback"]
    assert all(len(action) <= 20 for action in FOLLOWUP_ACTIONS.values())  # case_events.action is String(20)


def test_a_long_note_is_cut_to_the_limit(repo: CaseRepository) -> None:
    case = claimed_bad_rating(repo)
    repo.record_followup(case.id, "zhang", "rectify", "改" * (LIMITS["detail"] + 10))
    assert repo.followup(case.id)["rectify"].note == "改" * LIMITS["detail"]


@pytest.mark.parametrize("reason", ["user_request", "complaint", "misunderstood", "needs_person"])
def test_only_a_bad_rating_case_is_followed_up(repo: CaseRepository, reason: str) -> None:
    case = open_case(repo, reason=reason)
    repo.claim(case.id, "zhang")
    with pytest.raises(CaseConflict, match="no 差评 follow-up"):
        repo.record_followup(case.id, "zhang", "verify", "核实")
    assert [e.action for e in repo.events(case.id)] == ["opened", "claimed"]


def test_only_the_specialist_holding_the_claimed_case_records(repo: CaseRepository) -> None:
    case = open_case(repo, reason="bad_rating")
    with pytest.raises(CaseConflict, match="waiting"):
        repo.record_followup(case.id, "zhang", "verify", "未认领")
    repo.claim(case.id, "zhang")
    for other in ("wang", "boss"):
        with pytest.raises(CaseConflict, match="claimed by zhang"):
            repo.record_followup(case.id, other, "verify", "不是我的案件")
    repo.release(case.id, "zhang")
    repo.claim(case.id, "wang")
    with pytest.raises(CaseConflict):
        repo.record_followup(case.id, "zhang", "verify", "已被他人接手")
    repo.record_followup(case.id, "wang", "verify", "王五回访")
    repo.resolve(case.id, "wang", "handed_back")
    with pytest.raises(CaseConflict, match="resolved"):
        repo.record_followup(case.id, "wang", "rectify", "已办结")
    assert [e.actor for e in repo.events(case.id) if e.action.startswith("followup_")] == ["wang"]


@pytest.mark.parametrize("step, note", [("call", "核实"), ("", "核实"), ("verify", ""), ("verify", "  \n ")])
def test_an_unknown_step_or_an_empty_note_is_refused(repo: CaseRepository, step: str, note: str) -> None:
    case = claimed_bad_rating(repo)
    with pytest.raises(ValueError):
        repo.record_followup(case.id, "zhang", step, note)
    assert repo.followup(case.id) == dict.fromkeys(FOLLOWUP_STEPS)


@pytest.mark.parametrize("case_id", [999, 12345678901234567890123, 2 ** 31, 0])
def test_an_unknown_case_has_no_follow_up(repo: CaseRepository, case_id: int) -> None:
    claimed_bad_rating(repo)
    with pytest.raises(CaseNotFound):
        repo.record_followup(case_id, "zhang", "verify", "核实")
    assert repo.followup(case_id) == dict.fromkeys(FOLLOWUP_STEPS)


def test_a_bad_rating_case_is_solved_only_after_its_feedback(repo: CaseRepository) -> None:
    case = claimed_bad_rating(repo)
    with pytest.raises(FollowupIncomplete):
        repo.resolve(case.id, "zhang", "solved", assignee="zhang")
    repo.record_followup(case.id, "zhang", "verify", "已回访")
    repo.record_followup(case.id, "zhang", "rectify", "已整改")
    with pytest.raises(FollowupIncomplete):  # 回访 and 整改 are not a reply to the business
        repo.resolve(case.id, "zhang", "solved")
    assert repo.get(case.id).status == "claimed"
    assert "resolved" not in [e.action for e in repo.events(case.id)]
    repo.record_followup(case.id, "zhang", "feedback", "已整改，欢迎再来办理")
    done = repo.resolve(case.id, "zhang", "solved", assignee="zhang")
    assert (done.status, done.outcome) == ("resolved", "solved")
    assert [e.action for e in repo.events(case.id)][-2:] == ["followup_feedback", "resolved"]


def test_feedback_alone_is_enough_and_a_hand_back_needs_none(repo: CaseRepository) -> None:
    replied = claimed_bad_rating(repo, "u1")
    repo.record_followup(replied.id, "zhang", "feedback", "已答复企业")
    assert repo.resolve(replied.id, "zhang", "solved").outcome == "solved"
    given_up = claimed_bad_rating(repo, "u2")
    assert repo.resolve(given_up.id, "zhang", "handed_back").outcome == "handed_back"
    waiting = open_case(repo, "u3", reason="bad_rating")
    assert repo.resolve(waiting.id, "user", "handed_back").outcome == "handed_back"


def test_other_reasons_are_solved_without_a_follow_up(repo: CaseRepository) -> None:
    case = open_case(repo, reason="complaint")
    repo.claim(case.id, "zhang")
    assert repo.resolve(case.id, "zhang", "solved").outcome == "solved"


def test_the_feedback_of_another_case_does_not_count(repo: CaseRepository) -> None:
    replied = claimed_bad_rating(repo, "u1")
    repo.record_followup(replied.id, "zhang", "feedback", "已答复")
    other = claimed_bad_rating(repo, "u2")
    with pytest.raises(FollowupIncomplete):
        repo.resolve(other.id, "zhang", "solved")


def test_a_stale_view_is_a_plain_conflict_not_a_missing_feedback(repo: CaseRepository) -> None:
    """zhang resolves a case wang has claimed since: the case moved, whatever its follow-up."""
    case = claimed_bad_rating(repo)
    repo.release(case.id, "boss")
    repo.claim(case.id, "wang")
    with pytest.raises(CaseConflict) as refused:
        repo.resolve(case.id, "zhang", "solved", assignee="zhang")
    assert not isinstance(refused.value, FollowupIncomplete)
    with pytest.raises(FollowupIncomplete):
        repo.resolve(case.id, "wang", "solved", assignee="wang")
