"""The WeChat and WeCom channels on the real assistant, driven by wechatpy as WeChat would.

One assistant runs the Official Account in plain mode and a WeCom app; a second runs the
Official Account in safe mode with a reply window of 50 ms, so every answer takes the slow
path through the customer-service API (a local stand-in that records the calls).
"""

from __future__ import annotations

import random
import re
import string
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
import requests
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

from channels import limits
from channels.wechat_protocol import AESEnvelope, parse_xml, signature
from tests.channels.standin import StandIn
from tests.e2e.servers import Servers, running

pytestmark = [pytest.mark.model, pytest.mark.servers]

TOKEN, KEY = "wechat-token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP, CORP = "wx-test-app", "ww-test-corp"
WECOM_TOKEN, WECOM_KEY = "wecom-token", "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Iterator[Servers]:
    env = {"WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APP, "WECHAT_APPSECRET": "s",
           "WECOM_TOKEN": WECOM_TOKEN, "WECOM_CORP_ID": CORP, "WECOM_AGENT_ID": "1000002",
           "WECOM_SECRET": "s", "WECOM_ENCODING_AES_KEY": WECOM_KEY,
           "WECHAT_API_BASE": "http://127.0.0.1:9", "WECOM_API_BASE": "http://127.0.0.1:9"}
    tmp = tmp_path_factory.mktemp("wechat-plain")
    env["DATABASE_URL"] = f"sqlite:///{tmp / 'channels.db'}"
    with running(tmp, env) as servers:
        yield servers


def stamp() -> str:
    return str(int(time.time()))


def nonce() -> str:
    return "".join(random.choices(string.ascii_letters, k=10))


def signed_params(token: str = TOKEN, timestamp: str | None = None) -> dict[str, str]:
    ts, n = timestamp or stamp(), nonce()
    return {"timestamp": ts, "nonce": n, "signature": signature(token, ts, n)}


def text_xml(user: str, content: str, msg_id: str | None = None, kind: str = "text", extra: str = "") -> str:
    body = f"<Content><![CDATA[{content}]]></Content>" if kind == "text" else ""
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{stamp()}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}{extra}"
            f"<MsgId>{msg_id or random.randint(10**15, 10**16)}</MsgId></xml>")


def event_xml(user: str, event: str, key: str = "") -> str:
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{stamp()}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>")


def post_plain(servers: Servers, xml: str, params: dict | None = None) -> requests.Response:
    return requests.post(f"{servers.url}/webhooks/wechat/webhook", params=params or signed_params(),
                         data=xml.encode("utf-8"), timeout=30)


def reply_content(answer: requests.Response) -> str:
    assert answer.status_code == 200, answer.text
    return parse_xml(answer.content)["Content"]


def test_url_verification(plain: Servers) -> None:
    params = {**signed_params(), "echostr": "echo-123"}
    assert requests.get(f"{plain.url}/webhooks/wechat/webhook", params=params, timeout=10).text == "echo-123"
    bad = {**params, "signature": "0" * 40}
    assert requests.get(f"{plain.url}/webhooks/wechat/webhook", params=bad, timeout=10).status_code == 403


def test_plain_text_round_trip_and_the_openid_is_the_conversation(plain: Servers) -> None:
    answer = post_plain(plain, text_xml("o-owner-1", "简易注销公告要公示多少天"))
    reply = parse_xml(answer.content)
    assert reply["ToUserName"] == "o-owner-1" and reply["FromUserName"] == "gh_account"
    first, second, hint = reply["Content"].split("\n")
    assert first == "简易注销公告时间由45天压缩到20天（2022年渝中区营商环境报道）。"
    assert second.startswith("负责部门：区市场监管局") and "「详情」" in hint
    assert plain.user_turns("wechat:o-owner-1") == ["简易注销公告要公示多少天"]
    # 「详情」 returns the rest of the card: items, co-responsible units, channels — within WeChat's limit
    details = reply_content(post_plain(plain, text_xml("o-owner-1", "详情")))
    assert "【企业注销】" in details and "渝中府办〔2021〕16号 第5条" in details and "办理渠道：" in details
    assert len(details.encode("utf-8")) <= 2048


