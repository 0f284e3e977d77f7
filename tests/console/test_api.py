"""The console's API over HTTP: sessions, every transition, every permission, delivery.

A real console process (python -m console) on a free port, a fresh SQLite database, and a
stand-in for Rasa's HTTP API recording the events the console posts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from cases.repository import CaseRepository
from console.accounts import Accounts
from tests.conftest import ROOT
from tests.console import rasa_standin
from tests.console.rasa_standin import RasaStandIn
from tests.e2e.servers import free_port

PASSWORD = "correct horse 1"
pytestmark = pytest.mark.servers


class Console:
    def __init__(self, url: str, db_url: str, rasa_url: str) -> None:
        self.url, self.db_url, self.rasa_url = url, db_url, rasa_url
        self.cases = CaseRepository(db_url)

    def login(self, username: str) -> requests.Session:
        session = requests.Session()
        answer = session.post(f"{self.url}/api/login", json={"username": username, "password": PASSWORD}, timeout=10)
        assert answer.status_code == 200, answer.text
        return session

    def post(self, session: requests.Session, path: str, body: dict | None = None) -> requests.Response:
        return session.post(f"{self.url}{path}", json=body or {}, timeout=10)

    def open_case(self, conversation: str, department: str = "scjg", channel: str = "socketio") -> int:
        RasaStandIn.trackers[conversation] = [
            {"event": "user", "text": "<b>开公司</b>要多久", "timestamp": time.time() - 60},
            {"event": "bot", "text": "开办企业由区市场监管局牵头。", "timestamp": time.time() - 59,
             "data": {"custom": {"type": "service_card", "title": "开办企业", "department": {"name": "区市场监管局"},
                                 "policies": [{"doc": "渝中府办〔2023〕32号", "item": 2, "summary": "1个工作日"}],
                                 "channels": [{"name": "渝快办"}]}}},
            {"event": "user", "text": "转人工", "timestamp": time.time() - 30},
        ]
        case, _ = self.cases.open(conversation, channel, "user_request", department, "company_opening",
                                  "13812345678", "重庆某某科技有限公司", "想问开公司")
        return case.id


def start_console(tmp: Path, db_url: str, rasa_url: str) -> tuple[subprocess.Popen, str]:
    """python -m console on a free port; (process, its URL) once it answers. It gives Rasa
    one second (a hanging stand-in takes longer)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "RASA_URL": rasa_url, "CONSOLE_PORT": str(port),
           "PYTHONPATH": str(ROOT), "RASA_TIMEOUT": "1"}
    log_path = tmp / f"console-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "console"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    pytest.fail(f"console did not start: {log_path.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{tmp / 'cases.db'}"
    accounts = Accounts(db_url)
    accounts.add("zhang", PASSWORD, "specialist", "scjg", "张三")
    accounts.add("wang", PASSWORD, "specialist", "scjg", "王五")
    accounts.add("li", PASSWORD, "specialist", "shuiwu", "李四")
    accounts.add("boss", PASSWORD, "supervisor", None, "赵主管")
    server, rasa_url = rasa_standin.start()
    process, url = start_console(tmp, db_url, rasa_url)
    yield Console(url, db_url, rasa_url)
    process.terminate()
    process.wait(timeout=10)
    server.shutdown()


def posted(conversation: str, what: str = "tracker/events") -> list[tuple[dict, object]]:
    return [(query, body) for method, path, query, body in RasaStandIn.calls
            if method == "POST" and path == f"{conversation}/{what}"]


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/me"), ("GET", "/api/cases"), ("GET", "/api/cases/1"), ("GET", "/api/departments"),
    ("POST", "/api/cases/1/claim"), ("POST", "/api/cases/1/reply"), ("POST", "/api/cases/1/resolve"),
    ("POST", "/api/cases/1/followup"), ("POST", "/api/logout"),
])
def test_no_api_answers_without_a_session(console: Console, method: str, path: str) -> None:
    answer = requests.request(method, f"{console.url}{path}", json={}, timeout=10, allow_redirects=False)
    assert answer.status_code == 401
    assert "登录" in answer.json()["error"]


