"""What of a user's message the analytics may keep: masked question text and a pseudonymous id.

The store holds no personal data beyond what a case already holds. A business owner types a
phone number, an ID card number, an e-mail address or a WeChat id into a question (「我电话
138…，帮我查下执照」) as readily as into the handoff form; the review inbox needs the question,
not the number. So every run of digits long enough to be a phone, landline or ID number (seven
digits or more, spaces and dashes between them allowed) has its digits replaced with `*`, and
e-mail addresses and labelled WeChat ids are masked the same way. Figures a question needs
(「45个工作日」「2023年」「0.5天」) are shorter and stay.

A conversation id is a WeChat openid, a widget session or whatever a REST client sends (a
phone number, sometimes): turns carry `conversation_key()`, an HMAC of it under a key kept in
the insight database, so that turns of one conversation group together and a known
conversation (a case's) can be found, while the id itself is not copied.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# full-width digits (「１３８…」) are digits too
_WIDE_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# seven digits or more, single spaces, dashes or dots between them; an ID number's final X
LONG_NUMBER = re.compile(r"\+?\d(?:[ \-－—.]?\d){6,}[Xx]?")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# a WeChat id after its label (「微信 zhang_san88」「微信号：abcdef」「wx: abc123」; an English
# label needs a colon, so 「wechat payments」 keeps its words), or one of WeChat's own (wxid_…)
WECHAT_ID = re.compile(r"((?:微信号?[:：\s]*|(?:wx|wechat|vx)\s*[:：]\s*))([a-zA-Z][-_a-zA-Z0-9]{5,19})", re.I)
WXID = re.compile(r"(?<![a-zA-Z0-9_])wxid_[a-zA-Z0-9]{4,30}", re.I)
# a date is no contact: 「2023-10-12 交的材料」 keeps it
DATE = re.compile(r"(?:19|20)\d\d[-－—.](?:0?[1-9]|1[0-2])[-－—.](?:0?[1-9]|[12]\d|3[01])")
KEY_CHARS = 32  # hex characters of the conversation key kept


def _stars(found: re.Match) -> str:
    return re.sub(r"[0-9A-Za-z]", "*", found.group(0))


def _number(found: re.Match) -> str:
    return found.group(0) if DATE.fullmatch(found.group(0)) else _stars(found)


def mask(text: str | None) -> str | None:
    """The text with contact-like numbers, e-mail addresses and WeChat ids masked."""
    if text is None:
        return None
    text = text.translate(_WIDE_DIGITS)
    text = EMAIL.sub(_stars, text)
    text = WECHAT_ID.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)
    text = WXID.sub(_stars, text)
    return LONG_NUMBER.sub(_number, text)


def conversation_key(secret: str, conversation_id: str) -> str:
    """The pseudonymous id of a conversation: the same id always gives the same key."""
    digest = hmac.new(secret.encode("utf-8"), conversation_id.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:KEY_CHARS]
