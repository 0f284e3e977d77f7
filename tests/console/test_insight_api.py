"""The console's dashboard and review inbox over HTTP, on the scripted day (tests/insight/day.py).

A real console process (python -m console) on a free port reads a SQLite tracker store that
Rasa's own SQLTrackerStore wrote ($TRACKER_DB_URL) and the cases and ratings of the day in
its database; it writes reviewed examples to a temporary data/nlu/reviewed.yml
($REVIEWED_FILE) and knows a retrain script that does not exist yet ($RETRAIN_SCRIPT).
Besides the day, a later day (10 March) adds near-duplicate questions for the inbox's groups.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml

from console.accounts import Accounts
from insight.store import InsightStore
from tests.conftest import ROOT
from tests.e2e.servers import free_port
from tests.insight import day
from tests.insight.rasa_events import Conversation
from tests.insight.writer import write

PASSWORD = "insight-pass-1"
pytestmark = pytest.mark.servers
LATER = date(2026, 3, 10)
L = LATER.isoformat()
THE_DAY = {"from": "2026-02-20", "to": "2026-03-03"}  # the scripted day, its cases and ratings
HELD_OUT = "解放碑哪家火锅好吃"  # an out_of_scope example of tests/nlu/heldout.yml
# real time is long past the day: the never-claimed zhujian case is past its 24-hour target
CASES_NOW = [*day.CASES[:3], ("zhujian", 1, 1, 0, 0, 0, None, None, None, None, 24.0, 1, 0, 0.0)]
EXPECTED = {"daily": day.DAILY, "topics": day.TOPICS, "outcomes": day.OUTCOMES, "ratings": day.RATINGS,
            "ratings_weekly": day.RATINGS_WEEKLY, "cases": CASES_NOW, "followups": day.FOLLOWUPS,
            "followup_cases": day.FOLLOWUP_CASES}
DAILY_LATER = [(L, "rest", 3, 0, 0, 3, 0), (L, "socketio", 2, 2, 0, 0, 0)]
HEADERS = {"daily": "date,channel,questions,answered,asked_back,out_of_scope,handed_over",
           "cases": "department,cases,waiting,claimed,solved,handed_back,claim_median_hours,claim_p90_hours,"
                    "resolve_median_hours,resolve_p90_hours,target_hours,decided,within_target,within_target_share",
           "followups": "department,bad_ratings,followup_cases,waiting,claimed,solved,handed_back,verify_done,"
                        "rectify_done,feedback_done,closed_with_reply,verify_median_days,rectify_median_days,"
                        "feedback_median_days",
           "followup_cases": "case_id,department,created,verify,rectify,feedback,resolved"}


def later_day() -> list[Conversation]:
    """Questions worth grouping: the weather twice more, a licence twice with little confidence
    (scjg's), and a question of the held-out set."""
    weather = Conversation("r-weather", "rest", day.at(9, day=LATER))
    weather.decline("今天天气怎么样啊", 0.97, at=day.at(9, day=LATER))
    weather.decline("明天天气怎么样", 0.95, at=day.at(9, 5, day=LATER))
    unsure = Conversation("s-unsure", "socketio", day.at(10, day=LATER))
    unsure.answer("工商执照在哪里弄", "company_opening", 0.52, day.OPENING_BUTTON, at=day.at(10, day=LATER))
    unsure.answer("执照在哪里弄啊", "company_opening", 0.55, day.OPENING_BUTTON, at=day.at(10, 5, day=LATER))
    hotpot = Conversation("r-hotpot", "rest", day.at(11, day=LATER))
    hotpot.decline(HELD_OUT, 0.99, at=day.at(11, day=LATER))
    return [weather, unsure, hotpot]


@dataclass
class InsightConsole:
    url: str
    db_url: str
    tracker_url: str
    reviewed: Path
    retrain_script: Path
    retrain_status: Path

    def login(self, username: str) -> requests.Session:
        session = requests.Session()
        answer = session.post(f"{self.url}/api/login", json={"username": username, "password": PASSWORD}, timeout=10)
        assert answer.status_code == 200, answer.text
        return session

    def get(self, session: requests.Session, path: str, **params: str) -> requests.Response:
        return session.get(f"{self.url}{path}", params=params, timeout=30)

    def label(self, session: requests.Session, items: list, label: str) -> requests.Response:
        return session.post(f"{self.url}/api/insight/review/label", json={"items": items, "label": label}, timeout=30)


def scripted(tmp: Path) -> tuple[str, str]:
    """The scripted day and the later one in a tracker store, the day's cases and ratings and
    four accounts in the console's database; (tracker URL, database URL)."""
    tracker, database = f"sqlite:///{tmp / 'tracker.db'}", f"sqlite:///{tmp / 'zhuqi.db'}"
    conversations = day.part_one()
    write(tracker, list(conversations.values()))
    write(tracker, day.part_two(conversations))
    write(tracker, later_day())
    with pytest.MonkeyPatch.context() as patch:
        day.cases_and_ratings(database, patch)
    accounts = Accounts(database)
    accounts.add("boss", PASSWORD, "supervisor", None, "赵主管")
    accounts.add("zhang", PASSWORD, "specialist", "scjg", "张三")
    accounts.add("zhu", PASSWORD, "specialist", "zhujian", "朱工")
    accounts.add("li", PASSWORD, "specialist", "shuiwu", "李四")
    return tracker, database


def start(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """python -m console on a free port with this environment; (process, URL) once it answers."""
    port = free_port()
    full = {**os.environ, "PYTHONPATH": str(ROOT), "CONSOLE_PORT": str(port), "RASA_TIMEOUT": "1", **env}
    full.pop("CASE_TARGET_HOURS", None)
    log_path = tmp / f"console-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "console"], cwd=ROOT, env=full, stdout=log,
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
def insight_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InsightConsole]:
    tmp = tmp_path_factory.mktemp("insight")
    tracker, database = scripted(tmp)
    data = tmp / "data" / "nlu"
    data.mkdir(parents=True)
    shutil.copy(ROOT / "data" / "nlu" / "followups.yml", data)  # hand-written examples beside the file
    retrain = tmp / "retrain"
    env = {"DATABASE_URL": database, "TRACKER_DB_URL": tracker, "REVIEWED_FILE": str(data / "reviewed.yml"),
           "RETRAIN_SCRIPT": str(retrain / "retrain.py"), "RETRAIN_STATUS": str(retrain / "status.json"),
           "RETRAIN_RASA_URLS": "http://127.0.0.1:5005, http://127.0.0.1:5006", "INSIGHT_SYNC_SECONDS": "0"}
    process, url = start(tmp, env)
    yield InsightConsole(url, database, tracker, data / "reviewed.yml", retrain / "retrain.py", retrain / "status.json")
    process.terminate()
    process.wait(timeout=10)


def table_rows(body: dict) -> list[tuple]:
    return [tuple(row[column] for column in body["columns"]) for row in body["rows"]]


def csv_rows(rows: list[tuple]) -> list[list[str]]:
    return [["" if value is None else str(value) for value in row] for row in rows]


# access -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [
    ("GET", "/api/insight"), ("GET", "/api/insight/daily"), ("GET", "/api/insight/daily.csv"),
    ("GET", "/api/insight/review"), ("POST", "/api/insight/review/label"), ("GET", "/api/insight/retrain"),
    ("POST", "/api/insight/retrain"),
])
def test_no_insight_api_answers_without_a_session(insight_console: InsightConsole, method: str, path: str) -> None:
    answer = requests.request(method, f"{insight_console.url}{path}", json={}, timeout=10, allow_redirects=False)
    assert answer.status_code == 401 and "登录" in answer.json()["error"]


