"""The bound on what a user may send, applied by every channel before anything reaches NLU.

NLU cost grows with the square of a message's length: 10,000 Chinese characters took Rasa
from 1.15 GB to 3.7 GB and stalled every other user for seconds, 2 MB stalled it for minutes,
and the whole text went into the log and the tracker. A business question needs a few
hundred characters, so one limit (`MAX_MESSAGE_CHARS`, read once from the environment,
default 2,000) is checked at each channel's door: REST (channels/rest.py), socket.io
(channels/webchat.py), WeChat and WeCom (channels/wechat.py). A longer message is answered
with `TOO_LONG` and goes no further; a raw body larger than any allowed message could be is
refused before it is parsed (`read_limited`).

`clean` removes what no person types and what breaks the pipeline further on: control
characters (「开公司\\0要多久」 routed to 外商投资; PostgreSQL refuses NUL in text) and lone
surrogates (a message with one got no reply at all: it cannot be encoded as UTF-8).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sanic.request import Request

DEFAULT_MAX_CHARS = 2000
# the longest REST sender id: ids are keys in the tracker store and the cases' tables
MAX_SENDER_CHARS = 128
# control characters (C0 but tab and newline, DEL, C1) and UTF-16 surrogates, which a
# Python string holds only unpaired (a JSON "\ud800" with no partner)
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def message_limit(environ: Mapping[str, str]) -> int:
    """The limit in characters from $MAX_MESSAGE_CHARS; a bad value stops the server at start
    rather than silently leaving messages unbounded."""
    value = environ.get("MAX_MESSAGE_CHARS", "").strip()
    if not value:
        return DEFAULT_MAX_CHARS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MAX_MESSAGE_CHARS must be a positive whole number of characters, not {value!r}")
    return int(value)


def body_limit(max_chars: int) -> int:
    """The largest raw request body worth parsing: a message at the limit written entirely in
    JSON escapes (up to 12 bytes a character, for a surrogate pair) plus sender and metadata,
    and never less than 64 KiB."""
    return max(64 * 1024, 12 * max_chars + 4096)


def too_long_reply(max_chars: int) -> str:
    """What the user is told instead of an answer: the limit and what to do about it."""
    return f"内容过长：请把问题控制在 {max_chars} 字以内，分几次发送。"


MAX_CHARS = message_limit(os.environ)
MAX_BODY_BYTES = body_limit(MAX_CHARS)
TOO_LONG = too_long_reply(MAX_CHARS)


def clean(text: str) -> str:
    """The text without control characters (newline and tab stay; a CR becomes a newline)
    and without lone surrogates."""
    return _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def is_clean(text: str) -> bool:
    """Whether text holds no control character (not even newline or tab) and no surrogate:
    what an id must be."""
    return not _ANY_CONTROL.search(text)


def too_long(text: str, max_chars: int | None = None) -> bool:
    """Whether text is over the limit (in characters, as the user counts them)."""
    return len(text) > (MAX_CHARS if max_chars is None else max_chars)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed limit (header or stream),
    so an oversized body is never read whole. The route must be declared with stream=True."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        return None
    if request.stream is None:  # not a streamed route (direct calls in tests)
        body = request.body or b""
        return body if len(body) <= limit else None
    chunks, size = [], 0
    while True:
        chunk = await request.stream.read()
        if chunk is None:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
