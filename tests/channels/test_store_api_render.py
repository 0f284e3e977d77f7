"""Shared SQL state, the customer-service API client against a local stand-in, and rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels import render
from channels.store import ChannelStore
from channels.wechat_api import CustomerServiceAPI, DeliveryError
from tests.channels.standin import StandIn, stand_in  # noqa: F401  (fixture)


@pytest.fixture
def store(tmp_path: Path) -> ChannelStore:
    return ChannelStore(f"sqlite:///{tmp_path / 'channels.db'}")


def test_a_message_is_claimed_once_even_by_another_process(store: ChannelStore, tmp_path: Path) -> None:
    other_process = ChannelStore(f"sqlite:///{tmp_path / 'channels.db'}")
    assert store.claim("wechat:1", "wechat", "u") is True
    assert other_process.claim("wechat:1", "wechat", "u") is False
    store.finish("wechat:1", "答复", "pending")
    assert other_process.take_reply("wechat:1", "passive") == "答复"
    assert store.take_reply("wechat:1", "api") is None  # delivered once
    assert store.state("wechat:1") == ("答复", "passive")


def test_choices_and_tokens_are_shared(store: ChannelStore, tmp_path: Path) -> None:
    store.offer("u", ["/tax", "/tax_dispute"])
    assert ChannelStore(f"sqlite:///{tmp_path / 'channels.db'}").offered("u") == ["/tax", "/tax_dispute"]
    store.save_token("wechat:app", "T1", expires_at=9e12)
    store.drop_token("wechat:app", "T0")  # someone else's stale token: ours stays
    assert store.token("wechat:app") == "T1"
    store.save_token("wechat:old", "T2", expires_at=1)
    assert store.token("wechat:old") is None


def test_token_is_fetched_once_and_shared(stand_in: str, store: ChannelStore) -> None:
    first = CustomerServiceAPI("wechat", stand_in, "wx1", "secret", store)
    second = CustomerServiceAPI("wechat", stand_in, "wx1", "secret", store)  # another process
    first.send_text("o-user", "你好")
    second.send_text("o-user", "再见")
    paths = [c[0] for c in StandIn.calls]
    assert paths == ["/cgi-bin/token", "/cgi-bin/message/custom/send", "/cgi-bin/message/custom/send"]
    assert StandIn.calls[1][1]["access_token"] == ["TOKEN-1"] == StandIn.calls[2][1]["access_token"]
    assert StandIn.calls[1][2] == {"touser": "o-user", "msgtype": "text", "text": {"content": "你好"}}


def test_an_invalid_token_is_refreshed_once_and_retried(stand_in: str, store: ChannelStore) -> None:
    StandIn.send_answers = [{"errcode": 40001, "errmsg": "invalid credential"}, {"errcode": 0}]
    CustomerServiceAPI("wechat", stand_in, "wx1", "secret", store).send_text("o-user", "你好")
    tokens = [c[1]["access_token"][0] for c in StandIn.calls if c[0].endswith("/send")]
    assert tokens == ["TOKEN-1", "TOKEN-2"]


def test_out_of_window_is_reported_not_hidden(stand_in: str, store: ChannelStore) -> None:
    StandIn.send_answers = [{"errcode": 45015, "errmsg": "response out of time limit"}]
    with pytest.raises(DeliveryError) as error:
        CustomerServiceAPI("wechat", stand_in, "wx1", "secret", store).send_text("o-user", "你好")
    assert error.value.out_of_window


def test_wecom_uses_its_own_endpoints(stand_in: str, store: ChannelStore) -> None:
    CustomerServiceAPI("wecom", stand_in, "ww-corp", "secret", store, agent_id="1000002").send_text("zhangsan", "hi")
    assert [c[0] for c in StandIn.calls] == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]
    assert StandIn.calls[0][1]["corpid"] == ["ww-corp"]
    assert StandIn.calls[1][2]["agentid"] == 1000002 and StandIn.calls[1][2]["touser"] == "zhangsan"


def test_buttons_become_numbered_choices_and_a_number_picks_one() -> None:
    text, payloads = render.to_text([{"text": "您是想问下面哪一项？", "buttons": [
        {"title": "融资和信用贷款", "payload": "/credit_loan"}, {"title": "首贷、续贷", "payload": "/first_loan_renewal"}]}])
    assert text.splitlines()[1:3] == ["1. 融资和信用贷款", "2. 首贷、续贷"]
    assert payloads == ["/credit_loan", "/first_loan_renewal"]
    assert render.choice("2", payloads) == "/first_loan_renewal"
    assert render.choice("２", payloads) == "/first_loan_renewal"
    assert render.choice("3", payloads) is None and render.choice("开公司", payloads) is None


def test_a_card_without_text_becomes_short_lines() -> None:
    card = {"type": "service_card", "title": "开办企业", "department": {"id": "scjg", "name": "区市场监管局"},
            "policies": [{"doc": "渝中府办〔2023〕32号", "item": 2}], "channels": [{"name": "“E企办”"}]}
    text, _ = render.to_text([{"custom": card}])
    assert text == "【开办企业】牵头部门：区市场监管局\n依据：渝中府办〔2023〕32号 第2条\n渠道：“E企办”"
    # Rasa sends an answer as its text, then its card: the text carries the card's facts
    assert render.to_text([{"text": "答复"}, {"custom": card}])[0] == "答复"


def test_a_short_answer_offers_the_details() -> None:
    card = {"type": "service_card", "title": "企业注销", "answer": {"unit": "fig_deregistration_1"}}
    text, _ = render.to_text([{"text": "简易注销公告时间由45天压缩到20天（2022年渝中区营商环境报道）。"}, {"custom": card}])
    assert text.splitlines() == ["简易注销公告时间由45天压缩到20天（2022年渝中区营商环境报道）。", render.DETAILS_HINT]


@pytest.mark.parametrize("typed", ["①", "²", "1.5", "", "99"])
def test_only_plain_numbers_pick_a_choice(typed: str) -> None:
    assert render.choice(typed, ["/a", "/b"]) is None


def test_long_replies_are_cut_in_bytes() -> None:
    text, _ = render.to_text([{"text": "开公司" * 1000}])
    assert len(text.encode("utf-8")) <= render.MAX_BYTES and text.endswith("…")


def test_one_rating_per_answer_and_rating_again_changes_it(store: ChannelStore) -> None:
    first, before = store.rate_answer("s-1", "socketio", "满意", "", "utilities", "fagai", "水电气报装…")
    assert before is None
    for _ in range(100):  # a flood of rate events for one answer
        again, before = store.rate_answer("s-1", "socketio", "非常不满意", "太慢", "utilities", "fagai", "水电气报装…")
    assert again == first and before == "非常不满意"
    other = store.rate("s-1", "socketio", "满意", "", "utilities", "fagai", "另一条答复")
    assert other != first
    assert store.rating_counts("topic") == {"utilities": {"非常不满意": 1, "满意": 1}}


def test_ratings_need_a_level_of_the_five(store: ChannelStore) -> None:
    with pytest.raises(ValueError):
        store.rate_answer("s-1", "socketio", "五星", "", "utilities", "fagai", "…")
