"""A Rasa tracker's events as the conversation a specialist reads."""

from __future__ import annotations

import json
import re
from typing import Any

PAYLOAD = re.compile(r"^/(\w+)(\{.*\})?$", re.S)
INTENT_LABELS = {"rate_service": "评价", "answer_rated_badly": "给答复差评", "restart": "结束人工服务"}


def _user_text(text: str) -> str:
    """A button payload (/intent{…}) shown as what the user chose."""
    found = PAYLOAD.match(text.strip())
    if not found:
        return text
    try:
        values = json.loads(found.group(2) or "{}")
    except ValueError:
        values = {}
    shown = "、".join(str(v) for v in values.values() if isinstance(v, (str, int)) and not str(v).isdigit())
    label = INTENT_LABELS.get(found.group(1), found.group(1))
    return f"［{label}］{shown}" if shown else f"［{label}］"


def _card(custom: Any) -> dict[str, Any] | None:
    if not isinstance(custom, dict) or custom.get("type") != "service_card":
        return None
    items = [f"{p.get('doc', '')}" + (f" 第{p['item']}条" if p.get("item") else "") + f"：{p.get('summary', '')}"
             for p in custom.get("policies") or [] if isinstance(p, dict)]
    return {"title": str(custom.get("title", "")), "department": str((custom.get("department") or {}).get("name", "")),
            "items": items, "channels": [str(c.get("name", "")) for c in custom.get("channels") or []
                                         if isinstance(c, dict)]}


def _external(event: dict[str, Any]) -> bool:
    """An intent the console triggered through Rasa's API (Rasa marks it), not typed."""
    return bool((event.get("metadata") or {}).get("is_external"))


def messages(tracker: dict[str, Any]) -> list[dict[str, Any]]:
    """User and bot messages in order; a bot message with staff metadata is the staff's."""
    shown: list[dict[str, Any]] = []
    for event in tracker.get("events") or []:
        kind = event.get("event")
        if kind == "user":
            if _external(event):  # triggered by the console, not typed
                continue
            shown.append({"at": event.get("timestamp"), "who": "user", "text": _user_text(event.get("text") or ""),
                          "staff_name": None, "buttons": [], "card": None})
        elif kind == "bot":
            data, staff = event.get("data") or {}, (event.get("metadata") or {}).get("staff")
            card = _card(data.get("custom"))
            if not (event.get("text") or card):
                continue
            shown.append({"at": event.get("timestamp"), "who": "staff" if staff else "bot",
                          "text": event.get("text") or "", "staff_name": (staff or {}).get("name"),
                          "buttons": [str(b.get("title", "")) for b in data.get("buttons") or [] if isinstance(b, dict)],
                          "card": card})
    return shown


def last_user_message_at(tracker: dict[str, Any]) -> float | None:
    """When the user last wrote (a WeChat user's 48-hour window starts then)."""
    times = [e.get("timestamp") for e in tracker.get("events") or [] if e.get("event") == "user" and not _external(e)]
    return max((t for t in times if isinstance(t, (int, float))), default=None)
