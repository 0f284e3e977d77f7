"""Headless Chromium (Debian's chromium + chromium-driver) for the end-to-end tests."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest

from tests.conftest import ROOT

SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def chromium(window: str = "1100,900", user_data_dir: str | None = None, console_log: bool = False):
    """Debian's Chromium, headless, with the flags this machine's closed network needs;
    `console_log` keeps the page's console messages (driver.get_log("browser"))."""
    if not (CHROMIUM and DRIVER):
        pytest.fail("Debian's chromium and chromium-driver are needed: make setup installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={window}", "--lang=zh-CN", *([f"--user-data-dir={user_data_dir}"] if user_data_dir else [])):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(DRIVER))


def sign_in(driver, page: str, username: str, password: str) -> None:
    """The console's login form, filled in and sent as a person does (`page`: a console URL
    that shows it: /login, or / before signing in)."""
    from selenium.webdriver.common.by import By

    driver.get(page)
    wait(driver, lambda d: d.find_elements(By.ID, "username"))
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    driver = chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 20):
    """Until `condition` holds; an element the widget redrew meanwhile (a card joining the
    answer above it replaces that row) is looked for again, not an error."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def ask(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, ".zq-input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def cards(driver) -> list[str]:
    """The visible text of every answer that carries a card (the card itself is folded)."""
    from selenium.webdriver.common.by import By

    rows = [r for r in driver.find_elements(By.CSS_SELECTOR, ".zq-msg.zq-bot") if r.find_elements(By.CSS_SELECTOR, ".zq-more")]
    return [r.find_element(By.CSS_SELECTOR, ":scope > .zq-text").text for r in rows]


def open_widget(driver, servers) -> str:
    """The demo page with the widget opened and its session confirmed; the session id."""
    from selenium.webdriver.common.by import By

    driver.get(f"{servers.widget_url}/index.html?server={servers.url}")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".zq-open"))
    driver.find_element(By.CSS_SELECTOR, ".zq-open").click()
    wait(driver, lambda d: d.find_element(By.ID, "zhuqi-widget").get_attribute("data-session"))
    return driver.find_element(By.ID, "zhuqi-widget").get_attribute("data-session")