@pytest.mark.parametrize("question, first_line", [
    ("办营业执照要交多少钱", "全流程“零成本”"),
    ("首贷续贷中心的电话是多少", "现有政策文件没有公布"),
    ("专利可以质押贷款吗", "可以。"),
])
def test_the_first_line_answers_the_question(plain: Servers, question: str, first_line: str) -> None:
    content = reply_content(post_plain(plain, text_xml(f"o-asks-{len(question)}", question)))
    assert first_line in content.split("\n")[0]
    assert len(content.encode("utf-8")) <= 2048


def test_retries_make_one_turn_and_one_answer(plain: Servers) -> None:
    xml = text_xml("o-owner-2", "贷款快到期了想续贷，找哪里", msg_id="777000111222")
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: post_plain(plain, xml), range(3)))
    contents = [a.text for a in answers if a.status_code == 200 and "<xml>" in a.text]
    assert len(contents) == 1 and "区金融办" in parse_xml(contents[0])["Content"]
    assert all(a.status_code == 200 for a in answers)
    assert post_plain(plain, xml).text == "success"  # a late retry: no second answer
    assert plain.user_turns("wechat:o-owner-2") == ["贷款快到期了想续贷，找哪里"]


@pytest.mark.parametrize("make, status", [
    (lambda: (text_xml("o-bad", "你好"), {**signed_params(), "signature": "f" * 40}), 403),
    (lambda: (text_xml("o-bad", "你好"), signed_params(timestamp=str(int(time.time()) - 3600))), 403),
    (lambda: ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
              '<xml><Content>&b;</Content></xml>', signed_params()), 400),
    (lambda: ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><C>&e;</C></xml>',
              signed_params()), 400),
    (lambda: ("<xml><Content>broken", signed_params()), 400),
    (lambda: ("<xml>" + "x" * (1024 * 1024 + 1) + "</xml>", signed_params()), 413),
])
def test_bad_input_is_refused_without_a_turn_and_loses_nothing(plain: Servers, make, status: int) -> None:
    xml, params = make()
    assert post_plain(plain, xml, params).status_code == status
    assert "区市场监管局" in reply_content(post_plain(plain, text_xml("o-after-bad", "注销公司找哪个部门")))
    assert plain.user_turns("wechat:o-bad") == []  # the refused requests made no turn


def test_events_and_message_types(plain: Servers) -> None:
    welcome = reply_content(post_plain(plain, event_xml("o-events", "subscribe")))
    assert "助企帮帮团" in welcome and "1. 开办企业" in welcome  # buttons as numbered choices
    assert "区市场监管局" in reply_content(post_plain(plain, text_xml("o-events", "1")))  # picks choice 1
    assert "区金融办" in reply_content(post_plain(plain, event_xml("o-events", "CLICK", "first_loan_renewal")))
    voice = text_xml("o-events", "", kind="voice",
                     extra="<MediaId><![CDATA[m]]></MediaId><Recognition><![CDATA[施工许可要多少个工作日]]></Recognition>")
    assert "45个工作日" in reply_content(post_plain(plain, voice))
    image = text_xml("o-events", "", kind="image", extra="<PicUrl><![CDATA[http://x/y.jpg]]></PicUrl>")
    assert "文字和语音" in reply_content(post_plain(plain, image))
    assert post_plain(plain, event_xml("o-events", "unsubscribe")).text == "success"
    assert plain.user_turns("wechat:o-events") == ["/greet", "/company_opening", "/first_loan_renewal", "施工许可要多少个工作日"]


def test_wecom_verification_and_encrypted_round_trip(plain: Servers) -> None:
    envelope = AESEnvelope(WECOM_TOKEN, WECOM_KEY, CORP)
    echostr, ts, n = envelope.encrypt("wecom-echo"), stamp(), nonce()
    params = {"msg_signature": signature(WECOM_TOKEN, ts, n, echostr), "timestamp": ts, "nonce": n, "echostr": echostr}
    assert requests.get(f"{plain.url}/webhooks/wecom/webhook", params=params, timeout=10).text == "wecom-echo"

    crypto = WeComCrypto(WECOM_TOKEN, WECOM_KEY, CORP)
    ts, n = stamp(), nonce()
    sealed = crypto.encrypt_message(text_xml("zhangsan", "专利能拿去质押贷款吗"), n, ts)
    fields = parse_xml(sealed)
    answer = requests.post(f"{plain.url}/webhooks/wecom/webhook",
                           params={"msg_signature": fields["MsgSignature"], "timestamp": ts, "nonce": n},
                           data=sealed.encode(), timeout=30)
    envelope_reply = parse_xml(answer.content)
    inner = crypto.decrypt_message(answer.content, envelope_reply["MsgSignature"], envelope_reply["TimeStamp"],
                                   envelope_reply["Nonce"])
    assert re.search(r"可以。.*（渝中府办〔20\d\d〕\d+号 第\d+条）。", inner) and "负责部门：区市场监管局" in inner
    assert plain.user_turns("wecom:zhangsan") == ["专利能拿去质押贷款吗"]


