"""A new operator's question, asked in a real browser: "where is order #1014?".

A real `dagster-webserver` (a child process over the repository's workspace, with a private
DAGSTER_HOME) reads the instance this test writes flow A's runs to; headless Chromium (Debian's, driven
by chromedriver) does what the README tells an operator: Runs → Filter → types the order's number →
picks its tag and outcome; the list then shows the one run that took the order, whose page shows the
order's name. Two orders go through in two runs, so the filter
is shown to pick the right one.

Every wait is an explicit wait on what the page shows (the UI renders from GraphQL after the page
loads); the deadlines are generous guards against a hang on a busy two-core box, never pacing.
Skipped only when Chromium or chromedriver is not installed (`scripts/ensure-services.sh` installs them).
"""

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from mienne_ops.devtools.webserver import WebserverProcess
from mienne_ops.flows.common import order_tag_key
from mienne_ops.sandbox.order_factory import build_order

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_GUARD = 180.0  # seconds, against a hang only


@pytest.fixture
def webserver(sandbox, tmp_path) -> Iterator[WebserverProcess]:
    env = {"MIENNE_SANDBOX_URL": sandbox.url, "MIENNE_STATE_DIR": str(tmp_path / "state")}
    with WebserverProcess(tmp_path / "dagster_home", env, tmp_path / "webserver.log") as server:
        yield server


@pytest.fixture
def dagster_instance(webserver) -> Iterator[dg.DagsterInstance]:
    """The stack writes its runs to the instance the webserver reads."""
    instance = webserver.instance()
    yield instance
    instance.dispose()


@pytest.fixture
def browser(tmp_path: Path):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        pytest.skip(
            f"headless browser test needs {' and '.join(missing)} (scripts/ensure-services.sh installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_GUARD)
    try:
        yield driver
    finally:
        driver.save_screenshot(str(tmp_path / "last_page.png"))  # for a failure's post-mortem
        driver.quit()


def place(url: str, payload: dict) -> dict:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def click(wait, xpath: str) -> None:
    """Click the element once it is clickable; found again if the UI replaced it meanwhile."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    def clicked(page) -> bool:
        element = ec.element_to_be_clickable((By.XPATH, xpath))(page)
        if not element:
            return False
        element.click()
        return True

    wait.until(clicked)


def menu_item(text: str) -> str:
    """XPath of the filter menu's option reading ``text`` (not a run's tag chip that reads the same)."""
    return f"//*[@role='menuitem'][normalize-space()='{text}']"


def test_an_operator_finds_an_order_by_its_name_in_the_dagster_ui(stack, webserver, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sandbox, driver = stack["sandbox"], stack["driver"]
    rng = random.Random(2026)
    orders = []
    for _ in range(2):  # one run each
        orders.append(place(sandbox.url, build_order(sandbox.hub.catalog, rng)))
        assert driver.tick("shopify_orders_sensor") == 1
    assert all(run.success for run in driver.runs)
    wanted, other = orders
    wanted_run, other_run = (run.run_id for run in driver.runs)
    # The UI re-renders a menu as its values arrive: an element found a moment ago may be replaced.
    wait = WebDriverWait(browser, PAGE_GUARD, ignored_exceptions=(StaleElementReferenceException,))

    key = order_tag_key(wanted["name"])
    assert key is not None
    # Dagster's first-visit "join the community" dialog is remembered by the browser: remember it.
    browser.get(f"{webserver.url}/server_info")
    browser.execute_script("window.localStorage.setItem('communityNux', '\"1\"');")

    # Runs → Filter → type the order's number → its tag → the outcome.
    browser.get(f"{webserver.url}/runs")
    click(wait, "//button[contains(., 'Filter')]")
    search = wait.until(
        ec.visibility_of_element_located((By.XPATH, "//input[@placeholder='Search filters...']"))
    )
    search.send_keys(wanted["name"].lstrip("#"))
    click(wait, menu_item(key))
    click(wait, menu_item("done"))

    def only_the_wanted_run(page) -> WebElement | None:
        """The wanted run's link once the list is filtered (the other run's is gone)."""
        if page.find_elements(By.CSS_SELECTOR, f'a[href*="/runs/{other_run}"]'):
            return None
        links = page.find_elements(By.CSS_SELECTOR, f'a[href*="/runs/{wanted_run}"]')
        return links[0] if links else None

    link = wait.until(only_the_wanted_run)
    assert "tag%3A" in browser.current_url or "tag:" in browser.current_url  # the filter is in the address

    browser.get(link.get_attribute("href"))
    # The run's page: the op's output names the order ("#1014 done") at the top of its event ...
    body = (By.TAG_NAME, "body")
    wait.until(ec.text_to_be_present_in_element(body, f"{wanted['name']} done"))
    assert other["name"] not in browser.find_element(*body).text
    # ... and the run's tags (behind "View tags and config") carry it too.
    tags_button = wait.until(
        ec.presence_of_element_located((By.XPATH, "//button[contains(., 'View tags and config')]"))
    )
    # A script's click: Dagster's first-visit "community" dialog may lie over the button.
    browser.execute_script("arguments[0].click();", tags_button)
    wait.until(ec.text_to_be_present_in_element(body, key))
