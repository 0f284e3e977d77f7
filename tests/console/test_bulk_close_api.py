"""Flood cases over the console's API: the queue counts each case's client's open cases
(`same_client_open`), and a supervisor hands them all back at once
(`POST /api/cases/<id>/close-same-client`), resuming each conversation on Rasa.

A real console process and the stand-in for Rasa's API (tests/console/test_api.py's fixture).
"""

from __future__ import annotations

import time

import pytest
import requests

from cases.repository import BULK_CLOSED, BULK_CLOSED_DETAIL
from console.server import HANDED_BACK, NO_CLIENT
from tests.console.rasa_standin import RasaStandIn
from tests.console.test_api import Console, console, posted  # noqa: F401 - console is a fixture

pytestmark = pytest.mark.servers


def flood_case(console: Console, conversation: str, client: str | None, department: str = "scjg") -> int:
    RasaStandIn.trackers[conversation] = [{"event": "user", "text": "转人工", "timestamp": time.time() - 30}]
    case, new = console.cases.open(conversation, "socketio", "user_request", department, None,
                                   problem="刷屏", client=client)
    assert new
    return case.id


def listed(console: Console, session: requests.Session, **params: str) -> dict[int, dict]:
    answer = session.get(f"{console.url}/api/cases", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return {c["id"]: c for c in answer.json()["cases"]}


def resumed(conversation: str) -> bool:
    return any(isinstance(body, list) and [e["event"] for e in body] == ["resume", "action"]
               for _, body in posted(conversation))


def test_the_queue_counts_the_open_cases_of_each_client(console: Console) -> None:
    ids = [flood_case(console, f"cnt-{n}", "client-count", "scjg" if n < 3 else "shuiwu") for n in range(4)]
    single = flood_case(console, "cnt-single", "client-single")
    anonymous = flood_case(console, "cnt-none", None)
    boss, zhang, li = console.login("boss"), console.login("zhang"), console.login("li")

    everything = listed(console, boss)
    assert [everything[i]["same_client_open"] for i in ids] == [4, 4, 4, 4]
    assert everything[single]["same_client_open"] == 1 and everything[anonymous]["same_client_open"] is None
    # a supervisor's department filter narrows the list, not the count (what close-same-client closes)
    assert listed(console, boss, department="scjg")[ids[0]]["same_client_open"] == 4
    # a specialist counts in her own department only, as her queue is filtered
    assert [listed(console, zhang)[i]["same_client_open"] for i in ids[:3]] == [3, 3, 3]
    assert listed(console, li)[ids[3]]["same_client_open"] == 1

    console.cases.resolve(ids[0], "boss", "handed_back")
    assert listed(console, boss)[ids[1]]["same_client_open"] == 3
    assert listed(console, boss, status="all")[ids[0]]["same_client_open"] == 3  # resolved, client still counted

    detail = boss.get(f"{console.url}/api/cases/{ids[1]}", timeout=10).json()
    assert detail["case"]["same_client_open"] == 3 and detail["permissions"]["close_same_client"] is True
    mine = zhang.get(f"{console.url}/api/cases/{ids[1]}", timeout=10).json()
    assert mine["case"]["same_client_open"] == 2 and mine["permissions"]["close_same_client"] is False
    assert boss.get(f"{console.url}/api/cases/{anonymous}", timeout=10).json()["permissions"][
        "close_same_client"] is False


def test_a_specialist_cannot_bulk_close(console: Console) -> None:
    ids = [flood_case(console, f"spec-{n}", "client-spec") for n in range(3)]
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{ids[0]}/claim")
    calls = len(RasaStandIn.calls)
    for case_id in ids[:2]:  # his own claimed case, a waiting one of his department
        answer = console.post(zhang, f"/api/cases/{case_id}/close-same-client")
        assert answer.status_code == 403, answer.text
    assert [console.cases.get(i).status for i in ids] == ["claimed", "waiting", "waiting"]
    assert len(RasaStandIn.calls) == calls  # nobody resumed
    assert console.post(console.login("li"), f"/api/cases/{ids[1]}/close-same-client").status_code == 403


def test_a_supervisor_closes_every_open_case_of_the_client(console: Console) -> None:
    ids = [flood_case(console, f"bulk-{n}", "client-bulk", "scjg" if n % 2 else "shuiwu") for n in range(5)]
    console.post(console.login("zhang"), f"/api/cases/{ids[1]}/claim")  # claimed: closed too
    console.cases.resolve(ids[4], "boss", "handed_back")  # resolved before: skipped
    other = flood_case(console, "bulk-other", "client-other")
    boss = console.login("boss")

    answer = console.post(boss, f"/api/cases/{ids[0]}/close-same-client")

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["closed"] == 4 and result["closed_ids"] == ids[:4] and result["not_closed"] == []
    assert "4" in result["message"]
    for n, case_id in enumerate(ids[:4]):
        case = console.cases.get(case_id)
        assert (case.status, case.outcome) == ("resolved", "handed_back")
        bulk = console.cases.events(case_id, BULK_CLOSED)
        assert [(e.actor, e.detail) for e in bulk] == [("boss", BULK_CLOSED_DETAIL)]
        assert resumed(f"bulk-{n}")  # the bot is back in each conversation ...
        notice = [body for query, body in posted(f"bulk-{n}") if query.get("execute_side_effects") == ["true"]]
        assert notice[-1][0]["text"] == HANDED_BACK  # ... and the user is told
        assert notice[-1][0]["data"]["custom"]["status"] == "resolved"
    assert not resumed("bulk-4") and console.cases.events(ids[4], BULK_CLOSED) == []
    assert console.cases.get(other).status == "waiting" and not resumed("bulk-other")
    audit = boss.get(f"{console.url}/api/cases/{ids[2]}", timeout=10).json()["events"]
    assert audit[-1]["action"] == BULK_CLOSED and audit[-1]["actor_name"] == "赵主管"
    assert listed(console, boss, status="all")[ids[0]]["same_client_open"] == 0
    again = console.post(boss, f"/api/cases/{ids[0]}/close-same-client").json()  # nothing left: 0, no error
    assert again["closed"] == 0


def test_one_conversation_rasa_cannot_reach_stays_open_and_the_others_close(console: Console) -> None:
    ids = [flood_case(console, f"bulk-hang-{n}", "client-hang") for n in range(3)]
    boss = console.login("boss")
    RasaStandIn.hang.add("bulk-hang-1")
    try:
        result = console.post(boss, f"/api/cases/{ids[0]}/close-same-client").json()
    finally:
        RasaStandIn.hang.discard("bulk-hang-1")
    assert result["closed"] == 2 and result["closed_ids"] == [ids[0], ids[2]] and result["not_closed"] == [ids[1]]
    assert console.cases.get(ids[1]).status == "waiting"  # never left paused without a case
    assert [e.action for e in console.cases.events(ids[1])] == ["opened", "notice_failed"]
    assert [console.cases.get(i).status for i in (ids[0], ids[2])] == ["resolved", "resolved"]


def test_a_case_without_a_client_is_refused(console: Console) -> None:
    anonymous = flood_case(console, "bulk-anon", None)
    answer = console.post(console.login("boss"), f"/api/cases/{anonymous}/close-same-client")
    assert answer.status_code == 400 and answer.json()["error"] == NO_CLIENT
    assert console.cases.get(anonymous).status == "waiting" and not resumed("bulk-anon")
    assert console.post(console.login("boss"), "/api/cases/999999/close-same-client").status_code == 404


def test_bulk_close_must_be_json_from_the_console_itself(console: Console) -> None:
    ids = [flood_case(console, f"bulk-csrf-{n}", "client-csrf") for n in range(2)]
    boss = console.login("boss")
    form = boss.post(f"{console.url}/api/cases/{ids[0]}/close-same-client", data={"x": "1"}, timeout=10)
    foreign = boss.post(f"{console.url}/api/cases/{ids[0]}/close-same-client", json={}, timeout=10,
                        headers={"Origin": "https://evil.example"})
    anonymous = requests.post(f"{console.url}/api/cases/{ids[0]}/close-same-client", json={}, timeout=10)
    assert (form.status_code, foreign.status_code, anonymous.status_code) == (403, 403, 401)
    assert [console.cases.get(i).status for i in ids] == ["waiting", "waiting"]
    assert not resumed("bulk-csrf-0")