@pytest.mark.parametrize("path", ["/", "/static/console.js", "/static/console.css", "/static/index.html"])
def test_no_page_answers_without_a_session(console: Console, path: str) -> None:
    answer = requests.get(f"{console.url}{path}", timeout=10, allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"


def test_login_page_is_public_and_a_session_opens_the_app(console: Console) -> None:
    assert 'id="login"' in requests.get(f"{console.url}/login", timeout=10).text
    wrong = requests.post(f"{console.url}/api/login", json={"username": "zhang", "password": "nope"}, timeout=10)
    assert wrong.status_code == 401 and "zhuqi_console" not in wrong.cookies
    session = console.login("zhang")
    cookie = next(c for c in session.cookies if c.name == "zhuqi_console")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Strict"
    assert session.get(f"{console.url}/api/me", timeout=10).json()["user"]["department"] == "scjg"
    assert session.get(f"{console.url}/static/console.js", timeout=10).status_code == 200
    assert "console.js" in session.get(f"{console.url}/", timeout=10).text
    assert console.post(session, "/api/logout").status_code == 200
    assert session.get(f"{console.url}/api/me", timeout=10).status_code == 401


def test_changes_must_be_json_from_the_console_itself(console: Console) -> None:
    session = console.login("zhang")
    case_id = console.open_case("csrf-1")
    form = session.post(f"{console.url}/api/cases/{case_id}/claim", data={"x": "1"}, timeout=10)
    foreign = session.post(f"{console.url}/api/cases/{case_id}/claim", json={}, timeout=10,
                           headers={"Origin": "https://evil.example"})
    assert (form.status_code, foreign.status_code) == (403, 403)
    assert console.cases.get(case_id).status == "waiting"


def test_a_specialist_sees_and_acts_on_own_department_only(console: Console) -> None:
    own, other = console.open_case("dept-own", "scjg"), console.open_case("dept-other", "shuiwu")
    zhang = console.login("zhang")
    listed = {c["id"] for c in zhang.get(f"{console.url}/api/cases", timeout=10).json()["cases"]}
    assert own in listed and other not in listed
    # asking for another department's queue does not widen a specialist's view
    asked = zhang.get(f"{console.url}/api/cases", params={"department": "shuiwu"}, timeout=10).json()["cases"]
    assert other not in {c["id"] for c in asked}
    assert zhang.get(f"{console.url}/api/cases/{other}", timeout=10).status_code == 403
    for action in ("claim", "note", "reassign", "handback"):
        assert console.post(zhang, f"/api/cases/{other}/{action}", {"text": "x", "department": "scjg"}).status_code == 403
    assert console.cases.get(other).status == "waiting"
    boss = console.login("boss")
    everything = {c["id"] for c in boss.get(f"{console.url}/api/cases", timeout=10).json()["cases"]}
    assert {own, other} <= everything
    only_tax = boss.get(f"{console.url}/api/cases", params={"department": "shuiwu"}, timeout=10).json()["cases"]
    assert {c["department"] for c in only_tax} == {"shuiwu"}


@pytest.mark.parametrize("method, action", [
    ("GET", ""), ("POST", "/claim"), ("POST", "/reply"), ("POST", "/note"), ("POST", "/release"),
    ("POST", "/resolve"), ("POST", "/handback"), ("POST", "/reassign"), ("POST", "/followup"),
])
@pytest.mark.parametrize("case_id", ["12345678901234567890123", str(2 ** 31), "0"])
def test_a_case_id_no_database_can_hold_is_not_found(console: Console, method: str, action: str,
                                                       case_id: str) -> None:
    """A 23-digit id in the path overflowed SQLite's INTEGER: 500 with a traceback in the log."""
    boss = console.login("boss")
    answer = boss.request(method, f"{console.url}/api/cases/{case_id}{action}",
                          json={"text": "你好", "department": "scjg"}, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "没有这个案件"


def test_claim_reply_note_resolve_on_the_widget(console: Console) -> None:
    case_id = console.open_case("flow-1")
    zhang, wang = console.login("zhang"), console.login("wang")
    detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    assert detail["permissions"]["claim"] and not detail["permissions"]["reply"]
    assert [m["who"] for m in detail["conversation"]["messages"]] == ["user", "bot", "user"]
    assert detail["conversation"]["messages"][0]["text"] == "<b>开公司</b>要多久"  # as typed; the page escapes
    assert detail["conversation"]["messages"][1]["card"]["items"] == ["渝中府办〔2023〕32号 第2条：1个工作日"]
    assert console.post(zhang, f"/api/cases/{case_id}/reply", {"text": "hi"}).status_code == 403  # not claimed

    claimed = console.post(zhang, f"/api/cases/{case_id}/claim")
    assert claimed.status_code == 200 and claimed.json()["case"]["assignee"] == "zhang"
    query, events = posted("flow-1")[-1]
    assert query["output_channel"] == ["latest"] and query["execute_side_effects"] == ["true"]
    assert events[0]["event"] == "pause" and "张三" in events[1]["text"]
    assert console.post(wang, f"/api/cases/{case_id}/claim").status_code == 403  # no longer waiting
    assert console.post(wang, f"/api/cases/{case_id}/reply", {"text": "我来"}).status_code == 403  # not the owner
    assert console.post(wang, f"/api/cases/{case_id}/resolve").status_code == 403

    assert console.post(zhang, f"/api/cases/{case_id}/reply", {"text": "  "}).status_code == 400
    assert console.post(zhang, f"/api/cases/{case_id}/reply", {"text": "长" * 2001}).status_code == 400
    sent = console.post(zhang, f"/api/cases/{case_id}/reply", {"text": "营业执照一个工作日办结。"})
    assert sent.json() == {"delivered": True, "message": "已送达用户。"}
    _, events = posted("flow-1")[-1]
    assert events == [{**events[0], "event": "bot", "text": "营业执照一个工作日办结。",
                       "metadata": {"staff": {"username": "zhang", "name": "张三", "department": "区市场监管局"}}}]
    assert console.post(wang, f"/api/cases/{case_id}/note", {"text": "<script>x</script>同事备注"}).status_code == 200

    detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    assert detail["conversation"]["messages"][-1] == {**detail["conversation"]["messages"][-1], "who": "staff",
                                                      "staff_name": "张三", "text": "营业执照一个工作日办结。"}
    assert detail["notes"][0]["text"] == "<script>x</script>同事备注"
    assert detail["reach"]["reachable"] and detail["reach"]["can_push"]

    resolved = console.post(zhang, f"/api/cases/{case_id}/resolve")
    assert resolved.status_code == 200 and resolved.json()["case"]["outcome"] == "solved"
    resumed = posted("flow-1")[-1][1]
    assert [(e["event"], e.get("name")) for e in resumed] == [("resume", None), ("action", "action_listen")]
    query, body = posted("flow-1", "trigger_intent")[-1]
    assert body == {"name": "handoff_resolved", "entities": {"case_id": str(case_id)}}
    assert query["output_channel"] == ["latest"]
    assert console.post(zhang, f"/api/cases/{case_id}/resolve").status_code == 403  # resolved already
    actions = [e["action"] for e in zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()["events"]]
    assert actions == ["opened", "claimed", "replied", "replied", "note", "resolved"]


def test_release_puts_the_case_back_in_the_queue(console: Console) -> None:
    case_id = console.open_case("release-1")
    zhang, wang = console.login("zhang"), console.login("wang")
    assert console.post(zhang, f"/api/cases/{case_id}/handback").status_code == 403  # waiting: a supervisor's
    console.post(zhang, f"/api/cases/{case_id}/claim")
    assert console.post(wang, f"/api/cases/{case_id}/release").status_code == 403
    assert console.post(wang, f"/api/cases/{case_id}/handback").status_code == 403  # not his case
    released = console.post(zhang, f"/api/cases/{case_id}/release").json()["case"]
    assert released["status"] == "waiting" and released["assignee"] is None
    assert console.post(wang, f"/api/cases/{case_id}/claim").status_code == 200


def test_a_supervisor_reassigns_and_hands_back(console: Console) -> None:
    case_id = console.open_case("boss-1")
    zhang, boss, li = console.login("zhang"), console.login("boss"), console.login("li")
    assert console.post(zhang, f"/api/cases/{case_id}/reassign", {"department": "shuiwu"}).status_code == 403
    assert console.post(boss, f"/api/cases/{case_id}/reassign", {"department": "nowhere"}).status_code == 400
    moved = console.post(boss, f"/api/cases/{case_id}/reassign", {"department": "shuiwu"}).json()["case"]
    assert moved["department"] == "shuiwu" and moved["status"] == "waiting"
    assert zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).status_code == 403  # left his department
    assert li.get(f"{console.url}/api/cases/{case_id}", timeout=10).status_code == 200
    back = console.post(boss, f"/api/cases/{case_id}/handback").json()["case"]
    assert back["status"] == "resolved" and back["outcome"] == "handed_back"
    (resume_query, resume), (notice_query, notice) = posted("boss-1")[-2:]
    assert [e["event"] for e in resume] == ["resume", "action"] and "execute_side_effects" not in resume_query
    assert notice_query["execute_side_effects"] == ["true"] and "智能助手" in notice[0]["text"]
    assert notice[0]["data"]["custom"] == {"type": "handoff", "case_id": case_id, "department": "shuiwu",
                                           "department_name": "区税务局", "status": "resolved"}


def test_a_refused_notice_cannot_leave_the_user_paused(console: Console) -> None:
    """WeChat refuses the hand-back notice (45015): the bot is resumed all the same."""
    case_id = console.open_case("wx-back-1", channel="wechat")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    RasaStandIn.refuse["wx-back-1"] = 45015
    assert console.post(zhang, f"/api/cases/{case_id}/handback").status_code == 200
    events = RasaStandIn.trackers["wx-back-1"]
    assert [e["event"] for e in events[-2:]] == ["resume", "action"]  # stored: the notice was not
    audit = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()["events"]
    assert [e["action"] for e in audit][-2:] == ["handed_back", "notice_failed"]


def test_a_hanging_assistant_changes_nothing_and_can_be_retried(console: Console) -> None:
    case_id = console.open_case("hang-1")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    RasaStandIn.hang.add("hang-1")
    try:
        detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=30)
        assert detail.status_code == 200 and detail.json()["conversation"]["available"] is False
        stuck = console.post(zhang, f"/api/cases/{case_id}/resolve")
        assert stuck.status_code == 502 and "重试" in stuck.json()["error"]
        assert console.cases.get(case_id).status == "claimed"  # nothing changed: resolve can be tried again
    finally:
        RasaStandIn.hang.discard("hang-1")
    assert console.post(zhang, f"/api/cases/{case_id}/resolve").status_code == 200
    assert console.cases.get(case_id).status == "resolved"


