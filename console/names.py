"""Names the console shows, read from the knowledge base's data files (never from actions/)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

KB_DIR = Path(os.environ.get("KB_DIR") or Path(__file__).resolve().parent.parent / "kb")

REASONS = {"user_request": "用户要求人工", "complaint": "投诉", "misunderstood": "两次未听懂",
           "bad_rating": "差评跟进", "needs_person": "需人工处理的事项"}
ACTORS = {"assistant": "智能助手", "user": "用户"}  # who else writes to a case's audit trail
STATUSES = {"waiting": "排队中", "claimed": "处理中", "resolved": "已办结"}
CHANNELS = {"socketio": "网页", "wechat": "微信公众号", "wecom": "企业微信", "rest": "REST 接口"}
ACTIONS = {"opened": "转入人工", "claimed": "认领", "released": "退回队列", "reassigned": "转派",
           "resolved": "办结", "handed_back": "交回智能助手", "note": "备注", "replied": "回复已送达",
           "reply_recorded": "回复已记录（渠道不能推送）", "reply_failed": "回复未送达", "rated": "用户评价",
           "notice_failed": "通知用户失败", "bulk_closed": "批量关闭（交回智能助手）",
           "followup_verify": "差评跟进：回访核实", "followup_rectify": "差评跟进：整改",
           "followup_feedback": "差评跟进：反馈（已回复企业）"}
FOLLOWUP_STEPS = {"verify": "回访核实", "rectify": "整改", "feedback": "反馈"}  # a 差评's follow-up


def _records(file: str, key: str) -> list[dict]:
    return yaml.safe_load((KB_DIR / file).read_text(encoding="utf-8"))[key]


@lru_cache(maxsize=1)
def departments() -> dict[str, str]:
    """Unit id → name."""
    return {record["id"]: record["name"] for record in _records("departments.yml", "departments")}


@lru_cache(maxsize=1)
def topics() -> dict[str, str]:
    """Topic id → title."""
    return {record["id"]: record["title"] for record in _records("topics.yml", "topics")}
