"""The wire format against wechatpy, which signs and encrypts exactly as WeChat does."""

from __future__ import annotations

import time

import pytest
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.utils import check_signature as wechatpy_check

from channels.wechat_protocol import (
    AESEnvelope, ProtocolError, check_fresh, check_signature, parse_xml, signature, text_reply,
)

TOKEN, KEY, APP = "test-token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1234567890"


def test_signature_is_what_wechat_computes() -> None:
    sig = signature(TOKEN, "1700000000", "nonce")
    wechatpy_check(TOKEN, sig, "1700000000", "nonce")  # raises when different
    check_signature(sig, TOKEN, "1700000000", "nonce")
    with pytest.raises(ProtocolError) as refused:
        check_signature(sig[:-1] + "0", TOKEN, "1700000000", "nonce")
    assert refused.value.status == 403
    with pytest.raises(ProtocolError):
        check_signature(None, TOKEN, "1700000000", "nonce")


@pytest.mark.parametrize("offset, ok", [(0, True), (299, True), (-299, True), (301, False), (-400, False)])
def test_replayed_timestamps_are_refused(offset: int, ok: bool) -> None:
    now = time.time()
    if ok:
        check_fresh(str(int(now + offset)), now)
    else:
        with pytest.raises(ProtocolError):
            check_fresh(str(int(now + offset)), now)
    with pytest.raises(ProtocolError):
        check_fresh("not-a-number", now)


def test_we_open_what_wechat_seals_and_wechat_opens_what_we_seal() -> None:
    crypto = WeChatCrypto(TOKEN, KEY, APP)
    inner = text_reply("gh_account", "o-user-1", "开公司要多久")
    stamp = str(int(time.time()))
    sealed = crypto.encrypt_message(inner, "n1", stamp)
    fields = parse_xml(sealed)
    opened = AESEnvelope(TOKEN, KEY, APP).open(sealed.encode(), fields["MsgSignature"], stamp, "n1")
    assert opened["Content"] == "开公司要多久" and opened["FromUserName"] == "o-user-1"

    ours = AESEnvelope(TOKEN, KEY, APP).seal(text_reply("o-user-1", "gh_account", "区市场监管局"), "n2", int(stamp))
    envelope = parse_xml(ours)
    plain = crypto.decrypt_message(ours, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    assert "区市场监管局" in plain


def test_wecom_echostr_and_messages() -> None:
    crypto = WeComCrypto(TOKEN, KEY, "ww-corp")
    envelope = AESEnvelope(TOKEN, KEY, "ww-corp")
    sealed = envelope.seal("hello", "n", 1700000000)
    fields = parse_xml(sealed)
    echo = crypto.check_signature(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert echo in ("hello", b"hello")


def test_a_message_for_another_account_or_garbage_does_not_open() -> None:
    crypto = WeChatCrypto(TOKEN, KEY, "wx-other")
    stamp = str(int(time.time()))
    sealed = crypto.encrypt_message("<xml><Content>x</Content></xml>", "n", stamp)
    fields = parse_xml(sealed)
    with pytest.raises(ProtocolError) as refused:
        AESEnvelope(TOKEN, KEY, APP).open(sealed.encode(), fields["MsgSignature"], stamp, "n")
    assert refused.value.status == 400
    with pytest.raises(ProtocolError):
        AESEnvelope(TOKEN, KEY, APP).decrypt("bm90IGFlcw==")
    with pytest.raises(ProtocolError) as forged:  # right cipher text, wrong signature
        AESEnvelope(TOKEN, KEY, "wx-other").open(sealed.encode(), "0" * 40, stamp, "n")
    assert forged.value.status == 403


@pytest.mark.parametrize("body", [
    b"<xml><Content>unclosed</xml>",
    b"not xml at all",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><C>&b;</C></xml>',
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><C>&e;</C></xml>',
])
def test_malformed_and_hostile_xml_is_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_xml(body)
    assert refused.value.status == 400


def test_reply_xml_survives_cdata_breakers() -> None:
    reply = parse_xml(text_reply("u", "a", "x]]>y<script>"))
    assert reply["Content"] == "x]]>y<script>" and reply["MsgType"] == "text"
