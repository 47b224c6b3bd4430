"""A real browser for the web page's tests: Debian's chromium driven by Debian's chromedriver
through Selenium (no browser is downloaded). Skipped, with the command that installs them, only
where they are missing; ``.ci/run`` installs them, so CI always runs these tests."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

INSTALL = "apt-get install -y chromium chromium-driver"
SHOTS = os.environ.get("ARGUS_SCREENSHOTS")
"""A folder to save the README's screenshots into (``make screenshots``); unset: none taken."""


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(f"chromium and chromedriver are not installed here ({INSTALL}; .ci/run "
                    "installs them)")
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for a module (starting one costs about two seconds)."""
    binary, driver_path = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def click(driver: Any, css: str, what: str = "") -> None:
    """Click the element ``css`` finds, found again and retried while the page draws it anew
    (a detail panel is drawn again when its data arrives: an element found before is stale)."""
    wait_for(driver, lambda d: d.find_element("css selector", css).click() or True,
             what=what or f"a click on {css}")


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = 30,
             what: str = "") -> Any:
    """The first truthy value of ``condition(driver)``, polled until ``timeout``."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition(driver)
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException) as exc:
            last = exc
        time.sleep(0.1)
    errors = [e["message"] for e in driver.get_log("browser")]
    shown = driver.execute_script(
        "const p = document.querySelector('[role=tabpanel]:not([hidden])');"
        "return p ? p.innerText.slice(0, 1500) : document.body.innerText.slice(0, 1500)")
    raise AssertionError(f"timed out waiting for {what or condition}; last error {last}; "
                         f"browser console: {errors}; the page shows:\n{shown}")


def screenshot(driver: Any, name: str, height: int = 1000) -> None:
    """Save ``SHOTS/NAME.jpg``, the top of the page at 1280 x ``height``, when asked to
    (``make screenshots``); JPEG keeps the README's pictures small."""
    if not SHOTS:
        return
    import io

    from PIL import Image

    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1280, height)
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    shot.save(folder / f"{name}.jpg", quality=82, optimize=True, progressive=True)
    driver.set_window_size(1280, 1000)