def test_a_wechat_user_out_of_the_window_is_said_to_be_unreachable(console: Console) -> None:
    case_id = console.open_case("wx-openid-1", channel="wechat")
    zhang = console.login("zhang")
    detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    assert detail["reach"]["reachable"] and detail["reach"]["window_closes_at"] > time.time() + 47 * 3600
    console.post(zhang, f"/api/cases/{case_id}/claim")
    RasaStandIn.refuse["wx-openid-1"] = 45015
    sent = console.post(zhang, f"/api/cases/{case_id}/reply", {"text": "请补充材料"}).json()
    assert sent["delivered"] is False and "48 小时" in sent["message"] and "13812345678" in sent["message"]
    detail = zhang.get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    assert detail["reach"]["reachable"] is False and "无法送达" in detail["reach"]["message"]
    assert detail["events"][-1]["action"] == "reply_failed"
    assert "请补充材料" not in [m["text"] for m in detail["conversation"]["messages"]]


def test_an_old_wechat_conversation_shows_the_closed_window(console: Console) -> None:
    case_id = console.open_case("wx-openid-2", channel="wechat")
    for event in RasaStandIn.trackers["wx-openid-2"]:
        event["timestamp"] -= 49 * 3600
    detail = console.login("zhang").get(f"{console.url}/api/cases/{case_id}", timeout=10).json()
    assert detail["reach"]["reachable"] is False and "48 小时" in detail["reach"]["message"]


