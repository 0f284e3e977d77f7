"""The web widget in a real headless Chromium, on the demo page `make run` serves."""

from __future__ import annotations

import pytest

from channels.store import ChannelStore
from tests.e2e.browser import SHOTS, ask, browser, cards, open_widget, wait  # noqa: F401 - browser is a fixture
from tests.e2e.servers import Servers

pytestmark = [pytest.mark.model, pytest.mark.servers]
def test_the_widget_end_to_end(browser, servers: Servers) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    session = open_widget(browser, servers)

    # a registration question: a card naming the market regulator, rendered, not raw JSON
    ask(browser, "公司注册要多久")
    wait(browser, lambda d: any("区市场监管局" in c for c in cards(d)))
    card = cards(browser)[0]
    assert "渝中府办〔2023〕32号 第2条" in card and "{" not in card
    browser.save_screenshot(str(SHOTS / "widget-card.png"))

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
    assert servers.user_turns(session)[:3] == ["公司注册要多久", "你好", "/first_loan_renewal"]
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
