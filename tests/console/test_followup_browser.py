"""The 差评 follow-up in the console page, in headless Chromium: the three steps shown with their
dates (or 未完成), recorded by the claimer, the resolve refused with the server's message until
the 反馈 has been sent, then allowed; no error in the page's console.

A real console process and the stand-in for Rasa's API (tests/console/test_api.py's fixture).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from console.server import NO_FEEDBACK
from tests.console.test_api import PASSWORD, Console, console, posted  # noqa: F401 - console is a fixture
from tests.console.test_followup_api import bad_rating_case
from tests.e2e.browser import SHOTS, chromium, sign_in, wait

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Chromium as tests/e2e/browser.py starts it, keeping the page's console messages."""
    browser = chromium("1366,900", str(tmp_path_factory.mktemp("chromium")), console_log=True)
    yield browser
    browser.quit()


def text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def shown(driver, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).is_displayed()


def record(driver, step: str, note: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, f"followup-{step}-text").send_keys(note)
    driver.find_element(By.ID, f"followup-{step}-save").click()
    wait(driver, lambda d: text(d, f"followup-{step}-status").startswith("已完成"))


def test_a_specialist_follows_up_a_bad_rating_in_the_page(driver, console: Console) -> None:
    from selenium.webdriver.common.by import By

    case_id = bad_rating_case(console, "fu-page-1")
    sign_in(driver, f"{console.url}/login", "zhang", PASSWORD)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'.case-row[data-case-id="{case_id}"]'))
    driver.get(f"{console.url}/#case-{case_id}")
    wait(driver, lambda d: shown(d, "claim") and shown(d, "followup"))
    assert [text(driver, f"followup-{s}-status") for s in ("verify", "rectify", "feedback")] == ["未完成"] * 3
    assert not shown(driver, "followup-verify-form")  # not claimed yet: nothing to record
    assert "差评跟进" in text(driver, "case-meta")

    driver.find_element(By.ID, "claim").click()
    wait(driver, lambda d: shown(d, "followup-verify-form"))
    assert "发送给企业" in text(driver, "followup-feedback-form")
    record(driver, "verify", "电话回访：窗口要求重复提交材料")
    assert "电话回访：窗口要求重复提交材料" in text(driver, "followup-verify-note")
    assert text(driver, "followup-verify-save") == "再次记录回访核实"
    record(driver, "rectify", "窗口改为一次性告知")

    driver.find_element(By.ID, "resolve").click()
    wait(driver, lambda d: shown(d, "error"))
    assert text(driver, "error") == NO_FEEDBACK
    assert driver.find_element(By.ID, "case-status").get_attribute("data-status") == "claimed"
    assert text(driver, "followup-feedback-status") == "未完成"

    record(driver, "feedback", "您反映的问题已整改，欢迎再来办理。")
    assert "反馈已送达企业" in text(driver, "followup-status")
    assert posted("fu-page-1")[-1][1][0]["text"] == "您反映的问题已整改，欢迎再来办理。"
    wait(driver, lambda d: "您反映的问题已整改" in text(d, "transcript"))
    assert driver.find_element(By.ID, "followup-feedback-text").get_attribute("value") == ""

    driver.find_element(By.ID, "resolve").click()
    wait(driver, lambda d: d.find_element(By.ID, "case-status").get_attribute("data-status") == "resolved")
    wait(driver, lambda d: not shown(d, "followup-feedback-form"))
    assert all(text(driver, f"followup-{s}-status").startswith("已完成") for s in ("verify", "rectify", "feedback"))
    assert console.cases.get(case_id).outcome == "solved"
    # Chromium logs the one refused request (the resolve before the 反馈, 409); no script error
    refused = f"/api/cases/{case_id}/resolve"
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/favicon.ico " not in e["message"]
            and refused not in e["message"]] == []


def test_a_supervisor_sees_a_flood_and_closes_it_in_the_page(driver, console: Console) -> None:
    """「同一来源 N 件」 in the queue, and the bulk close with its confirmation, as a supervisor uses them."""
    from selenium.webdriver.common.by import By

    from tests.console.test_bulk_close_api import flood_case

    ids = [flood_case(console, f"flood-page-{n}", "client-page-flood") for n in range(3)]
    driver.delete_all_cookies()
    sign_in(driver, f"{console.url}/login", "boss", PASSWORD)
    row = f'.case-row[data-case-id="{ids[0]}"]'
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, row))
    assert "同一来源 3 件" in driver.find_element(By.CSS_SELECTOR, row).text
    # the badge leaves the department's name whole (it once cut it to 「区..」)
    dept = driver.find_element(By.CSS_SELECTOR, f"{row} .row-dept")
    assert dept.text and driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", dept)
    driver.get(f"{console.url}/#case-{ids[0]}")
    wait(driver, lambda d: shown(d, "close-same-client"))
    driver.save_screenshot(str(SHOTS / "console-flood.png"))
    driver.find_element(By.ID, "close-same-client").click()
    driver.switch_to.alert.accept()  # 「确定关闭同一来源的全部 3 件未结案件吗？」
    wait(driver, lambda d: "已关闭同一来源的 3 件案件" in text(d, "bulk-status"))
    assert all(console.cases.get(i).status == "resolved" for i in ids)
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
