"""The dashboard and the review inbox in headless Chromium, on the scripted day.

A console (python -m console) reads the scripted day's tracker store and database
(tests/console/test_insight_api.py builds them); a supervisor logs in, the dashboard draws
its eight ECharts charts with their tables and CSV links on a laptop (1366×768) and a tablet
(820×1180) without a console error, and labels a group of the inbox, which reaches the
reviewed file. The screenshots are docs/insight.png, docs/insight-tablet.png and
docs/insight-review.png.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml

from tests.conftest import ROOT
from tests.console.test_insight_api import PASSWORD, InsightConsole, scripted, start
from tests.e2e.browser import SHOTS, chromium, sign_in, wait

pytestmark = pytest.mark.servers
DOCS = ROOT / "docs"
RANGE = "from=2026-02-23&to=2026-03-10"  # the scripted day and the later one
CHARTS = ["daily", "topics", "outcomes", "ratings-department", "ratings-topic", "ratings-weekly", "cases", "followups"]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InsightConsole]:
    tmp = tmp_path_factory.mktemp("insight-browser")
    tracker, database = scripted(tmp)
    data = tmp / "data" / "nlu"
    data.mkdir(parents=True)
    env = {"DATABASE_URL": database, "TRACKER_DB_URL": tracker, "REVIEWED_FILE": str(data / "reviewed.yml"),
           "RETRAIN_SCRIPT": str(tmp / "retrain" / "retrain.py"),
           "RETRAIN_STATUS": str(tmp / "retrain" / "status.json")}
    process, url = start(tmp, env)
    yield InsightConsole(url, database, tracker, data / "reviewed.yml", tmp / "retrain" / "retrain.py",
                         tmp / "retrain" / "status.json")
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Chromium as tests/e2e/browser.py starts it, keeping the page's console messages."""
    browser = chromium("1366,768", str(tmp_path_factory.mktemp("chromium")), console_log=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()


def viewport(driver, width: int, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def full_page(driver, path: Path) -> None:
    """A screenshot of the whole page at the current width."""
    width, height = driver.execute_script("return [document.documentElement.scrollWidth,"
                                          " document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def severe(driver) -> list[dict]:
    """The console's errors; but /favicon.ico, which Chromium asked for on pages without an
    icon (every console page now declares /static/insight.svg; kept for a page that forgets)."""
    return [entry for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "/favicon.ico " not in entry["message"]]


def log_in(driver, console: InsightConsole, username: str) -> None:
    driver.delete_all_cookies()
    sign_in(driver, f"{console.url}/login", username, PASSWORD)
    wait(driver, lambda d: d.current_url.rstrip("/") == console.url)
    driver.get_log("browser")  # the login page and the queue are not under test here


def ready(driver, page: str, after: str = "0") -> None:
    wait(driver, lambda d: int(d.execute_script(f"return document.getElementById('{page}').dataset.ready || 0"))
         > int(after))


def charts(driver) -> list[tuple[str, bool, int]]:
    """Each chart: its id, whether ECharts holds an instance of it, its canvases."""
    return [tuple(c) for c in driver.execute_script(
        "return [...document.querySelectorAll('.chart')].map(el => [el.dataset.chart,"
        " !!echarts.getInstanceByDom(el), el.querySelectorAll('canvas').length])")]


def test_the_dashboard_draws_every_chart_on_a_laptop_and_a_tablet(driver, console: InsightConsole) -> None:
    from selenium.webdriver.common.by import By

    log_in(driver, console, "boss")
    viewport(driver, 1366, 768)
    driver.get(f"{console.url}/insight?{RANGE}")
    ready(driver, "dashboard")
    assert charts(driver) == [(name, True, 1) for name in CHARTS]
    assert driver.find_element(By.ID, "f-department-wrap").is_displayed()  # a supervisor's filter
    assert "已同步" in driver.find_element(By.ID, "sync-status").text

    # every chart's numbers as a real table, and its CSV with the filters applied
    tables = driver.find_elements(By.CSS_SELECTOR, "details table.data")
    assert len(tables) == len(CHARTS)
    daily = driver.find_element(By.ID, "table-daily").get_attribute("textContent")
    assert "微信公众号" in daily and "2026-03-10" in daily
    assert len(driver.find_elements(By.CSS_SELECTOR, "#table-daily tbody tr")) == 7
    assert "区住房城市建委" in driver.find_element(By.ID, "table-cases").get_attribute("textContent")
    link = driver.find_element(By.ID, "csv-daily").get_attribute("href")
    assert link == f"{console.url}/api/insight/daily.csv?{RANGE}"
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    exported = requests.get(link, cookies=cookies, timeout=30)
    assert exported.headers["Content-Type"].startswith("text/csv") and len(exported.text.splitlines()) == 8
    assert {driver.find_element(By.ID, f"csv-{name}").get_attribute("href").split("?")[0].rsplit("/", 1)[1]
            for name in CHARTS} == {"daily.csv", "topics.csv", "outcomes.csv", "ratings.csv", "ratings_weekly.csv",
                                    "cases.csv", "followups.csv"}

    # two columns on a laptop, one on a tablet, never wider than the screen
    first, second = (driver.find_element(By.ID, f"card-{n}").rect for n in ("daily", "topics"))
    assert first["y"] == second["y"] and second["x"] > first["x"] + first["width"] - 1
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    driver.save_screenshot(str(SHOTS / "insight-laptop-viewport.png"))
    full_page(driver, DOCS / "insight.png")

    viewport(driver, 820, 1180)
    wait(driver, lambda d: d.find_element(By.ID, "card-topics").rect["y"]
         > d.find_element(By.ID, "card-daily").rect["y"])
    first, second = (driver.find_element(By.ID, f"card-{n}").rect for n in ("daily", "topics"))
    assert second["y"] >= first["y"] + first["height"] and abs(first["width"] - second["width"]) < 1
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    wait(driver, lambda d: d.execute_script(  # the charts follow the narrower cards
        "const el = document.getElementById('chart-daily'); return echarts.getInstanceByDom(el).getWidth()"
        " === el.clientWidth"))
    driver.save_screenshot(str(DOCS / "insight-tablet.png"))
    full_page(driver, SHOTS / "insight-tablet-full.png")

    # a filter applied in the page reloads every chart
    before = driver.execute_script("return document.getElementById('dashboard').dataset.ready")
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "f-channel")).select_by_value("wechat")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    ready(driver, "dashboard", before)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#table-daily tbody tr")) == 1
    assert "channel=wechat" in driver.current_url
    assert severe(driver) == []


def test_a_specialist_gets_their_department_without_the_filter(driver, console: InsightConsole) -> None:
    from selenium.webdriver.common.by import By

    log_in(driver, console, "zhang")
    viewport(driver, 1366, 768)
    driver.get(f"{console.url}/insight?{RANGE}&department=fagai")  # the page asks; the server refuses
    wait(driver, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "本部门" in driver.find_element(By.ID, "error").text
    driver.get(f"{console.url}/insight?{RANGE}")
    ready(driver, "dashboard")
    assert not driver.find_element(By.ID, "f-department-wrap").is_displayed()
    assert all(ok and canvases == 1 for _, ok, canvases in charts(driver))
    cases = driver.find_element(By.ID, "table-cases").get_attribute("textContent")
    assert "区市场监管局" in cases and "区发展改革委" not in cases
    assert driver.find_element(By.ID, "csv-cases").get_attribute("href").endswith("&department=scjg")
    assert [e for e in severe(driver) if "/api/insight?" not in e["message"]] == []  # but the refused request


def test_a_reviewer_labels_a_group_in_the_inbox(driver, console: InsightConsole) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(driver, console, "boss")
    viewport(driver, 1366, 768)
    driver.get(f"{console.url}/insight/review?{RANGE}")
    ready(driver, "review")
    groups = driver.find_elements(By.CSS_SELECTOR, ".group")
    weather = next(g for g in groups if "明天天气怎么样" in g.text)
    assert "3 条相似问题" in weather.text and "婉拒（超出范围） 3" in weather.text
    assert len(weather.find_elements(By.CSS_SELECTOR, "input:checked")) == 3
    retrain = driver.find_element(By.ID, "retrain")
    assert retrain.is_displayed() and not retrain.is_enabled()  # scripts/retrain.py is not there here
    assert "尚未安装" in driver.find_element(By.ID, "retrain-status").text
    full_page(driver, DOCS / "insight-review.png")

    Select(weather.find_element(By.CSS_SELECTOR, "select")).select_by_value("out_of_scope")
    before = driver.execute_script("return document.getElementById('review').dataset.ready")
    weather.find_element(By.CSS_SELECTOR, "button").click()
    ready(driver, "review", before)
    wait(driver, lambda d: d.find_element(By.ID, "review-flash").is_displayed())
    assert "已写入训练数据 3 条" in driver.find_element(By.ID, "review-flash").text
    written = yaml.safe_load(console.reviewed.read_text(encoding="utf-8"))
    assert [entry["intent"] for entry in written["nlu"]] == ["out_of_scope"]
    examples = written["nlu"][0]["examples"]
    assert [e["text"] for e in examples] == ["今天天气怎么样", "今天天气怎么样啊", "明天天气怎么样"]
    assert all(e["metadata"]["labelled_by"] == "boss" and e["metadata"]["labelled_at"].endswith("+08:00")
               for e in examples)
    assert not any("明天天气怎么样" in g.text for g in driver.find_elements(By.CSS_SELECTOR, ".group"))
    assert severe(driver) == []
    shutil.copy(DOCS / "insight-review.png", SHOTS / "insight-review.png")


def test_without_echarts_the_tables_still_show(driver, console: InsightConsole) -> None:
    """console/node_modules not installed (no `npm ci`): the page says so and opens the tables."""
    from selenium.webdriver.common.by import By

    log_in(driver, console, "boss")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/static/vendor/echarts.min.js"]})
    try:
        driver.get(f"{console.url}/insight?{RANGE}")
        ready(driver, "dashboard")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".chart.no-chart")) == len(CHARTS)
        assert all(d.get_attribute("open") is not None for d in driver.find_elements(By.CSS_SELECTOR, ".card details"))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#table-daily tbody tr")) == 7
        assert "npm ci" in driver.find_element(By.ID, "chart-daily").text
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    driver.get_log("browser")  # the blocked file's error, asked for here
