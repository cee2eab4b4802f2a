"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver.

Nothing is downloaded: the driver is given by path, so Selenium Manager never runs. Tests
that need a browser skip, saying why, where Chromium or its driver is not installed
(`.ci/run` installs both, so CI always runs them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

__all__ = ["chromium"]


def _missing() -> str | None:
    if importlib.util.find_spec("selenium") is None:
        return "the selenium package (a dev dependency: make install)"
    for command, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(command) is None:
            return f"{command} (apt-get install {package})"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium, quit (with every process it started) when the block ends."""
    missing = _missing()
    if missing is not None:
        pytest.skip(f"browser test needs {missing}; .ci/run installs it")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
    ):
        options.add_argument(argument)
    service = Service(executable_path=str(shutil.which("chromedriver")))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
