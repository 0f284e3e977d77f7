"""The input bound every channel applies (channels/limits.py) and the REST body checks (channels/rest.py)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from channels import limits
from channels.rest import BadRequest, read_body


@pytest.mark.parametrize("environ, limit", [({}, 2000), ({"MAX_MESSAGE_CHARS": ""}, 2000),
                                            ({"MAX_MESSAGE_CHARS": " 500 "}, 500), ({"MAX_MESSAGE_CHARS": "1"}, 1)])
def test_the_limit_comes_from_the_environment(environ: dict, limit: int) -> None:
    assert limits.message_limit(environ) == limit


@pytest.mark.parametrize("value", ["0", "-5", "2k", "1e4", "2000.5"])
def test_a_bad_limit_stops_the_server_instead_of_lifting_the_bound(value: str) -> None:
    with pytest.raises(ValueError, match="MAX_MESSAGE_CHARS"):
        limits.message_limit({"MAX_MESSAGE_CHARS": value})


def test_the_running_limit_and_its_reply() -> None:
    assert limits.MAX_CHARS == limits.message_limit(__import__("os").environ)
    assert limits.TOO_LONG == f"内容过长：请把问题控制在 {limits.MAX_CHARS} 字以内，分几次发送。"
    assert limits.too_long_reply(300) == "内容过长：请把问题控制在 300 字以内，分几次发送。"


@pytest.mark.parametrize("max_chars", [1, 2000, 5000, 50_000])
def test_a_body_holding_a_message_at_the_limit_is_never_refused_as_too_big(max_chars: int) -> None:
    worst = json.dumps({"sender": "s" * limits.MAX_SENDER_CHARS, "message": "😀" * max_chars,
                        "metadata": {"k": "v" * 100}})  # every character a \\ud83d\\ude00 escape pair
    assert len(worst.encode()) <= limits.body_limit(max_chars)
    assert limits.body_limit(max_chars) >= 64 * 1024


@pytest.mark.parametrize("text, cleaned", [
    ("开公司\0要多久", "开公司要多久"),
    ("开公司\x01\x08\x0b\x0c\x1b\x7f\x85\x9f要多久", "开公司要多久"),
    ("第一行\n第二行\t制表", "第一行\n第二行\t制表"),  # newline and tab stay
    ("a\r\nb\rc", "a\nb\nc"),
    ("开公司\ud800要多久\udfff", "开公司要多久"),  # lone surrogates
    ("😀 表情和“引号”，全角ＡＢＣ", "😀 表情和“引号”，全角ＡＢＣ"),  # nothing a person types is touched
    ("", ""),
])
def test_clean(text: str, cleaned: str) -> None:
    assert limits.clean(text) == cleaned
    limits.clean(text).encode("utf-8")  # always encodable (a lone surrogate is not)


@pytest.mark.parametrize("text, ok", [("owner-1", True), ("o_AbC-123", True), ("用户甲", True),
                                      ("a\nb", False), ("a\tb", False), ("a\0", False), ("\ud800", False)])
def test_is_clean_for_ids(text: str, ok: bool) -> None:
    assert limits.is_clean(text) is ok


def test_too_long_counts_characters_not_bytes() -> None:
    assert not limits.too_long("开" * limits.MAX_CHARS)
    assert limits.too_long("开" * (limits.MAX_CHARS + 1))
    assert limits.too_long("abcd", 3) and not limits.too_long("abc", 3)


class Stream:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.read_count = list(chunks), 0

    async def read(self) -> bytes | None:
        self.read_count += 1
        return self.chunks.pop(0) if self.chunks else None


def request(headers: dict | None = None, chunks: list[bytes] | None = None, body: bytes = b"") -> SimpleNamespace:
    return SimpleNamespace(headers=headers or {}, stream=Stream(chunks) if chunks is not None else None, body=body)


def test_read_limited_refuses_on_the_header_without_reading() -> None:
    big = request({"content-length": "70000"}, [b"x" * 10])
    assert asyncio.run(limits.read_limited(big, 65536)) is None and big.stream.read_count == 0


def test_read_limited_stops_reading_a_chunked_body_once_over() -> None:
    chunked = request({}, [b"x" * 40000] * 10)
    assert asyncio.run(limits.read_limited(chunked, 65536)) is None and chunked.stream.read_count == 2
    assert asyncio.run(limits.read_limited(request({}, [b"ab", b"cd"]), 4)) == b"abcd"
    assert asyncio.run(limits.read_limited(request(body=b"abcde"), 4)) is None
    assert asyncio.run(limits.read_limited(request(body=b"abcd"), 4)) == b"abcd"


@pytest.mark.parametrize("body, reason", [
    (b"[1, 2]", "JSON object"),
    (b'"hello"', "JSON object"),
    (b"42", "JSON object"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[" * 50000, "not JSON"),  # nested too deep for the parser
    (b'{"message": "hi"}', "sender is required"),
    (b'{"sender": "", "message": "hi"}', "sender is required"),
    (b'{"sender": 42, "message": "hi"}', "sender is required"),
    (b'{"sender": ["a"], "message": "hi"}', "sender is required"),
    (json.dumps({"sender": "s" * 129, "message": "hi"}).encode(), "longer than 128"),
    (b'{"sender": "a\\u0000b", "message": "hi"}', "control characters"),
    (b'{"sender": "me"}', "message is required"),
    (b'{"sender": "me", "message": null}', "message is required"),
    (b'{"sender": "me", "message": ["hi"]}', "message is required"),
    (b'{"sender": "me", "message": "hi", "metadata": [1, 2]}', "metadata must be a JSON object"),
    (b'{"sender": "me", "message": "hi", "metadata": "x"}', "metadata must be a JSON object"),
])
def test_malformed_bodies_get_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        read_body(body)


def test_a_good_body_is_read_and_its_text_cleaned() -> None:
    posted = read_body('{"sender": "s" , "message": "开公司\\u0000要多久\\ud800", "metadata": {"a": 1}}'.encode())
    assert (posted.sender, posted.text, posted.metadata) == ("s", "开公司要多久", {"a": 1})
    assert read_body(json.dumps({"sender": "s" * 128, "message": ""}).encode()).metadata == {}
    assert read_body('{"sender": "s", "message": "a\tb\x01c"}'.encode()).text == "a\tbc"  # raw controls too