def test_a_rest_user_cannot_be_pushed_to_and_the_reply_is_only_recorded(console: Console) -> None:
    case_id = console.open_case("rest-1", channel="rest")
    zhang = console.login("zhang")
    console.post(zhang, f"/api/cases/{case_id}/claim")
    sent = console.post(zhang, f"/api/cases/{case_id}/reply", {"text": "稍后电话联系您"}).json()
    assert sent["delivered"] is False and "不能主动推送" in sent["message"]
    query, events = posted("rest-1")[-1]
    assert "execute_side_effects" not in query and events[-1]["text"] == "稍后电话联系您"


def test_a_dead_assistant_leaves_the_case_readable_and_says_so(console: Console, tmp_path: Path) -> None:
    case_id = console.open_case("dead-1")
    process, url = start_console(tmp_path, console.db_url, f"http://127.0.0.1:{free_port()}")  # nothing there
    try:
        alone = Console(url, console.db_url, "")
        zhang = alone.login("zhang")
        detail = zhang.get(f"{url}/api/cases/{case_id}", timeout=30).json()
        assert detail["case"]["id"] == case_id and detail["case"]["company"] == "重庆某某科技有限公司"
        assert detail["conversation"]["available"] is False and "对话记录" in detail["conversation"]["error"]
        claimed = alone.post(zhang, f"/api/cases/{case_id}/claim")
        assert claimed.status_code == 502 and "智能助手" in claimed.json()["error"]
        assert console.cases.get(case_id).assignee == "zhang"  # the claim itself stands
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_queue_is_ordered_by_waiting_time(console: Console) -> None:
    first, second = console.open_case("order-1"), console.open_case("order-2")
    cases = console.login("zhang").get(f"{console.url}/api/cases", params={"status": "waiting"}, timeout=10).json()
    ids = [c["id"] for c in cases["cases"]]
    assert ids.index(first) < ids.index(second)
    assert all(c["status"] == "waiting" for c in cases["cases"])
    assert cases["cases"][0]["waiting_seconds"] >= cases["cases"][-1]["waiting_seconds"]
    bad = console.login("zhang").get(f"{console.url}/api/cases", params={"status": "nonsense"}, timeout=10)
    assert bad.status_code == 400


