"""The handoff in two real browser windows: a user in the widget asks for a person, a
specialist logs in to the console, claims the case and replies, the user sees the reply;
the specialist resolves and the bot resumes (asks for a rating, answers again)."""

from __future__ import annotations

import pytest

from cases.repository import CaseRepository
from console.accounts import Accounts
from tests.e2e.browser import SHOTS, ask, browser, cards, open_widget, sign_in, wait  # noqa: F401 - browser is a fixture
from tests.e2e.servers import Servers

pytestmark = [pytest.mark.model, pytest.mark.servers]
PASSWORD = "browser-e2e-pass"


def bot_texts(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [m.text for m in driver.find_elements(By.CSS_SELECTOR, ".zq-msg.zq-bot")]


def test_a_specialist_takes_over_a_widget_conversation(browser, servers: Servers) -> None:
    from selenium.webdriver.common.by import By

    Accounts(servers.channels_db).add("chen", PASSWORD, "specialist", "fagai", "陈专员")
    # the user, in the widget
    session = open_widget(browser, servers)
    widget = browser.current_window_handle
    ask(browser, "转人工")
    wait(browser, lambda d: any("手机号" in t for t in bot_texts(d)))
    ask(browser, "13812345678")
    wait(browser, lambda d: any("企业（或个体户）名称" in t for t in bot_texts(d)))
    ask(browser, "重庆山城小面有限公司")
    wait(browser, lambda d: any("一句话" in t for t in bot_texts(d)))
    ask(browser, "想多开一家分店，需要办哪些手续")
    wait(browser, lambda d: d.find_element(By.ID, "zhuqi-widget").get_attribute("data-handoff") == "waiting")
    status = browser.find_element(By.CSS_SELECTOR, ".zq-status").text
    case = CaseRepository(servers.channels_db).open_case_of(session)
    assert case is not None and f"案件 #{case.id}" in status and "排队中" in status
    ask(browser, "请尽快，谢谢")  # the bot stays silent; the console shows it

    # the specialist, in the console
    browser.switch_to.new_window("window")
    console = browser.current_window_handle
    sign_in(browser, f"{servers.console_url}/", "chen", PASSWORD)
    row = f'.case-row[data-case-id="{case.id}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row))
    browser.find_element(By.CSS_SELECTOR, row).click()
    wait(browser, lambda d: d.find_element(By.ID, "claim").is_displayed())
    assert "请尽快，谢谢" in browser.find_element(By.ID, "transcript").text
    assert "重庆山城小面有限公司" in browser.find_element(By.ID, "case-details").text
    browser.find_element(By.ID, "claim").click()
    wait(browser, lambda d: d.find_element(By.ID, "case-status").get_attribute("data-status") == "claimed")
    wait(browser, lambda d: d.find_element(By.ID, "reply-text").is_displayed())
    browser.find_element(By.ID, "reply-text").send_keys("分店登记在渝快办提交，我帮您核对材料清单。")
    browser.find_element(By.ID, "send-reply").click()
    wait(browser, lambda d: "已送达" in d.find_element(By.ID, "reply-status").text)
    wait(browser, lambda d: "我帮您核对材料清单" in d.find_element(By.ID, "transcript").text)
    browser.set_window_size(1366, 820)
    browser.execute_script("document.getElementById('case').scrollIntoView();"
                           "const t = document.getElementById('transcript'); t.scrollTop = t.scrollHeight;")
    browser.save_screenshot(str(SHOTS / "console-claimed.png"))  # docs/console.png is a copy of one

    # the user sees the specialist's reply, live
    browser.switch_to.window(widget)
    wait(browser, lambda d: any("我帮您核对材料清单" in m.text for m in d.find_elements(By.CSS_SELECTOR, ".zq-staff")))
    staff = browser.find_elements(By.CSS_SELECTOR, ".zq-staff")[-1].text
    assert "陈专员" in staff and "工作人员" in staff
    assert "专员正在为您处理" in browser.find_element(By.CSS_SELECTOR, ".zq-status").text
    browser.save_screenshot(str(SHOTS / "widget-staff-reply.png"))

    # the specialist resolves; the bot resumes and asks for a rating
    browser.switch_to.window(console)
    browser.find_element(By.ID, "resolve").click()
    wait(browser, lambda d: d.find_element(By.ID, "case-status").get_attribute("data-status") == "resolved")
    browser.switch_to.window(widget)
    wait(browser, lambda d: any("请为这次人工服务评价" in t for t in bot_texts(d)))
    assert browser.find_element(By.ID, "zhuqi-widget").get_attribute("data-handoff") == "none"
    browser.find_elements(By.XPATH, "//button[@class='zq-button' and text()='满意']")[-1].click()
    wait(browser, lambda d: any("谢谢您的评价" in t for t in bot_texts(d)))
    assert CaseRepository(servers.channels_db).get(case.id).rating == "满意"
    before = len(cards(browser))
    ask(browser, "公司注册要多久")
    wait(browser, lambda d: len(cards(d)) > before)
    assert "区市场监管局" in cards(browser)[-1]


def test_a_widget_user_can_stop_waiting(browser, servers: Servers) -> None:
    from selenium.webdriver.common.by import By

    browser.switch_to.window(browser.window_handles[0])
    browser.execute_script("localStorage.clear()")  # a new visitor
    session = open_widget(browser, servers)
    for answer, question in (("转人工", "手机号"), ("跳过", "名称"), ("跳过", "一句话")):
        ask(browser, answer)
        wait(browser, lambda d: any(question in t for t in bot_texts(d)))
    ask(browser, "跳过")
    root = browser.find_element(By.ID, "zhuqi-widget")
    wait(browser, lambda d: root.get_attribute("data-handoff") == "waiting")
    browser.find_element(By.CSS_SELECTOR, ".zq-status .zq-end").click()
    wait(browser, lambda d: root.get_attribute("data-handoff") == "none")
    assert any("已结束人工服务" in t for t in bot_texts(browser))
    assert CaseRepository(servers.channels_db).open_case_of(session) is None
    before = len(cards(browser))
    ask(browser, "公司注册要多久")
    wait(browser, lambda d: len(cards(d)) > before)
