"""Bot messages as WeChat-friendly text: a card as a few short lines, choices as numbers.

WeChat shows neither cards nor buttons in a passive reply, so a service card becomes its
title, lead department, first policy item and first channel; after a short answer it
becomes one line offering 「详情」 (the assistant's `ask_details` answer), and buttons become
「1. 开办企业」 lines the user answers with 「1」.
"""

from __future__ import annotations

import re
from typing import Any

DETAILS_HINT = "回复「详情」查看全部政策、配合部门和办理渠道。"
MAX_BYTES = 2000  # a text reply is cut here, in UTF-8 bytes (WeChat's and WeCom's limit is 2048)


def card_lines(card: dict[str, Any]) -> list[str]:
    lines = [f"【{card.get('title', '')}】牵头部门：{card.get('department', {}).get('name', '')}"]
    policies = card.get("policies") or []
    if policies and policies[0].get("item"):
        lines.append(f"依据：{policies[0]['doc']} 第{policies[0]['item']}条")
    channels = card.get("channels") or []
    if channels:
        lines.append(f"渠道：{channels[0]['name']}")
    return lines


def _cut(text: str) -> str:
    """Cut to MAX_BYTES of UTF-8, on a character boundary, marking the cut."""
    if len(text.encode("utf-8")) <= MAX_BYTES:
        return text
    return text.encode("utf-8")[: MAX_BYTES - 3].decode("utf-8", "ignore") + "…"


def to_text(messages: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The reply text and the payloads of the numbered choices it offers, in order.

    Rasa delivers an answer with a card as two messages, the text and then the card: a card
    right after a text adds nothing (the text carries its facts) and is left out.
    """
    parts: list[str] = []
    payloads: list[str] = []
    previous_text = False
    for message in messages:
        custom = message.get("custom")
        if isinstance(custom, dict) and custom.get("type") == "service_card":
            if not (message.get("text") or previous_text):
                parts.append("\n".join(card_lines(custom)))
            elif custom.get("answer"):  # a short answer: the rest of the card on request
                parts.append(DETAILS_HINT)
        if message.get("text"):
            parts.append(message["text"])
        previous_text = bool(message.get("text"))
        for button in message.get("buttons") or []:
            payloads.append(button.get("payload", ""))
            parts.append(f"{len(payloads)}. {button.get('title', '')}")
    if payloads:
        parts.append("回复数字即可选择。")
    return _cut("\n".join(p for p in parts if p).strip()), payloads


def choice(text: str, payloads: list[str]) -> str | None:
    """The payload a reply such as 「1」 or 「２」 picks, if it picks one."""
    number = text.strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if re.fullmatch(r"[0-9]{1,2}", number) and 1 <= int(number) <= len(payloads):
        return payloads[int(number) - 1]
    return None
