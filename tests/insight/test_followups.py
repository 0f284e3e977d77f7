"""The 差评 follow-up tables (`followups`, `followup_cases`) on a scripted week of 差评 cases.

A week from Monday 2 March 2026 in Yuzhong (UTC+8), written through the cases' repository and
the channels' store at the times things happened, on SQLite and on PostgreSQL: 差评 of answers
and of resolved cases, follow-up cases that are waiting, claimed, solved after their 反馈, handed
back without one, a step recorded twice, a step just after midnight. The expected rows are
worked out by hand below.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple
from datetime import date
from types import SimpleNamespace

import pytest

from cases import repository as repository_module
from cases.repository import CaseRepository
from channels import store as store_module
from channels.store import ChannelStore
from insight import tables
from insight.sources import Filters, Sources
from scripts import insight as script
from tests.insight.day import at

MON, TUE, WED, THU, FRI, SAT = (date(2026, 3, d) for d in range(2, 8))


def week(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The week's cases and ratings; the case ids by letter."""
    now = [0.0]
    clock = SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(repository_module, "time", clock)
    monkeypatch.setattr(store_module, "time", clock)
    cases, store = CaseRepository(url), ChannelStore(url)

    def when(hour: int, minute: int = 0, day: date = MON) -> None:
        now[0] = at(hour, minute, day=day)

    ids = {}

    def bad_rating(letter: str, conversation: str, channel: str, department: str, day: date, hour: int,
                   minute: int = 0) -> int:
        when(hour, minute, day)
        ids[letter] = cases.open(conversation, channel, "bad_rating", department)[0].id
        return ids[letter]

    # A, scjg: a widget 差评, every step, solved after the 反馈: 0.25, 2 and 3.5 days
    when(8, 55)
    store.rate("s-a", "socketio", "非常不满意", "等太久", "company_opening", "scjg", "答复甲")
    a = bad_rating("A", "s-a", "socketio", "scjg", MON, 9)
    when(9, 30)
    cases.claim(a, "zhang")
    when(15)
    cases.record_followup(a, "zhang", "verify", "电话回访：窗口要求重复提交材料")
    when(9, day=WED)
    cases.record_followup(a, "zhang", "rectify", "窗口改为一次性告知")
    when(21, day=THU)
    cases.record_followup(a, "zhang", "feedback", "已整改，感谢监督")
    when(21, 30, THU)
    cases.resolve(a, "zhang")

    # H then F, shuiwu: a resolved WeCom case rated 非常不满意 opens F at 23:30; F's 回访 is at
    # 00:30 the next day in Yuzhong (16:30 UTC the same day): 1 hour, 0.5 and 1 day, solved
    when(20)
    h = cases.open("wc-f", "wecom", "user_request", "shuiwu")[0].id
    when(20, 10)
    cases.claim(h, "li")
    when(23)
    cases.resolve(h, "li")
    when(23, 5)
    cases.rate(h, "wc-f", "非常不满意")
    f = bad_rating("F", "wc-f", "wecom", "shuiwu", MON, 23, 30)
    when(23, 40)
    cases.claim(f, "li")
    when(0, 30, TUE)
    cases.record_followup(f, "li", "verify", "回访：退税进度未告知")
    when(11, 30, TUE)
    cases.record_followup(f, "li", "rectify", "增加进度短信提醒")
    when(23, 30, TUE)
    cases.record_followup(f, "li", "feedback", "已增加进度提醒")
    when(0, 10, WED)
    cases.resolve(f, "li")

    # E then B, scjg: a WeChat case rated 不满意 opens B; its 回访 recorded twice (0.5, then 1 day)
    when(8, day=TUE)
    e = cases.open("wx-b", "wechat", "user_request", "scjg")[0].id
    when(8, 10, TUE)
    cases.claim(e, "zhang")
    when(9, day=TUE)
    cases.resolve(e, "zhang")
    when(9, 5, TUE)
    cases.rate(e, "wx-b", "不满意")
    b = bad_rating("B", "wx-b", "wechat", "scjg", TUE, 10)
    when(10, 10, TUE)
    cases.claim(b, "zhang")
    when(22, day=TUE)
    cases.record_followup(b, "zhang", "verify", "第一次回访：企业未接电话")
    when(10, day=WED)
    cases.record_followup(b, "zhang", "verify", "第二次回访：核实为材料清单过期")

    # a 差评 of fagai whose follow-up the user cancelled (no case), and a good rating of scjg
    when(12, day=TUE)
    store.rate("s-x", "socketio", "非常不满意", "", "", "fagai", "答复乙")
    when(13, day=TUE)
    store.rate("s-y", "socketio", "满意", "", "company_opening", "scjg", "答复丙")

    # C, scjg: never claimed; D, scjg: 回访 after 0.5 days, then handed back without a 反馈
    when(7, 55, WED)
    store.rate("s-c", "socketio", "不满意", "", "company_opening", "scjg", "答复丁")
    bad_rating("C", "s-c", "socketio", "scjg", WED, 8)
    when(8, 55, WED)
    store.rate("s-d", "socketio", "不满意", "", "company_opening", "scjg", "答复戊")
    d = bad_rating("D", "s-d", "socketio", "scjg", WED, 9)
    when(9, 5, WED)
    cases.claim(d, "wang")
    when(21, day=WED)
    cases.record_followup(d, "wang", "verify", "回访：企业不再需要办理")
    when(9, day=THU)
    cases.resolve(d, "wang", "handed_back")

    # G, shuiwu: 0.25, 1 and 2 days, solved
    when(9, 55, FRI)
    store.rate("s-g", "socketio", "不满意", "", "tax", "shuiwu", "答复己")
    g = bad_rating("G", "s-g", "socketio", "shuiwu", FRI, 10)
    when(10, 5, FRI)
    cases.claim(g, "li")
    when(16, day=FRI)
    cases.record_followup(g, "li", "verify", "回访")
    when(10, day=SAT)
    cases.record_followup(g, "li", "rectify", "整改")
    when(10, day=date(2026, 3, 8))
    cases.record_followup(g, "li", "feedback", "反馈")
    when(10, 5, date(2026, 3, 8))
    cases.resolve(g, "li")
    return ids


