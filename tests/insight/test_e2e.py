"""The real assistant, started once as `make run` starts it: conversations on REST, the widget's
socket.io and WeChat, then the turns synced from its tracker store and counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Iterator

import pytest
import requests
import sqlalchemy as sa

from insight import tables
from insight.sources import Sources
from insight.store import InsightStore, turns
from insight.sync import sync
from tests.e2e.servers import TOKEN, Servers, running
from tests.e2e.test_webchat import converse
from tests.e2e.test_wechat import APP, event_xml, post_plain, reply_content, text_xml
from tests.e2e.test_wechat import TOKEN as WECHAT_TOKEN

pytestmark = [pytest.mark.model, pytest.mark.servers]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("insight-e2e")
    env = {"WECHAT_TOKEN": WECHAT_TOKEN, "WECHAT_APPID": APP, "WECHAT_APPSECRET": "s",
           "WECHAT_API_BASE": "http://127.0.0.1:9", "DATABASE_URL": f"sqlite:///{tmp / 'zhuqi.db'}"}
    with running(tmp, env) as servers:
        yield servers


def test_rest_widget_and_wechat_turns_are_counted(assistant: Servers) -> None:
    for text in ("开公司最快多久能拿到执照", "今天天气怎么样", "转人工", "13812345678"):
        assert assistant.say("insight-rest", text)
    asyncio.run(converse(assistant.url, ["办个证", "施工许可多少个工作日"]))  # no topic yet: asked back
    assert "助企帮帮团" in reply_content(post_plain(assistant, event_xml("o-insight", "subscribe")))
    assert "区市场监管局" in reply_content(post_plain(assistant, text_xml("o-insight", "开公司要多久")))

    store = InsightStore(assistant.channels_db)
    synced = sync(f"sqlite:///{assistant.tracker_db}", store)
    assert synced.turns == 8 and sync(f"sqlite:///{assistant.tracker_db}", store).turns == 0
    by_channel: dict[str, Counter] = {}
    for row in tables.daily(Sources.of(assistant.channels_db)):  # one day, or two around midnight
        by_channel.setdefault(row.channel, Counter()).update(
            {"questions": row.questions, "answered": row.answered, "asked_back": row.asked_back,
             "out_of_scope": row.out_of_scope, "handed_over": row.handed_over})
    assert by_channel == {
        "rest": Counter(questions=3, answered=1, out_of_scope=1, handed_over=1),
        "socketio": Counter(questions=2, answered=1, asked_back=1),
        "wechat": Counter(questions=1, answered=1),
    }
    found = store.turns()
    assert [t.kind for t in found if t.channel == "wechat"] == ["chitchat", "question"]
    assert [(t.kind, t.text) for t in found if t.channel == "rest"][-1] == ("form", None)
    model = requests.get(f"{assistant.url}/status", params={"token": TOKEN}, timeout=10).json()["model_id"]
    assert {t.model_id for t in found} == {model}
    with store.engine.connect() as db:
        cells = [str(value) for row in db.execute(sa.select(turns)) for value in row]
    assert not [cell for cell in cells if "13812345678" in cell]