@pytest.fixture(scope="module")
def safe_and_slow(tmp_path_factory) -> Iterator[tuple[Servers, str]]:
    """Safe mode, and a 50 ms reply window: every answer goes through the API stand-in."""
    import threading
    from http.server import HTTPServer

    StandIn.calls, StandIn.tokens, StandIn.send_answers = [], iter(["TOKEN-A", "TOKEN-B"]), [
        {"errcode": 40001, "errmsg": "invalid credential"}]
    api = HTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    tmp = tmp_path_factory.mktemp("wechat-safe")
    env = {"WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APP, "WECHAT_APPSECRET": "s", "WECHAT_ENCODING_AES_KEY": KEY,
           "WECHAT_API_BASE": f"http://127.0.0.1:{api.server_port}", "WECHAT_REPLY_WINDOW": "0.05",
           "WECHAT_RETRY_WINDOW": "3",
           "DATABASE_URL": f"sqlite:///{tmp / 'channels.db'}"}
    try:
        with running(tmp, env) as servers:
            yield servers, f"http://127.0.0.1:{api.server_port}"
    finally:
        api.shutdown()


def test_safe_mode_slow_path_delivers_through_the_api(safe_and_slow) -> None:
    servers, _ = safe_and_slow
    crypto = WeChatCrypto(TOKEN, KEY, APP)
    ts, n = stamp(), nonce()
    sealed = crypto.encrypt_message(text_xml("o-slow", "水电气报装要几个工作日"), n, ts)
    fields = parse_xml(sealed)
    params = {**signed_params(), "timestamp": ts, "nonce": n, "encrypt_type": "aes",
              "msg_signature": fields["MsgSignature"], "signature": signature(TOKEN, ts, n)}
    answer = requests.post(f"{servers.url}/webhooks/wechat/webhook", params=params, data=sealed.encode(), timeout=30)
    assert answer.status_code == 200 and answer.text == "success"  # at once, within WeChat's 5 s
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(c[0].endswith("/custom/send") and c[2].get("touser") == "o-slow"
                                                  and "8个工作日" in c[2]["text"]["content"] for c in StandIn.calls):
        time.sleep(0.2)
    sends = [c for c in StandIn.calls if c[0] == "/cgi-bin/message/custom/send"]
    assert sends and "8个工作日" in sends[-1][2]["text"]["content"]
    # 40001 on the first send: one refresh, one retry with the new token
    assert [c[1]["access_token"][0] for c in sends] == ["TOKEN-A", "TOKEN-B"]
    assert [c[0] for c in StandIn.calls].count("/cgi-bin/token") == 2


def test_safe_mode_refuses_plain_messages(safe_and_slow) -> None:
    servers, _ = safe_and_slow
    answer = requests.post(f"{servers.url}/webhooks/wechat/webhook", params=signed_params(),
                           data=text_xml("o-plain", "你好").encode(), timeout=10)
    assert answer.status_code == 403


def test_an_oversized_chunked_body_is_refused_without_reading_it_all(plain: Servers) -> None:
    def chunks():  # no Content-Length: the size is only known while streaming
        yield b"<xml><Content>"
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB in all
    answer = requests.post(f"{plain.url}/webhooks/wechat/webhook", params=signed_params(), data=chunks(), timeout=30)
    assert answer.status_code == 413
    assert "区市场监管局" in reply_content(post_plain(plain, text_xml("o-after-big", "注销公司找哪个部门")))


