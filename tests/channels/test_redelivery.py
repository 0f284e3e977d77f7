"""channels/redelivery.py: which ids a client may give, and which answer a resent message gets."""

from __future__ import annotations

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

from channels import redelivery


@pytest.mark.parametrize("value, kept", [
    ("3f2a9c0d1e4b5a6c7d8e9f00", True),
    ("msg_0001-abc", True),
    ("short", False),  # under 8 characters: a counter, not an id a client made
    ("x" * 65, False),
    ("<script>alert(1)</script>", False),
    ("中文的编号中文的编号", False),
    (12345678, False),
    (None, False),
])
def test_only_an_id_a_client_could_have_made_is_kept(value: object, kept: bool) -> None:
    assert redelivery.message_id_of({"message_id": value}) == (value if kept else None)


def test_a_message_without_an_id_is_not_acknowledged() -> None:
    assert redelivery.ack(redelivery.ACK_ANSWERED, None) is None
    assert redelivery.ack(redelivery.ACK_FAILED, "m-12345678") == {"message_id": "m-12345678", "status": "failed"}


def turn(text: str, message_id: str, *answers: str) -> list:
    return [UserUttered(text, message_id=message_id), ActionExecuted("action_answer_topic"),
            *[BotUttered(a) for a in answers], SlotSet("topic", "x"), ActionExecuted("action_listen")]


def test_a_resent_message_gets_the_answer_of_its_own_turn() -> None:
    events = [*turn("开公司要多久", "id-first-1", "营业执照受理审核时间压减到2小时以内"),
              *turn("在哪办", "id-second-2", "区政务服务中心", "负责部门：区市场监管局"),
              *turn("在哪办", "id-third-3", "另一个答复")]
    assert [e.text for e in redelivery.answer_of(events, "id-second-2")] == ["区政务服务中心", "负责部门：区市场监管局"]
    assert [e.text for e in redelivery.answer_of(events, "id-third-3")] == ["另一个答复"]


def test_a_message_the_tracker_never_saw_has_no_answer() -> None:
    events = turn("开公司要多久", "id-first-1", "答复")
    assert redelivery.answer_of(events, "id-missing-9") is None
    assert redelivery.answer_of([], "id-first-1") is None
    assert redelivery.answer_of(turn("转人工", "id-quiet-1"), "id-quiet-1") == []  # a turn with no answer is a turn