@pytest.fixture
def sources(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Sources:
    ids = week(database_url, monkeypatch)
    assert ids == {"A": 1, "F": 3, "B": 5, "C": 6, "D": 7, "G": 8}  # H is 2, E is 4
    return Sources.of(database_url)


# department, 差评, follow-up cases, waiting, claimed, solved, handed back, with 回访核实 / 整改 / 反馈,
# closed with a reply, median days from the case's opening to each step's latest record
FAGAI = ("fagai", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None)
# 回访 of A, B (its second), D: 0.25, 1.0, 0.5 days
SCJG = ("scjg", 4, 4, 1, 1, 1, 1, 3, 1, 1, 1, 0.5, 2.0, 3.5)
# 回访 of F and G: 1/24 and 0.25 days → 0.1458; 整改 0.5 and 1; 反馈 1 and 2
SHUIWU = ("shuiwu", 2, 2, 0, 0, 2, 0, 2, 2, 2, 2, 0.15, 0.75, 1.5)
CASES = [(1, "scjg", "2026-03-02", "2026-03-02", "2026-03-04", "2026-03-05", "2026-03-05"),
         (3, "shuiwu", "2026-03-02", "2026-03-03", "2026-03-03", "2026-03-03", "2026-03-04"),
         (5, "scjg", "2026-03-03", "2026-03-04", None, None, None),
         (6, "scjg", "2026-03-04", None, None, None, None),
         (7, "scjg", "2026-03-04", "2026-03-04", None, None, "2026-03-05"),
         (8, "shuiwu", "2026-03-06", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-08")]


def rows(found: list) -> list[tuple]:
    return [astuple(row) for row in found]


def test_the_follow_ups_of_the_week(sources: Sources) -> None:
    assert rows(tables.followups(sources)) == [FAGAI, SCJG, SHUIWU]
    assert rows(tables.followup_cases(sources)) == CASES


def test_a_department_sees_only_its_own(sources: Sources) -> None:
    assert rows(tables.followups(sources, Filters(department="scjg"))) == [SCJG]
    assert [r.case_id for r in tables.followup_cases(sources, Filters(department="shuiwu"))] == [3, 8]
    assert tables.followup_cases(sources, Filters(department="fagai")) == []


def test_days_and_channels(sources: Sources) -> None:
    # Monday only: A and F (opened 23:30), the 差评 of A's answer and of case H
    monday = Filters(start=MON, end=MON)
    assert rows(tables.followups(sources, monday)) == [
        ("scjg", 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0.25, 2.0, 3.5),
        ("shuiwu", 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0.04, 0.5, 1.0)]
    assert [r.case_id for r in tables.followup_cases(sources, monday)] == [1, 3]
    assert rows(tables.followups(sources, Filters(start=FRI))) == [
        ("shuiwu", 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0.25, 1.0, 2.0)]
    assert rows(tables.followup_cases(sources, Filters(channel="wecom"))) == [CASES[1]]
    assert rows(tables.followups(sources, Filters(channel="wechat"))) == [
        ("scjg", 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1.0, None, None)]


def test_make_insight_prints_both_tables(sources: Sources, database_url: str) -> None:
    for name, expected in (("followups", [FAGAI, SCJG, SHUIWU]), ("followup_cases", CASES)):
        out = io.StringIO()
        assert script.main(["--database", database_url, "--no-sync", "--table", name], out) == 0
        header, *lines = list(csv.reader(io.StringIO(out.getvalue())))
        assert header == tables.columns(tables.TABLES[name][1])
        assert lines == [["" if v is None else str(v) for v in row] for row in expected]
    assert header == ["case_id", "department", "created", "verify", "rectify", "feedback", "resolved"]