def _safe_post(servers: Servers, user: str, text: str, msg_id: str) -> requests.Response:
    crypto = WeChatCrypto(TOKEN, KEY, APP)
    ts, n = stamp(), nonce()
    sealed = crypto.encrypt_message(text_xml(user, text, msg_id=msg_id), n, ts)
    params = {"timestamp": ts, "nonce": n, "encrypt_type": "aes", "signature": signature(TOKEN, ts, n),
              "msg_signature": parse_xml(sealed)["MsgSignature"]}
    return requests.post(f"{servers.url}/webhooks/wechat/webhook", params=params, data=sealed.encode(), timeout=30)


def test_a_retry_waiting_for_a_slow_answer_carries_it_passively(safe_and_slow) -> None:
    servers, _ = safe_and_slow
    with ThreadPoolExecutor(2) as pool:
        sent = [pool.submit(_safe_post, servers, "o-retry", "招投标保证金能退吗", "888000111") for _ in range(2)]
        answers = [future.result() for future in sent]
    # whichever arrived first answered "success" at once; the other (the retry) carries the answer
    assert sorted(a.text == "success" for a in answers) == [False, True]
    carried = next(a for a in answers if a.text != "success")
    envelope = parse_xml(carried.content)
    inner = WeChatCrypto(TOKEN, KEY, APP).decrypt_message(carried.content, envelope["MsgSignature"],
                                                           envelope["TimeStamp"], envelope["Nonce"])
    assert "区公共资源交易监管局" in inner
    time.sleep(1)
    assert not any(c[2].get("touser") == "o-retry" for c in StandIn.calls)  # no API quota spent