def test_a_lost_database_is_a_clear_503_not_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "gone.db"
    Accounts(f"sqlite:///{db}").add("solo", PASSWORD, "supervisor", None, "独")
    process, url = start_console(tmp_path, f"sqlite:///{db}", f"http://127.0.0.1:{free_port()}")
    try:
        session = Console(url, f"sqlite:///{db}", "").login("solo")
        db.unlink()  # the file is gone: SQLite opens an empty one without the tables
        answer = session.get(f"{url}/api/cases", timeout=10)
        assert answer.status_code == 503 and "数据库" in answer.json()["error"]
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200  # the console itself lives on
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_flood_of_cases_never_hides_one_the_queue_pages(console: Console) -> None:
    """Finding 4 of the hardening issue: 205 flood cases pushed a real one past the 200 cap."""
    from console.server import QUEUE_PAGE

    for n in range(QUEUE_PAGE * 2 + 5):
        console.cases.open(f"flood-{n}", "rest", "user_request", "scjg", None, problem="flood")
    real = console.cases.open("the-real-one", "socketio", "user_request", "scjg", None, problem="真的问题")[0]
    session = console.login("zhang")
    first = session.get(f"{console.url}/api/cases", params={"status": "waiting"}, timeout=10).json()
    total = first["total"]
    assert total >= QUEUE_PAGE * 2 + 6 and first["pages"] == -(-total // QUEUE_PAGE)
    assert len(first["cases"]) == QUEUE_PAGE
    seen = []
    for page in range(1, first["pages"] + 1):
        seen += [c["id"] for c in session.get(f"{console.url}/api/cases", params={"status": "waiting", "page": page},
                                                timeout=10).json()["cases"]]
    assert len(seen) == len(set(seen)) == total and real.id in seen
    past = session.get(f"{console.url}/api/cases", params={"status": "waiting", "page": 999}, timeout=10).json()
    assert past["page"] == first["pages"]  # past the end: the last page
    assert session.get(f"{console.url}/api/cases", params={"page": "x"}, timeout=10).status_code == 400
