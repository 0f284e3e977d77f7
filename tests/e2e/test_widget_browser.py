"""The web widget in a real headless Chromium, on the demo page `make run` serves."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from channels.store import ChannelStore
from tests.conftest import ROOT
from tests.e2e.servers import Servers

pytestmark = [pytest.mark.model, pytest.mark.servers]
SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (CHROMIUM and DRIVER):
        pytest.fail("Debian's chromium and chromium-driver are needed: make setup installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,900", "--lang=zh-CN"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def ask(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, ".zq-input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def cards(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [c.text for c in driver.find_elements(By.CSS_SELECTOR, ".zq-card")]


def test_the_widget_end_to_end(browser, servers: Servers) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    browser.get(f"{servers.widget_url}/index.html?server={servers.url}")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".zq-open"))
    browser.find_element(By.CSS_SELECTOR, ".zq-open").click()
    wait(browser, lambda d: d.find_element(By.ID, "zhuqi-widget").get_attribute("data-session"))
    session = browser.find_element(By.ID, "zhuqi-widget").get_attribute("data-session")

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
