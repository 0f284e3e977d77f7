"""A scripted day at the assistant: Monday 2 March 2026 in Yuzhong (UTC+8), and what it adds up to.

Nine conversations on REST, the widget (socket.io), WeChat and WeCom: answers, a fact the
documents do not publish, declines, ask-backs, handoffs (asked for, a complaint, a dispute
answered first, a widget 差评), form answers with phone numbers in them, messages to a paused
bot, a case resolved and rated, a user who gives up waiting, and one question a minute before
midnight with its follow-up a minute after. `part_one()` is the day until 17:01, `part_two()`
its evening (written after a first sync: conversations carry their state across syncs);
`cases_and_ratings()` writes the cases and 好差评 the same day gave the cases' and channels'
tables. The expected tables below are counted by hand from the script.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest

from cases import repository as repository_module
from cases.repository import CaseRepository
from channels import store as store_module
from channels.store import ChannelStore
from insight.turns import TIMEZONE
from tests.insight.rasa_events import Conversation, card

DAY = date(2026, 3, 2)
NEXT = DAY + timedelta(days=1)
# the numbers typed; none may reach the insight tables
PHONES = ("13812345678", "13900001111", "13700002222", "138-0000-1111", "13800001111", "13611112222",
          "023-63765360", "02363765360")


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TIMEZONE).timestamp()


OPENING = card("company_opening", "开办企业", "scjg", "p2023_002_1", "全流程办理时限压减至0.5天。", "time")
MATERIALS = card("company_opening", "开办企业", "scjg", "fig_company_opening_1", "申报材料减少75%以上。", "materials")
OPENING_DETAILS = card("company_opening", "开办企业", "scjg", None, "", details=True)
PHONE_MISSING = card("first_loan_renewal", "首贷、续贷", "jinrong", None, "现有政策文件没有公布首贷续贷中心的联系电话。",
                     "count", missing="phone")
OPENING_BUTTON = card("company_opening", "开办企业", "scjg", "p2021_001", "优化开办企业服务。")
PERMIT = card("construction_permit", "建筑许可和工程建设审批", "zhujian", "p2023_009", "由50个工作日压减至45个工作日。", "time")
LABOUR = card("labour_dispute", "劳动争议", "renshe", "p2023_069_1", "开展政府采购领域拖欠支付款项专项整治。",
              answered_by="caizheng")  # the passage is a 财政局 item; the handoff goes to the topic's lead
LABOUR_ONLINE = card("labour_dispute", "劳动争议", "renshe", "p2023_032_1", "推广应用“渝薪无忧”平台。", "channel")
OPENING_TIME = card("company_opening", "开办企业", "scjg", "p2021_002", "实现一个终端全办结。", "time")
PLEDGE = card("ip_pledge", "知识产权质押融资", "scjg", "p2021_037_3", "可以。常态化举办知识产权质押融资银企对接。")
PLEDGE_TIME = card("ip_pledge", "知识产权质押融资", "scjg", "p2021_037_3", "文件没有给出办理时限。", "time", missing="time")


def part_one() -> dict[str, Conversation]:
    c = {
        "answers": Conversation("r-answers", "rest", at(9)),
        "declines": Conversation("r-declines", "rest", at(10)),
        "handoff": Conversation("r-handoff", "rest", at(11)),
        "permit": Conversation("s-permit-7f3a", "socketio", at(14)),
        "labour": Conversation("s-labour-91c2", "socketio", at(15)),
        "wechat": Conversation("o-wechat-owner-1", "wechat", at(16, 30)),
        "wecom": Conversation("zhangsan", "wecom", at(23, 59, 30)),
        "complaint": Conversation("r-complaint", "rest", at(17)),
    }
    a = c["answers"]
    a.answer("开公司最快多久能拿到执照", "company_opening", 0.94, OPENING, at=at(9))
    a.answer("那要带什么材料", "ask_materials", 0.98, MATERIALS, "action_answer_followup", at=at(9, 1))
    a.answer("详情", "ask_details", 0.95, OPENING_DETAILS, "action_answer_details", at=at(9, 2))
    a.answer("首贷续贷中心的电话是多少", "first_loan_renewal", 0.97, PHONE_MISSING, at=at(9, 3))
    a.chitchat("你好", "greet", "utter_greet", at=at(9, 4))
    a.chitchat("谢谢", "thank", "utter_thank", at=at(9, 5))

    d = c["declines"]
    d.decline("今天天气怎么样", at=at(10))
    d.ask_topic("办个证")
    d.answer("/company_opening", "company_opening", 1.0, OPENING_BUTTON, at=at(10, 2))
    d.decline("我电话13812345678，帮我订张机票", 0.99, at=at(10, 3))

    h = c["handoff"]
    h.choices("阿斯顿发噶")
    h.hand_over("转人工", "human_handoff", 0.97, "user_request", "fagai", at=at(11, 1))
    h.form("13812345678", "handoff_contact", "13812345678", "handoff_company", "out_of_scope", 0.65)
    h.form("重庆某某火锅有限公司", "handoff_company", "重庆某某火锅有限公司", "handoff_problem", "company_opening", 0.83)
    h.form_done("想在解放碑开火锅店，不知道先办什么证", "handoff_problem", "想在解放碑开火锅店，不知道先办什么证", 3, "fagai",
                "company_opening", 0.73)
    h.while_paused("在吗？我手机13900001111", "out_of_scope", 0.81, at=at(11, 10))
    h.staff_says("您好，我是区发展改革委的张三，已接手您的问题（案件 #3）。", pause=True, at=at(11, 34))
    h.staff_says("先办营业执照。", at=at(11, 40))
    h.resumed(3, "fagai", at=at(12, 4))
    h.rate_case("不满意", 3, bad_department="fagai")
    h.form_cancel()

    p = c["permit"]
    p.answer("施工许可多少个工作日", "construction_permit", 0.86, PERMIT, at=at(14))
    p.clock.at(at(14, 1))
    p.rate_answer_badly("非常不满意", "construction_permit", "zhujian", "太慢",
                        "对「建筑许可和工程建设审批」的答复评价为「非常不满意」，理由：太慢")
    p.form("138-0000-1111", "handoff_contact", "13800001111", "handoff_company", "out_of_scope", 0.86)
    p.form_done("重庆某某建筑公司", "handoff_company", "重庆某某建筑公司", 4, "zhujian")
    p.while_paused("还没人回复吗", at=at(14, 30))

    lab = c["labour"]
    lab.hand_over("公司拖欠工资三个月了怎么办", "labour_dispute", 0.88, "needs_person", "renshe",
                  problem="公司拖欠工资三个月了怎么办", answered=LABOUR, at=at(15))
    lab.form_question("可以线上办吗", "ask_channel", 0.94, LABOUR_ONLINE)
    lab.form("跳过", "handoff_contact", "未提供", "handoff_company")
    lab.form_done("跳过", "handoff_company", "未提供", 5, "renshe")
    lab.staff_says("您好，我是区人力社保局的李四，已接手您的问题（案件 #5）。", pause=True, at=at(15, 18))
    lab.resumed(5, "renshe", at=at(15, 33))
    lab.rate_case("满意", 5)

    w = c["wechat"]
    w.chitchat("/greet", "greet", "utter_greet", at=at(16, 30))
    w.answer("开公司要多久", "company_opening", 0.94, OPENING_TIME, at=at(16, 31))
    w.decline("1", 0.65, at=at(16, 32))
    w.hand_over("转人工", "human_handoff", 0.97, "user_request", "scjg", at=at(16, 33))
    w.form("我的手机是13700002222", "handoff_contact", "13700002222", "handoff_company", "out_of_scope", 0.68)
    w.form("跳过", "handoff_company", "未提供", "handoff_problem")
    w.form_done("跳过", "handoff_problem", "未提供", 6, "scjg")
    w.while_paused("在吗", "greet", 0.96, at=at(16, 38))
    w.restart(6, "scjg", at=at(16, 40))
    w.chitchat("谢谢", "thank", "utter_thank", at=at(16, 41))

    z = c["wecom"]
    z.answer("专利能拿去质押贷款吗", "ip_pledge", 0.98, PLEDGE, at=at(23, 59, 30))
    z.answer("那要多久", "ask_time_limit", 0.97, PLEDGE_TIME, "action_answer_followup", at=at(0, 0, 30, NEXT))

    m = c["complaint"]
    m.hand_over("你们办事效率太低了，我要投诉，电话13611112222", "complain", 0.98, "complaint", "fagai",
                problem="你们办事效率太低了，我要投诉，电话13611112222", at=at(17))
    m.form("023-63765360", "handoff_contact", "02363765360", "handoff_company", "out_of_scope", 0.85)
    return c


def part_two(c: dict[str, Conversation]) -> list[Conversation]:
    """The evening: the same conversations go on (a form still asking, a case still open), one new."""
    c["complaint"].clock.at(at(18))
    c["complaint"].form_done("重庆某某公司", "handoff_company", "重庆某某公司", 7, "fagai")
    c["declines"].clock.at(at(18, 30))  # an hour's silence: a new session, the topic carried over
    c["declines"].not_understood("注册商标找谁")
    c["permit"].while_paused("在吗", at=at(18, 40))  # a new session, paused again: case #4 is still open
    late = Conversation("r-late", "rest", at(19))
    late.decline("北京的社保怎么交", 0.9, at=at(19), action="utter_out_of_scope")  # a model of before 2026-12-04
    return [c["complaint"], c["declines"], c["permit"], late]


# one row per user turn, in time order: (sender, kind, outcome, topic, department)
TURNS_PART_ONE = [
    ("r-answers", "question", "answered", "company_opening", "scjg"),
    ("r-answers", "question", "answered", "company_opening", "scjg"),
    ("r-answers", "question", "answered", "company_opening", "scjg"),
    ("r-answers", "question", "answered", "first_loan_renewal", "jinrong"),
    ("r-answers", "chitchat", None, None, None),
    ("r-answers", "chitchat", None, None, None),
    ("r-declines", "question", "out_of_scope", None, None),
    ("r-declines", "question", "asked_back", None, None),
    ("r-declines", "question", "answered", "company_opening", "scjg"),
    ("r-declines", "question", "out_of_scope", None, None),
    ("r-handoff", "question", "asked_back", None, None),
    ("r-handoff", "question", "handed_over", None, "fagai"),
    ("r-handoff", "form", None, None, None),
    ("r-handoff", "form", None, None, None),
    ("r-handoff", "form", None, None, None),
    ("r-handoff", "paused", None, None, None),
    ("r-handoff", "control", None, None, None),
    ("r-handoff", "rating", None, None, "fagai"),
    ("r-handoff", "form", None, None, None),
    ("s-permit-7f3a", "question", "answered", "construction_permit", "zhujian"),
    ("s-permit-7f3a", "rating", None, None, "zhujian"),
    ("s-permit-7f3a", "form", None, None, None),
    ("s-permit-7f3a", "form", None, None, None),
    ("s-permit-7f3a", "paused", None, None, None),
    ("s-labour-91c2", "question", "handed_over", "labour_dispute", "renshe"),
    ("s-labour-91c2", "question", "answered", "labour_dispute", "renshe"),
    ("s-labour-91c2", "form", None, None, None),
    ("s-labour-91c2", "form", None, None, None),
    ("s-labour-91c2", "control", None, None, None),
    ("s-labour-91c2", "rating", None, None, None),
    ("o-wechat-owner-1", "chitchat", None, None, None),
    ("o-wechat-owner-1", "question", "answered", "company_opening", "scjg"),
    ("o-wechat-owner-1", "question", "out_of_scope", None, None),
    ("o-wechat-owner-1", "question", "handed_over", "company_opening", "scjg"),
    ("o-wechat-owner-1", "form", None, None, None),
    ("o-wechat-owner-1", "form", None, None, None),
    ("o-wechat-owner-1", "form", None, None, None),
    ("o-wechat-owner-1", "paused", None, None, None),
    ("o-wechat-owner-1", "control", None, None, None),
    ("o-wechat-owner-1", "chitchat", None, None, None),
    ("r-complaint", "question", "handed_over", None, "fagai"),
    ("r-complaint", "form", None, None, None),
    ("zhangsan", "question", "answered", "ip_pledge", "scjg"),
    ("zhangsan", "question", "answered", "ip_pledge", "scjg"),
]
TURNS_PART_TWO = [
    ("r-complaint", "form", None, None, None),
    ("r-declines", "question", "asked_back", None, None),
    ("s-permit-7f3a", "paused", None, None, None),
    ("r-late", "question", "out_of_scope", None, None),
]

D, N = DAY.isoformat(), NEXT.isoformat()
DAILY_PART_ONE = [(D, "rest", 11, 5, 2, 2, 2), (D, "socketio", 3, 2, 0, 0, 1), (D, "wechat", 3, 1, 0, 1, 1),
                  (D, "wecom", 1, 1, 0, 0, 0), (N, "wecom", 1, 1, 0, 0, 0)]
DAILY = [(D, "rest", 13, 5, 3, 3, 2), *DAILY_PART_ONE[1:]]
DAILY_SCJG = [(D, "rest", 4, 4, 0, 0, 0), (D, "wechat", 2, 1, 0, 0, 1), (D, "wecom", 1, 1, 0, 0, 0),
              (N, "wecom", 1, 1, 0, 0, 0)]
TOPICS = [("company_opening", 6, 5, 1, 0, 0.833), ("ip_pledge", 2, 2, 0, 1, 1.0), ("labour_dispute", 2, 1, 1, 0, 0.5),
          ("construction_permit", 1, 1, 0, 0, 1.0), ("first_loan_renewal", 1, 1, 0, 1, 1.0)]
OUTCOMES = [(D, 20, 0.45, 0.15, 0.2, 0.2), (N, 1, 1.0, 0.0, 0.0, 0.0)]
RATINGS = [("answer", "renshe", "labour_dispute", 0, 1, 0, 0, 0, 1, 0.0),
           ("answer", "scjg", "company_opening", 1, 0, 0, 0, 0, 1, 0.0),
           ("answer", "zhujian", "construction_permit", 0, 0, 0, 0, 1, 1, 1.0),
           ("case", "fagai", "", 0, 0, 0, 1, 0, 1, 1.0),
           ("case", "renshe", "labour_dispute", 0, 1, 0, 0, 0, 1, 0.0)]
RATINGS_WEEKLY = [("2026-02-23", "answer", "scjg", 1, 0, 0, 0, 0, 1, 0.0),
                  ("2026-03-02", "answer", "renshe", 0, 1, 0, 0, 0, 1, 0.0),
                  ("2026-03-02", "answer", "zhujian", 0, 0, 0, 0, 1, 1, 1.0),
                  ("2026-03-02", "case", "fagai", 0, 0, 0, 1, 0, 1, 1.0),
                  ("2026-03-02", "case", "renshe", 0, 1, 0, 0, 0, 1, 0.0)]
# department, cases, waiting, claimed, solved, handed_back, claim median/p90, resolve median/p90 (hours),
# target, decided, within target, share — at NOW, with the target of 24 hours
NOW = at(12, 0, 0, NEXT)
CASES = [("fagai", 4, 1, 0, 3, 0, 0.5, 0.5, 3.0, 16.0, 24.0, 4, 3, 0.75),
         ("renshe", 1, 0, 0, 1, 0, 0.25, 0.25, 0.5, 0.5, 24.0, 1, 1, 1.0),
         ("scjg", 1, 0, 0, 0, 1, None, None, None, None, 24.0, 1, 0, 0.0),
         ("zhujian", 1, 1, 0, 0, 0, None, None, None, None, 24.0, 0, 0, 0.0)]
CASES_OF_THE_DAY_FAGAI = ("fagai", 3, 0, 0, 3, 0, 0.5, 0.5, 3.0, 16.0, 24.0, 3, 3, 1.0)
# department, 差评, follow-up cases, waiting, claimed, solved, handed back, with 回访核实 / 整改 / 反馈, closed
# with a reply, median days to each step: case #4 was never claimed, so none of its steps is done
FOLLOWUPS = [("fagai", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None),
             ("zhujian", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, None, None, None)]
FOLLOWUP_CASES = [(4, "zhujian", D, None, None, None, None)]


def cases_and_ratings(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases and ratings of the script, written through the cases' repository and the
    channels' store at the times they happened."""
    now = [0.0]
    clock = SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(repository_module, "time", clock)
    monkeypatch.setattr(store_module, "time", clock)
    cases, store = CaseRepository(url), ChannelStore(url)

    def when(moment: float) -> None:
        now[0] = moment

    when(at(10, 0, 0, date(2026, 2, 28)))
    old = cases.open("r-old", "rest", "user_request", "fagai")[0]  # 1: still waiting, days later
    when(at(9))
    early = cases.open("r-early", "rest", "user_request", "fagai")[0]  # 2
    when(at(9, 6))
    cases.claim(early.id, "zhang")
    when(at(12))
    cases.resolve(early.id, "zhang")
    when(at(11, 4))
    handoff = cases.open("r-handoff", "rest", "user_request", "fagai", contact="13812345678")[0]  # 3
    when(at(11, 34))
    cases.claim(handoff.id, "zhang")
    when(at(12, 4))
    cases.resolve(handoff.id, "zhang")
    when(at(12, 5))
    cases.rate(handoff.id, "r-handoff", "不满意")  # its follow-up handoff was cancelled: no case
    when(at(14, 1))
    store.rate("s-permit-7f3a", "socketio", "非常不满意", "太慢", "construction_permit", "zhujian", "…")
    when(at(14, 3))
    cases.open("s-permit-7f3a", "socketio", "bad_rating", "zhujian", "construction_permit",
               contact="13800001111")  # 4: never claimed
    when(at(15, 3))
    labour = cases.open("s-labour-91c2", "socketio", "needs_person", "renshe", "labour_dispute")[0]  # 5
    when(at(15, 10))
    store.rate("s-labour-91c2", "socketio", "满意", "", "labour_dispute", "renshe", "…")
    when(at(15, 18))
    cases.claim(labour.id, "li")
    when(at(15, 33))
    cases.resolve(labour.id, "li")
    when(at(15, 35))
    cases.rate(labour.id, "s-labour-91c2", "满意")
    when(at(16, 36))
    wechat = cases.open("o-wechat-owner-1", "wechat", "user_request", "scjg", "company_opening",
                        contact="13700002222")[0]  # 6
    when(at(16, 40))
    cases.resolve(wechat.id, "user", "handed_back")  # the user stopped waiting (/restart)
    when(at(18))
    complaint = cases.open("r-complaint", "rest", "complaint", "fagai", contact="02363765360")[0]  # 7
    when(at(18, 30))
    cases.claim(complaint.id, "zhang")
    when(at(18, 40))
    cases.release(complaint.id, "zhang")
    when(at(19))
    cases.claim(complaint.id, "wang")  # claimed twice: the wait is to the first claim
    when(at(10, 0, 0, NEXT))
    cases.resolve(complaint.id, "wang")
    when(at(10, 0, 0, date(2026, 2, 27)))
    store.rate("s-old", "socketio", "非常满意", "", "company_opening", "scjg", "…")  # the week before
    assert old.id == 1 and complaint.id == 7
