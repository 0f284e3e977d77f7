"""Turn rules, masking, the tracker store's URL and the case target, without a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from insight.privacy import conversation_key, mask
from insight.tables import target_hours
from insight.tracker import ROOT, TrackerStoreError, tracker_url
from insight.turns import Deriver, Turn
from tests.insight import day
from tests.insight.rasa_events import Card, Conversation

RECORDED = json.loads((Path(__file__).parent / "recorded_shapes.json").read_text(encoding="utf-8"))["shapes"]


def derive(*conversations: Conversation) -> list[Turn]:
    deriver, found, number = Deriver(lambda sender: sender), [], 0
    for conversation in conversations:
        for message in conversation.messages:
            for event in message:
                number += 1
                turn = deriver.feed(number, conversation.sender, event.type_name, event.as_dict())
                found += [turn] if turn else []
    return found + deriver.finish()


def test_the_builders_write_the_shapes_a_real_run_wrote() -> None:
    built: dict[str, list[dict]] = {}
    for conversation in day.part_one().values():
        for event in (e for message in conversation.messages for e in message):
            built.setdefault(event.type_name, []).append(event.as_dict())
    assert set(built) == set(RECORDED)
    for type_name, written in built.items():
        recorded = RECORDED[type_name]
        for event in written:
            assert sorted(event) == recorded["event"], type_name
            assert set(event["metadata"]) <= {"model_id", "assistant_id", "is_external", "utter_action", "template",
                                              "staff"}
            if type_name == "user":
                assert set(event["parse_data"]) <= set(recorded["parse_data"])
            custom = (event.get("data") or {}).get("custom")
            if type_name == "bot" and isinstance(custom, dict):
                assert sorted(custom) == recorded[f"custom:{custom['type']}"]
                if custom.get("answer"):
                    assert sorted(custom["answer"]) == recorded["custom:service_card:answer"]


def test_a_terminal_answer_without_its_card_is_answered() -> None:
    shell = Conversation("me", "cmdline", day.at(9))
    shell.said("开公司要多久", "company_opening", 0.9, "action_answer_topic", "全流程办理时限压减至0.5天。")
    (turn,) = derive(shell)
    assert (turn.kind, turn.outcome, turn.channel) == ("question", "answered", "cmdline")


@pytest.mark.parametrize("action, reply, kind", [
    ("action_answer_topic", None, "no_reply"),  # the action server failed: nothing said
    ("action_rate_service", "请点选上面的五个评价之一。", "other"),
])
def test_a_message_nothing_answered(action: str, reply: str | None, kind: str) -> None:
    talk = Conversation("u", "rest", day.at(9))
    talk.said("随便说点什么", "nlu_fallback", 0.3, action, reply)
    (turn,) = derive(talk)
    assert (turn.kind, turn.outcome, turn.text) == (kind, None, "随便说点什么")


def test_the_topic_of_a_handoff_is_the_conversations() -> None:
    talk = Conversation("u", "wechat", day.at(9))
    talk.answer("开公司要多久", "company_opening", 0.94, day.OPENING_TIME)
    talk.hand_over("转人工", "human_handoff", 0.97, "user_request", "scjg")
    talk.form("13812345678", "handoff_contact", "13812345678", "handoff_company", "out_of_scope", 0.65)
    answered, handed, form = derive(talk)
    assert (handed.outcome, handed.topic, handed.department, handed.handoff_reason) == (
        "handed_over", "company_opening", "scjg", "user_request")
    assert (form.kind, form.text, form.intent, form.topic) == ("form", None, "out_of_scope", None)


def test_a_card_carrying_the_kb_version_gives_it_to_the_turn() -> None:
    talk = Conversation("u", "rest", day.at(9))
    versioned = Card({**day.OPENING_TIME, "kb_version": "kb-3f2a9c"})
    versioned.reply = day.OPENING_TIME.reply
    talk.answer("开公司要多久", "company_opening", 0.94, versioned)
    (turn,) = derive(talk)
    assert (turn.kb_version, turn.model_id) == ("kb-3f2a9c", "08c8b0a8e55e422494048adb3f71bf3d")


def test_low_confidence_questions_keep_their_masked_text() -> None:
    talk = Conversation("u", "rest", day.at(9))
    talk.choices("我手机13812345678能查执照进度吗", 0.31)
    (turn,) = derive(talk)
    assert (turn.outcome, turn.confidence, turn.text) == ("asked_back", 0.31, "我手机***********能查执照进度吗")


@pytest.mark.parametrize("typed, kept", [
    ("我电话13812345678", "我电话***********"),
    ("138 1234 5678 找谁", "*** **** **** 找谁"),
    ("手机：+86 138-1234-5678", "手机：+** ***-****-****"),
    ("座机023-63765360", "座机***-********"),
    ("身份证50010319900101123X", "身份证******************"),
    ("１３８１２３４５６７８", "***********"),  # full-width digits
    ("邮箱 zhang.san@163.com 联系", "邮箱 *****.***@***.*** 联系"),
    ("微信 zhang_san88", "微信 ***********"),
    ("加我wxid_abcdef123", "加我****_*********"),
    ("施工许可45个工作日", "施工许可45个工作日"),
    ("2023-10-12交的材料", "2023-10-12交的材料"),
    ("渝中府办〔2023〕32号第20条", "渝中府办〔2023〕32号第20条"),
    ("贷款100万，利率3.45%", "贷款100万，利率3.45%"),
    ("I use wechat payments", "I use wechat payments"),
])
def test_contact_like_text_is_masked(typed: str, kept: str) -> None:
    assert mask(typed) == kept


def test_conversation_keys_are_stable_and_keyed() -> None:
    assert conversation_key("k", "o-1") == conversation_key("k", "o-1") != conversation_key("k2", "o-1")
    assert len(conversation_key("k", "o-1")) == 32 and "o-1" not in conversation_key("k", "o-1")


def _endpoints(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "endpoints.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_tracker_store_is_found_as_rasa_finds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracker_url() == f"sqlite:///{ROOT / 'tracker.db'}"  # endpoints.yml: relative to the project
    assert tracker_url(ROOT / "docker" / "endpoints.yml") == "sqlite:////app/var/tracker.db"
    monkeypatch.setenv("TRACKER_PASSWORD", "s3cret")
    production = _endpoints(tmp_path, "tracker_store:\n  type: SQL\n  dialect: postgresql\n  host: db.internal\n"
                                      "  port: 5433\n  db: rasa\n  username: rasa\n  password: ${TRACKER_PASSWORD}\n")
    assert tracker_url(production) == "postgresql://rasa:s3cret@db.internal:5433/rasa"


@pytest.mark.parametrize("text", ["action_endpoint:\n  url: http://localhost:5055/webhook\n",
                                  "tracker_store:\n  type: redis\n  url: localhost\n"])
def test_only_an_sql_tracker_store_can_be_read(tmp_path: Path, text: str) -> None:
    with pytest.raises(TrackerStoreError, match="no SQL tracker store"):
        tracker_url(_endpoints(tmp_path, text))


@pytest.mark.parametrize("value, hours", [(None, 24.0), ("", 24.0), ("48", 48.0), ("0.5", 0.5)])
def test_the_case_target(value: str | None, hours: float) -> None:
    assert target_hours({} if value is None else {"CASE_TARGET_HOURS": value}) == hours


@pytest.mark.parametrize("value", ["0", "-3", "a day", "inf", "nan"])
def test_a_bad_case_target_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="CASE_TARGET_HOURS"):
        target_hours({"CASE_TARGET_HOURS": value})


def test_the_apology_of_a_failed_action_server_is_its_own_kind_not_an_answer() -> None:
    import rasa_patches
    from insight.turns import APOLOGY_MARK

    assert APOLOGY_MARK == rasa_patches.UNAVAILABLE_MARK
    talk = Conversation("u", "rest", day.at(9))
    talk.said("开公司要多久", "company_opening", 0.94, "action_answer_topic", rasa_patches.UNAVAILABLE)
    bot = next(e for e in talk.messages[-1] if e.type_name == "bot")
    bot.metadata["apology"] = APOLOGY_MARK  # as rasa_patches.apology() writes it
    (turn,) = derive(talk)
    assert (turn.kind, turn.outcome) == ("unavailable", None)