@pytest.mark.parametrize("path", ["/insight", "/insight/review", "/static/insight.js", "/static/vendor/echarts.min.js"])
def test_the_pages_need_a_session(insight_console: InsightConsole, path: str) -> None:
    answer = requests.get(f"{insight_console.url}{path}", timeout=10, allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"


def test_the_pages_and_the_one_echarts_file_are_served(insight_console: InsightConsole) -> None:
    boss = insight_console.login("boss")
    for path in ("/insight", "/insight/review"):
        page = insight_console.get(boss, path)
        assert page.status_code == 200 and "/static/vendor/echarts.min.js" in page.text and "insight.js" in page.text
    echarts = insight_console.get(boss, "/static/vendor/echarts.min.js")
    assert echarts.status_code == 200 and echarts.headers["Content-Type"].startswith("text/javascript")
    lock = json.loads((ROOT / "console" / "package-lock.json").read_text(encoding="utf-8"))
    version = lock["packages"]["node_modules/echarts"]["version"]
    assert f'version="{version}"' in echarts.text.replace(" ", "")  # the version the lock pins is the one served
    icon = insight_console.get(boss, "/static/insight.svg")
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/svg+xml"
    for other in ("/static/vendor/zrender.js", "/static/node_modules/echarts/package.json", "/static/../package.json"):
        assert insight_console.get(boss, other).status_code == 404


# the tables ------------------------------------------------------------------------------------
def test_every_table_of_the_day_in_json_and_csv(insight_console: InsightConsole) -> None:
    boss = insight_console.login("boss")
    dashboard = insight_console.get(boss, "/api/insight", **THE_DAY).json()
    assert dashboard["filters"] == {**THE_DAY, "department": "", "channel": ""}
    assert dashboard["target_hours"] == 24.0 and dashboard["labels"]["departments"]["scjg"] == "区市场监管局"
    for name, expected in EXPECTED.items():
        assert table_rows(dashboard["tables"][name]) == expected, name
        one = insight_console.get(boss, f"/api/insight/{name}", **THE_DAY)
        assert one.status_code == 200 and table_rows(one.json()) == expected, name
        exported = insight_console.get(boss, f"/api/insight/{name}.csv", **THE_DAY)
        assert exported.headers["Content-Type"] == "text/csv; charset=utf-8", name
        assert exported.headers["Content-Disposition"] == f'attachment; filename="insight-{name}.csv"'
        header, *lines = list(csv.reader(io.StringIO(exported.text)))
        assert header == one.json()["columns"] and lines == csv_rows(expected), name
    for name, header in HEADERS.items():
        assert insight_console.get(boss, f"/api/insight/{name}.csv").text.splitlines()[0] == header


def test_all_days_one_channel_and_a_department(insight_console: InsightConsole) -> None:
    boss = insight_console.login("boss")
    assert table_rows(insight_console.get(boss, "/api/insight/daily").json()) == day.DAILY + DAILY_LATER
    assert table_rows(insight_console.get(boss, "/api/insight/daily", channel="wechat").json()) == [
        (day.D, "wechat", 3, 1, 0, 1, 1)]
    assert table_rows(insight_console.get(boss, "/api/insight/daily", department="scjg", **THE_DAY).json()) == \
        day.DAILY_SCJG
    assert insight_console.get(boss, "/api/insight/daily", **{"from": "2026-04-01"}).json()["rows"] == []
    for bad in ({"from": "2026-13-01"}, {"from": "2026-03-03", "to": "2026-03-02"}, {"department": "nowhere"},
                {"channel": "fax"}):
        assert insight_console.get(boss, "/api/insight/daily", **bad).status_code == 400, bad
    assert insight_console.get(boss, "/api/insight/nothing").status_code == 404
    assert insight_console.get(boss, "/api/insight/nothing.csv").status_code == 404


def test_a_specialist_sees_their_department_and_is_refused_another(insight_console: InsightConsole) -> None:
    zhang = insight_console.login("zhang")
    mine = insight_console.get(zhang, "/api/insight", **THE_DAY).json()
    assert mine["filters"]["department"] == "scjg"  # forced, though the request named none
    assert table_rows(mine["tables"]["daily"]) == day.DAILY_SCJG
    assert table_rows(mine["tables"]["cases"]) == [CASES_NOW[2]]
    assert {row["department"] for row in mine["tables"]["ratings"]["rows"]} == {"scjg"}
    assert insight_console.get(zhang, "/api/insight/daily", department="scjg", **THE_DAY).json()["rows"] == \
        [dict(zip(HEADERS["daily"].split(","), row, strict=True)) for row in day.DAILY_SCJG]
    for path in ("/api/insight", "/api/insight/daily", "/api/insight/cases.csv", "/api/insight/review"):
        refused = insight_console.get(zhang, path, department="fagai")
        assert refused.status_code == 403 and "本部门" in refused.json()["error"], path
    exported = insight_console.get(zhang, "/api/insight/daily.csv", **THE_DAY).text.splitlines()
    assert exported[1:] == [",".join(row) for row in csv_rows(day.DAILY_SCJG)]
    assert mine["tables"]["followup_cases"]["rows"] == [] and mine["tables"]["followups"]["rows"] == []
    zhu = insight_console.login("zhu")
    assert table_rows(insight_console.get(zhu, "/api/insight/followup_cases", **THE_DAY).json()) == day.FOLLOWUP_CASES
    assert table_rows(insight_console.get(zhu, "/api/insight/followups", **THE_DAY).json()) == day.FOLLOWUPS[1:]
    assert insight_console.get(zhu, "/api/insight/followup_cases.csv", department="fagai").status_code == 403


def test_concurrent_page_loads_on_two_consoles_count_each_turn_once(insight_console: InsightConsole,
                                                                     tmp_path: Path) -> None:
    """New events arrive; four page loads on this console and four on a second one (same
    database and tracker store) sync at once: every turn is stored once."""
    store = InsightStore(insight_console.db_url)
    before = len(store.turns(limit=10_000))
    talk = Conversation("r-hello", "rest", day.at(9, day=date(2026, 3, 20)))
    for text in ("你好", "谢谢", "再见"):
        talk.chitchat(text, "greet", "utter_greet")
    write(insight_console.tracker_url, [talk])
    second, second_url = start(tmp_path, {"DATABASE_URL": insight_console.db_url,
                                          "TRACKER_DB_URL": insight_console.tracker_url, "INSIGHT_SYNC_SECONDS": "0"})
    try:
        sessions = [(url, requests.Session()) for url in (insight_console.url, second_url) for _ in range(4)]
        for url, session in sessions:
            assert session.post(f"{url}/api/login", json={"username": "boss", "password": PASSWORD}, timeout=10).ok
        with concurrent.futures.ThreadPoolExecutor(len(sessions)) as pool:
            answers = list(pool.map(lambda s: s[1].get(f"{s[0]}/api/insight", params=THE_DAY, timeout=60), sessions))
    finally:
        second.terminate()
        second.wait(timeout=10)
    assert [a.status_code for a in answers] == [200] * len(sessions)
    assert all(table_rows(a.json()["tables"]["daily"]) == day.DAILY for a in answers)
    assert all(a.json()["sync"]["ok"] for a in answers)
    assert len(store.turns(limit=10_000)) == before + 3
    assert len({t.event_id for t in store.turns(limit=10_000)}) == before + 3


@pytest.mark.parametrize("tracker_store, synced", [("type: SQL\n  dialect: sqlite\n  db: {db}\n", True),
                                                   ("type: InMemory\n", False)])
def test_the_tracker_store_is_the_one_endpoints_yml_names(tmp_path: Path, insight_console: InsightConsole,
                                                          tracker_store: str, synced: bool) -> None:
    """Without $TRACKER_DB_URL, the console reads `tracker_store` of $ENDPOINTS as Rasa does;
    one it cannot read leaves the turns stored so far, and says so."""
    endpoints = tmp_path / "endpoints.yml"
    db = insight_console.tracker_url[len("sqlite:///"):]
    endpoints.write_text("tracker_store:\n  " + tracker_store.format(db=db), encoding="utf-8")
    process, url = start(tmp_path, {"DATABASE_URL": insight_console.db_url, "ENDPOINTS": str(endpoints)})
    try:
        session = requests.Session()
        assert session.post(f"{url}/api/login", json={"username": "boss", "password": PASSWORD}, timeout=10).ok
        answer = session.get(f"{url}/api/insight", params=THE_DAY, timeout=30).json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert answer["sync"]["ok"] is synced and ("SQL" in answer["sync"]["message"]) is not synced
    assert table_rows(answer["tables"]["daily"]) == day.DAILY  # synced before by the other console


# the review inbox --------------------------------------------------------------------------------
def texts(inbox: dict) -> list[list[str]]:
    return [[item["text"] for item in group["items"]] for group in inbox["groups"]]


INBOX = [["今天天气怎么样", "今天天气怎么样啊", "明天天气怎么样"], ["工商执照在哪里弄", "执照在哪里弄啊"],
         ["办个证"], ["我电话***********，帮我订张机票"], ["阿斯顿发噶"], ["施工许可多少个工作日"], ["1"], ["注册商标找谁"],
         ["北京的社保怎么交"], [HELD_OUT]]


def test_the_inbox_groups_alike_questions_with_their_reasons(insight_console: InsightConsole) -> None:
    boss = insight_console.login("boss")
    inbox = insight_console.get(boss, "/api/insight/review").json()
    assert texts(inbox) == INBOX and [g["size"] for g in inbox["groups"]] == [3, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    assert inbox["total"] == 13 and inbox["threshold"] == 0.3
    reasons = {item["text"]: item["reasons"] for group in inbox["groups"] for item in group["items"]}
    assert reasons["施工许可多少个工作日"] == ["bad_rating"]  # answered with 0.86, then rated 非常不满意
    assert reasons["阿斯顿发噶"] == ["asked_back", "low_confidence"]
    assert reasons["工商执照在哪里弄"] == ["low_confidence"] and reasons["办个证"] == ["asked_back"]
    licence = inbox["groups"][1]["items"][0]
    assert (licence["intent_title"], licence["department_name"], licence["confidence"]) == ("开办企业", "区市场监管局", 0.52)
    assert all(item["may_label"] for group in inbox["groups"] for item in group["items"])
    assert len(inbox["choices"]) == 33 and {"id": "company_opening", "title": "开办企业"} in inbox["choices"]
    strict = insight_console.get(boss, "/api/insight/review", threshold="1").json()
    assert len(strict["groups"]) == 13
    day_only = insight_console.get(boss, "/api/insight/review", **THE_DAY).json()
    assert texts(day_only) == [["今天天气怎么样"], *INBOX[2:-1]]
    assert insight_console.get(boss, "/api/insight/review", threshold="0").status_code == 400


def test_a_specialist_reviews_and_labels_only_their_department(insight_console: InsightConsole) -> None:
    zhang, zhu, li = (insight_console.login(name) for name in ("zhang", "zhu", "li"))
    assert texts(insight_console.get(zhang, "/api/insight/review").json()) == [["工商执照在哪里弄", "执照在哪里弄啊"]]
    zhu_inbox = insight_console.get(zhu, "/api/insight/review").json()
    assert texts(zhu_inbox) == [["施工许可多少个工作日"]] and zhu_inbox["may_retrain"] is False
    assert insight_console.get(li, "/api/insight/review").json()["groups"] == []
    boss_inbox = insight_console.get(insight_console.login("boss"), "/api/insight/review").json()
    weather = [item["id"] for item in boss_inbox["groups"][0]["items"]]
    refused = insight_console.label(zhang, weather, "out_of_scope")  # named no department: the supervisors'
    assert refused.status_code == 403 and "主管" in refused.json()["error"]
    permit = zhu_inbox["groups"][0]["items"][0]["id"]
    assert insight_console.label(zhang, [permit], "construction_permit").status_code == 403
    assert not insight_console.reviewed.exists()


def test_labels_are_written_to_reviewed_yml_once_with_who_and_when(insight_console: InsightConsole) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    boss = insight_console.login("boss")
    inbox = insight_console.get(boss, "/api/insight/review").json()
    ids = {item["text"]: item["id"] for group in inbox["groups"] for item in group["items"]}
    weather = [ids["今天天气怎么样"], ids["今天天气怎么样啊"], ids["明天天气怎么样"]]
    for bad, status in ((("no_such_topic",), 400), (("",), 400)):
        assert insight_console.label(boss, weather, bad[0]).status_code == status
    assert insight_console.label(boss, [], "out_of_scope").status_code == 400
    assert insight_console.label(boss, [999_999], "out_of_scope").status_code == 404
    assert insight_console.label(boss, ["x"], "out_of_scope").status_code == 400
    assert not insight_console.reviewed.exists()  # nothing reaches the training data without a label

    done = insight_console.label(boss, weather, "out_of_scope").json()
    assert [r["result"] for r in done["results"]] == ["written"] * 3 and done["written"] == 3
    first = insight_console.reviewed.read_text(encoding="utf-8")
    again = insight_console.label(boss, weather, "out_of_scope").json()
    assert [r["result"] for r in again["results"]] == ["unchanged"] * 3
    assert insight_console.reviewed.read_text(encoding="utf-8") == first  # idempotent: not even rewritten

    zhang = insight_console.login("zhang")
    licence = [ids["执照在哪里弄啊"], ids["工商执照在哪里弄"]]
    assert [r["result"] for r in insight_console.label(zhang, licence, "company_opening").json()["results"]] == \
        ["written", "written"]
    masked = insight_console.label(boss, [ids["我电话***********，帮我订张机票"]], "out_of_scope").json()
    assert masked["results"][0]["result"] == "written"
    assert insight_console.label(boss, [ids["办个证"]], "vague_request").status_code == 400  # not a topic
    assert insight_console.label(boss, [ids["办个证"]], "company_opening").json()["results"][0]["result"] == \
        "in_training"  # data/nlu/followups.yml has it
    assert insight_console.label(boss, [ids[HELD_OUT]], "out_of_scope").json()["results"][0]["result"] == "held_out"
    assert insight_console.label(boss, [ids["阿斯顿发噶"]], "new_topic").json()["results"][0]["result"] == "recorded"

    text = insight_console.reviewed.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert document["version"] == "3.1"
    assert [(entry["intent"], [e["text"] for e in entry["examples"]]) for entry in document["nlu"]] == [
        ("company_opening", ["工商执照在哪里弄", "执照在哪里弄啊"]),
        ("out_of_scope", ["今天天气怎么样", "今天天气怎么样啊", "我电话***********，帮我订张机票", "明天天气怎么样"])]
    examples = {e["text"]: e["metadata"] for entry in document["nlu"] for e in entry["examples"]}
    assert examples["工商执照在哪里弄"]["labelled_by"] == "zhang" and examples["今天天气怎么样"]["labelled_by"] == "boss"
    assert all(m["labelled_at"].startswith("20") and m["labelled_at"].endswith("+08:00") for m in examples.values())
    assert not any(phone in text for phone in day.PHONES) and HELD_OUT not in text and "阿斯顿发噶" not in text
    assert "办个证" not in text

    loaded = load_data(str(insight_console.reviewed))  # Rasa 3.6 reads it, metadata and all
    assert sorted((m.get("intent"), m.get("text")) for m in loaded.training_examples) == sorted(
        (entry["intent"], e["text"]) for entry in document["nlu"] for e in entry["examples"])
    assert loaded.training_examples[0].get("metadata")["example"]["labelled_by"] in ("boss", "zhang")

    # labelled again with another topic, a text moves: never twice in the file
    moved = insight_console.label(boss, [ids["明天天气怎么样"]], "company_opening").json()
    assert moved["results"][0]["result"] == "moved"
    again = yaml.safe_load(insight_console.reviewed.read_text(encoding="utf-8"))
    all_texts = [e["text"] for entry in again["nlu"] for e in entry["examples"]]
    assert len(all_texts) == len(set(all_texts)) == 6
    assert [e["text"] for e in again["nlu"][0]["examples"]] == ["工商执照在哪里弄", "执照在哪里弄啊", "明天天气怎么样"]

    # the labelled ones leave the inbox; the audit trail keeps every label
    left = texts(insight_console.get(boss, "/api/insight/review").json())
    assert left == [["施工许可多少个工作日"], ["1"], ["注册商标找谁"], ["北京的社保怎么交"]]
    shown = insight_console.get(boss, "/api/insight/review", labelled="1").json()
    labelled = {item["text"]: item["label"] for group in shown["groups"] for item in group["items"] if item["label"]}
    assert labelled["明天天气怎么样"]["label"] == "company_opening" and labelled["阿斯顿发噶"]["label"] == "new_topic"
    assert labelled[HELD_OUT]["result"] == "held_out" and shown["reviewed_examples"] == 6
    audit = InsightStore(insight_console.db_url).labels()
    assert [(a.text, a.label, a.labelled_by) for a in audit if a.text == "明天天气怎么样"] == [
        ("明天天气怎么样", "out_of_scope", "boss"), ("明天天气怎么样", "company_opening", "boss")]
    assert len(audit) == 10  # the repeated label of the weather group is not recorded twice


def test_rasa_finds_the_reviewed_file_among_the_training_data(tmp_path: Path) -> None:
    """`rasa train` reads every NLU file under data/ (config: the default data folder)."""
    import rasa.shared.data
    from rasa.shared.nlu.training_data.loading import load_data

    from console.reviewed import Example, ReviewedFile

    target = tmp_path / "data" / "nlu" / "reviewed.yml"
    results = ReviewedFile(target).add([Example("开饭馆要办什么证 电话 13812345678", "company_opening", "boss",
                                                "2026-03-10T10:00:00+08:00")])
    assert results == ["written"]
    found = rasa.shared.data.get_data_files([str(tmp_path / "data")], rasa.shared.data.is_nlu_file)
    assert found == [str(target)]  # what RasaFileImporter reads for `rasa train` (its --data: data/)
    assert [m.get("text") for m in load_data(str(target)).training_examples] == ["开饭馆要办什么证 电话 ***********"]


# retraining -------------------------------------------------------------------------------------
FAKE_RETRAIN = textwrap.dedent("""\
    import json, os, sys, time
    from pathlib import Path
    status = Path(os.environ["RETRAIN_STATUS"])
    (status.parent / "started.json").write_text(json.dumps(
        {"argv": sys.argv[1:], "nice": os.nice(0), "session_leader": os.getsid(0) == os.getpid()}))
    status.write_text(json.dumps({"state": "training", "started_at": time.time(), "history": []}))
    time.sleep(2)
    status.write_text(json.dumps({"state": "done", "started_at": 1.0, "finished_at": time.time(),
                                  "reviewed_examples_added": 7, "heldout_before": 0.91, "heldout_after": 0.92,
                                  "message": "ok", "history": [{"state": "done", "started_at": 1.0}]}))
""")


def test_retraining_is_a_supervisors_and_runs_once(insight_console: InsightConsole) -> None:
    boss, zhang = insight_console.login("boss"), insight_console.login("zhang")
    post = lambda s: s.post(f"{insight_console.url}/api/insight/retrain", json={}, timeout=10)  # noqa: E731
    assert post(zhang).status_code == 403
    missing = post(boss)
    assert missing.status_code == 503 and "尚未安装" in missing.json()["error"]
    status = insight_console.get(boss, "/api/insight/retrain").json()
    assert (status["available"], status["running"], status["state"]) == (False, False, "idle")

    insight_console.retrain_script.parent.mkdir(parents=True, exist_ok=True)
    insight_console.retrain_script.write_text(FAKE_RETRAIN, encoding="utf-8")
    assert post(zhang).status_code == 403
    started = post(boss)
    assert started.status_code == 202 and started.json()["started"] is True
    assert post(boss).status_code == 409  # its own run has not exited
    ran = insight_console.retrain_status.parent / "started.json"
    for _ in range(100):
        if ran.exists() and insight_console.get(boss, "/api/insight/retrain").json()["state"] == "training":
            break
        time.sleep(0.1)
    assert post(boss).status_code == 409
    facts = json.loads(ran.read_text())
    assert facts == {"argv": ["--rasa-url", "http://127.0.0.1:5005", "--rasa-url", "http://127.0.0.1:5006",
                              "--status", str(insight_console.retrain_status),
                              "--reviewed", str(insight_console.reviewed)], "nice": 19, "session_leader": True}
    for _ in range(100):
        status = insight_console.get(boss, "/api/insight/retrain").json()
        if status["state"] == "done" and not status["running"]:
            break
        time.sleep(0.1)
    assert (status["reviewed_examples_added"], status["heldout_after"], status["running"]) == (7, 0.92, False)
    inbox = insight_console.get(boss, "/api/insight/review").json()
    assert inbox["retrain"]["state"] == "done" and inbox["may_retrain"] is True
