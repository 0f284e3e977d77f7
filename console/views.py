"""What the console shows of a case, and what the signed-in member may do with it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from cases.repository import FOLLOWUP_REASON, FOLLOWUP_STEPS, OPEN, Case, CaseEvent, FollowupStep
from console import names
from console.accounts import StaffMember

WECHAT_WINDOW = 48 * 3600  # a user's message lets the account send customer-service messages for 48 h
PUSH_CHANNELS = {"socketio", "wechat", "wecom"}
WECHAT_CHANNELS = {"wechat", "wecom"}


def summary(case: Case, staff_names: dict[str, str], now: float | None = None,
            same_client_open: dict[str, int] | None = None) -> dict[str, Any]:
    """What the console shows of a case; `same_client_open`: open cases per client, as counted
    for the member (Console.same_client_open), None where not counted."""
    now = now or time.time()
    counted = same_client_open is not None and case.client is not None
    return {
        **case.as_dict(),
        "department_name": names.departments().get(case.department, case.department),
        "topic_title": names.topics().get(case.topic or "") if case.topic else None,
        "reason_label": names.REASONS.get(case.reason, case.reason),
        "status_label": names.STATUSES.get(case.status, case.status),
        "channel_label": names.CHANNELS.get(case.channel, case.channel),
        "assignee_name": staff_names.get(case.assignee or "", case.assignee),
        "waiting_seconds": int(now - case.queued_at) if case.status != "resolved" else 0,
        # how many OPEN cases share this case's client (a flood when ≥ 2); None: no client
        "same_client_open": same_client_open.get(case.client, 0) if counted else None,
    }


def event(entry: CaseEvent, staff_names: dict[str, str]) -> dict[str, Any]:
    detail = entry.detail
    if entry.action == "reassigned":
        detail = names.departments().get(detail, detail)
    elif entry.action == "opened":
        detail = names.REASONS.get(detail, detail)
    actor_name = staff_names.get(entry.actor) or names.ACTORS.get(entry.actor, entry.actor)
    return {"at": entry.at, "actor": entry.actor, "actor_name": actor_name, "action": entry.action,
            "label": names.ACTIONS.get(entry.action, entry.action), "detail": detail}


def followup(steps: dict[str, FollowupStep | None], staff_names: dict[str, str]) -> list[dict[str, Any]]:
    """The three steps of a 差评's follow-up, in order: each done (its latest record) or not."""
    shown = []
    for step in FOLLOWUP_STEPS:
        done = steps.get(step)
        shown.append({"step": step, "label": names.FOLLOWUP_STEPS[step], "done": done is not None,
                      "at": done.at if done else None, "actor": done.actor if done else None,
                      "actor_name": staff_names.get(done.actor, done.actor) if done else None,
                      "note": done.note if done else None, "times": done.times if done else 0})
    return shown


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%m-%d %H:%M")


def reach(case: Case, last_user_at: float | None, now: float | None = None) -> dict[str, Any]:
    """Whether a reply can reach the user, and until when (WeChat's 48-hour window)."""
    now = now or time.time()
    label = names.CHANNELS.get(case.channel, case.channel)
    if case.channel not in PUSH_CHANNELS:
        return {"channel_label": label, "can_push": False, "reachable": False, "window_closes_at": None,
                "message": f"用户来自{label}，该渠道不能主动推送消息：回复只记入对话记录，"
                           f"请通过用户留下的联系方式（{case.contact or '未提供'}）联系。"}
    if case.channel not in WECHAT_CHANNELS:
        return {"channel_label": label, "can_push": True, "reachable": True, "window_closes_at": None,
                "message": "回复实时发送到用户的网页对话框（用户关闭网页时，重新打开前看不到新回复）。"}
    closes = last_user_at + WECHAT_WINDOW if last_user_at else None
    refused_since_last = bool(case.unreachable_at and (last_user_at is None or case.unreachable_at > last_user_at))
    if closes is None or closes <= now or refused_since_last:
        why = ("微信已拒收上一条回复（客服消息窗口已关闭或条数已用完）" if refused_since_last
               else "用户最后一条消息已超过 48 小时")
        return {"channel_label": label, "can_push": True, "reachable": False, "window_closes_at": closes,
                "message": f"{why}，回复无法送达，直到用户再发来消息。请改用用户留下的联系方式"
                           f"（{case.contact or '未提供'}）。"}
    return {"channel_label": label, "can_push": True, "reachable": True, "window_closes_at": closes,
            "message": f"{label}客服消息窗口到 {_clock(closes)} 关闭（用户最后发消息后 48 小时，"
                       f"其间条数也有上限）；此后回复无法送达，直到用户再发消息。"}


def permissions(member: StaffMember, case: Case) -> dict[str, bool]:
    sees = member.may_see(case.department)
    owner = case.status == "claimed" and case.assignee == member.username
    in_charge = owner or (member.is_supervisor and case.status in OPEN)
    return {
        "claim": sees and case.status == "waiting",
        "release": in_charge and case.status == "claimed",
        "reply": owner,
        "resolve": in_charge and case.status == "claimed",
        "handback": in_charge,
        "reassign": member.is_supervisor and case.status in OPEN,
        "note": sees,
        "followup": owner and case.reason == FOLLOWUP_REASON,  # 回访核实, 整改, 反馈 (repository: the claimer)
        # every open case of this case's client handed back at once (a flood): supervisors only
        "close_same_client": member.is_supervisor and bool(case.client),
    }