def _sent_to(user: str, words: str, timeout: float = 20) -> dict:
    """The customer-service message the API stand-in received for user containing words."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path, _, body in list(StandIn.calls):
            if path == "/cgi-bin/message/custom/send" and body.get("touser") == user and words in body["text"]["content"]:
                return body
        time.sleep(0.2)
    pytest.fail(f"nothing with {words!r} sent to {user}: {[c[2] for c in StandIn.calls if c[2]]}")


def test_a_wechat_user_handed_over_gets_staff_replies_until_the_window_closes(safe_and_slow) -> None:
    """Handoff over WeChat: the case, the specialist's reply through the customer-service API,
    and a refused reply (45015: the 48-hour window closed) reported as not delivered."""
    from cases.repository import CaseRepository
    from console.accounts import Accounts

    servers, _ = safe_and_slow
    user = "o-handoff"
    for number, (text, next_question) in enumerate([("转人工", "手机号"), ("微信 zhang_san88", "名称是"),
                                                    ("重庆某某商贸有限公司", "一句话"),
                                                    ("想问进口食品备案找哪里", "案件 #")]):
        answer = _safe_post(servers, user, text, f"77700{number}")
        assert answer.status_code == 200
        if answer.text == "success":  # too slow for the 50 ms window: through the API
            _sent_to(user, next_question)
        else:  # ready in time: the passive reply
            envelope = parse_xml(answer.content)
            assert next_question in WeChatCrypto(TOKEN, KEY, APP).decrypt_message(
                answer.content, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    case = CaseRepository(servers.channels_db).open_case_of(f"wechat:{user}")
    assert (case.channel, case.contact, case.company) == ("wechat", "微信 zhang_san88", "重庆某某商贸有限公司")

    Accounts(servers.channels_db).add("wx_fagai", "wechat-e2e-pass", "specialist", case.department, "孙专员")
    staff = requests.Session()
    staff.post(f"{servers.console_url}/api/login", json={"username": "wx_fagai", "password": "wechat-e2e-pass"},
               timeout=10).raise_for_status()
    detail = staff.get(f"{servers.console_url}/api/cases/{case.id}", timeout=10).json()
    assert detail["reach"]["reachable"] and detail["reach"]["window_closes_at"] > time.time() + 47 * 3600
    assert staff.post(f"{servers.console_url}/api/cases/{case.id}/claim", json={}, timeout=30).status_code == 200
    greeting = _sent_to(user, "已接手您的问题")
    assert greeting["text"]["content"].startswith("【区发展改革委 孙专员】")
    sent = staff.post(f"{servers.console_url}/api/cases/{case.id}/reply", json={"text": "进口食品备案在区商务委。"},
                      timeout=30).json()
    assert sent["delivered"] is True and _sent_to(user, "进口食品备案在区商务委")

    StandIn.send_answers.append({"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"})
    refused = staff.post(f"{servers.console_url}/api/cases/{case.id}/reply", json={"text": "还在吗？"}, timeout=30)
    assert refused.status_code == 200 and refused.json()["delivered"] is False
    assert "48 小时" in refused.json()["message"] and "zhang_san88" in refused.json()["message"]
    detail = staff.get(f"{servers.console_url}/api/cases/{case.id}", timeout=10).json()
    assert detail["reach"]["reachable"] is False and detail["events"][-1]["action"] == "reply_failed"

    # resolved: the bot is back and asks for a rating as numbered choices; 「2」 is 满意
    assert staff.post(f"{servers.console_url}/api/cases/{case.id}/resolve", json={}, timeout=30).status_code == 200
    assert "2. 满意" in _sent_to(user, "请为这次人工服务评价")["text"]["content"]
    answer = _safe_post(servers, user, "2", "777010")
    if answer.text == "success":
        _sent_to(user, "谢谢您的评价")
    assert CaseRepository(servers.channels_db).get(case.id).rating == "满意"


def test_a_message_while_a_person_has_it_is_acknowledged_once(plain: Servers) -> None:
    """The paused bot says nothing; the channel tells the user a person has it, not every time,
    and how to stop waiting."""
    user = "o-waiting"
    for text in ("转人工", "跳过", "跳过"):
        reply_content(post_plain(plain, text_xml(user, text)))
    assert "案件 #" in reply_content(post_plain(plain, text_xml(user, "想问问开餐馆要办哪些证")))
    noticed = reply_content(post_plain(plain, text_xml(user, "在吗")))
    assert "已转给工作人员（案件 #" in noticed and "排队" in noticed and "回复「取消」" in noticed
    again = post_plain(plain, text_xml(user, "还在吗"))
    assert again.status_code == 200 and again.text == "success"  # told a moment ago: silence
    # 「取消」 ends the wait: the case is closed as the user's, the bot answers again
    assert "已结束人工服务" in reply_content(post_plain(plain, text_xml(user, "取消")))
    assert "区市场监管局" in reply_content(post_plain(plain, text_xml(user, "公司注册要多久")))


def test_a_message_over_the_limit_gets_the_refusal_as_its_passive_reply(plain: Servers) -> None:
    started = time.monotonic()
    refusal = reply_content(post_plain(plain, text_xml("o-long", "开公司要多久" * 1667)))  # 10,002 characters
    assert refusal == limits.TOO_LONG and time.monotonic() - started < 1.0
    assert "区市场监管局" in reply_content(post_plain(plain, text_xml("o-long", "注销公司找哪个部门")))
    assert plain.user_turns("wechat:o-long") == ["注销公司找哪个部门"]  # the long one made no turn


def test_a_wecom_message_over_the_limit_is_refused_too(plain: Servers) -> None:
    crypto = WeComCrypto(WECOM_TOKEN, WECOM_KEY, CORP)
    ts, n = stamp(), nonce()
    sealed = crypto.encrypt_message(text_xml("lisi", "开" * (limits.MAX_CHARS + 1)), n, ts)
    answer = requests.post(f"{plain.url}/webhooks/wecom/webhook",
                           params={"msg_signature": parse_xml(sealed)["MsgSignature"], "timestamp": ts, "nonce": n},
                           data=sealed.encode(), timeout=30)
    envelope = parse_xml(answer.content)
    inner = crypto.decrypt_message(answer.content, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    assert parse_xml(inner)["Content"] == limits.TOO_LONG
    assert plain.user_turns("wecom:lisi") == []


def test_control_characters_are_cleaned(plain: Servers) -> None:
    # XML cannot carry NUL or most C0 controls (400, above); DEL and the C1 controls it can
    content = reply_content(post_plain(plain, text_xml("o-controls", "开公司\x7f\x85要多久")))
    assert "区市场监管局" in content
    assert plain.user_turns("wechat:o-controls") == ["开公司要多久"]
    assert post_plain(plain, text_xml("o-controls", "开公司\0要多久")).status_code == 400
