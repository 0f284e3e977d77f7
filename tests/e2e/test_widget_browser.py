"""The web widget in a real headless Chromium, on the demo page `make run` serves."""

from __future__ import annotations

import json

import pytest
import requests

from channels.store import ChannelStore
from tests.e2e.browser import SHOTS, ask, browser, cards, open_widget, wait  # noqa: F401 - browser is a fixture
from tests.e2e.servers import TOKEN, Servers

pytestmark = [pytest.mark.model, pytest.mark.servers]
def test_the_widget_end_to_end(browser, servers: Servers) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    session = open_widget(browser, servers)

    # the answer is on the screen without expanding anything; the card is folded under it
    ask(browser, "简易注销公告要公示多少天")
    wait(browser, lambda d: any("区市场监管局" in c for c in cards(d)))
    first, second = cards(browser)[0].split("\n")[:2]
    assert first == "简易注销公告时间由45天压缩到20天（2022年渝中区营商环境报道）。" and "{" not in first
    assert second.startswith("负责部门：区市场监管局")
    folded = browser.find_elements(By.CSS_SELECTOR, ".zq-more")[-1]
    assert folded.get_attribute("open") is None and not folded.find_element(By.CSS_SELECTOR, ".zq-card").is_displayed()
    browser.save_screenshot(str(SHOTS / "widget-card.png"))
    folded.find_element(By.CSS_SELECTOR, "summary").click()
    card = folded.find_element(By.CSS_SELECTOR, ".zq-card")
    wait(browser, lambda d: card.is_displayed())
    assert "适用政策" in card.text and "渝中府办〔2021〕16号 第5条" in card.text and "办理渠道" in card.text
    browser.save_screenshot(str(SHOTS / "widget-card-details.png"))

    # buttons send their payload
    ask(browser, "你好")
    wait(browser, lambda d: d.find_elements(By.XPATH, "//button[@class='zq-button' and text()='首贷续贷']"))
    browser.find_elements(By.XPATH, "//button[@class='zq-button' and text()='首贷续贷']")[-1].click()
    wait(browser, lambda d: any("区金融办" in c for c in cards(d)))

    # rate an answer: stored on the server with the conversation, topic and department
    browser.find_elements(By.XPATH, "//button[@class='zq-rate' and text()='满意']")[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "zhuqi-widget").get_attribute("data-last-rating") == "saved")
    counts = ChannelStore(servers.channels_db).rating_counts("department")
    assert counts.get("scjg", {}).get("满意") == 1

    # user text is text, never markup
    ask(browser, "<img src=x onerror=alert(1)>")
    wait(browser, lambda d: any(u.text.startswith("<img src=x onerror=alert(1)>")
                                for u in d.find_elements(By.CSS_SELECTOR, ".zq-user")))
    assert not browser.find_elements(By.CSS_SELECTOR, ".zq-list img")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018

    # a reload keeps the conversation: same session, same history, rating remembered
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.ID, "zhuqi-widget").get_attribute("data-session") == session)
    assert any("区市场监管局" in c for c in cards(browser)) and any("区金融办" in c for c in cards(browser))
    assert browser.find_elements(By.XPATH, "//span[@class='zq-rated' and text()='已评价：满意']")
    assert servers.user_turns(session)[:3] == ["简易注销公告要公示多少天", "你好", "/first_loan_renewal"]
    browser.save_screenshot(str(SHOTS / "widget-after-reload.png"))


def test_a_phone_sized_screen(browser, servers: Servers) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 844)
    browser.get(f"{servers.widget_url}/index.html?server={servers.url}")
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".zq-panel").is_displayed()
         or d.find_element(By.CSS_SELECTOR, ".zq-open").click() or False)
    panel = browser.find_element(By.CSS_SELECTOR, ".zq-panel")
    assert panel.size["width"] <= 390
    assert browser.switch_to.active_element.get_attribute("aria-label") == "输入您的问题"
    browser.save_screenshot(str(SHOTS / "widget-phone.png"))
    browser.set_window_size(1100, 900)


def test_a_message_no_socket_acknowledged_is_sent_again_when_the_widget_comes_back(browser, servers: Servers) -> None:
    """Every message stays pending in localStorage until the server acknowledges it. A page
    reloaded with two pending (its socket died with them under way): the one the server never
    got is answered now; the one whose turn it holds gets that answer again, not a second turn."""
    from selenium.webdriver.common.by import By

    browser.get(f"{servers.widget_url}/index.html?server={servers.url}")
    browser.execute_script("localStorage.clear()")  # a first visit: the widget closed, no session
    session = open_widget(browser, servers)
    ask(browser, "首贷续贷中心在哪里")
    wait(browser, lambda d: any("区金融办" in c for c in cards(d)))
    kept = lambda: json.loads(browser.execute_script("return localStorage.getItem('zhuqi-widget')"))  # noqa: E731
    wait(browser, lambda d: kept()["pending"] == [])  # acknowledged
    events = requests.get(f"{servers.url}/conversations/{session}/tracker", params={"token": TOKEN}, timeout=10).json()
    answered_id = [e["message_id"] for e in events["events"] if e["event"] == "user"][-1]
    state = kept()
    now = browser.execute_script("return Date.now()")
    state["pending"] = [{"id": answered_id, "message": "首贷续贷中心在哪里", "ts": now, "sent": True},
                        {"id": "browser-lost-0001", "message": "简易注销公告要公示多少天", "ts": now, "sent": True}]
    browser.execute_script("localStorage.setItem('zhuqi-widget', arguments[0])", json.dumps(state))
    before = len(cards(browser))
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.ID, "zhuqi-widget").get_attribute("data-session") == session)
    wait(browser, lambda d: any("20天" in c for c in cards(d)[before:]))
    wait(browser, lambda d: kept()["pending"] == [])
    assert servers.user_turns(session) == ["首贷续贷中心在哪里", "简易注销公告要公示多少天"]
