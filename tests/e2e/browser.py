"""Headless Chromium for tests of what a person sees: the Debian ``chromium`` package, driven by
the ``playwright`` package through ``executable_path`` (browser downloads are never used).

``scripts/test.sh`` installs the package (``scripts/debian-packages.txt``); without it the
browser tests fail and say how to get it, rather than skipping and passing quietly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system Chromium (``AIHUBMIX_CHROMIUM`` overrides), or a failure saying how to install it."""
    configured = os.environ.get("AIHUBMIX_CHROMIUM")
    found = configured or next((p for p in map(shutil.which, CANDIDATES) if p), None)
    if not found:
        pytest.fail(
            "headless Chromium is needed for the browser tests: apt-get install chromium "
            "(scripts/test.sh installs what scripts/debian-packages.txt lists)"
        )
    return found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def page_with_cookie(browser: Browser, base_url: str, cookie: str | None) -> Page:
    """A fresh browser context (its own cookie jar) holding Airflow's ``_token`` session cookie."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if cookie is not None:
        context.add_cookies([{"name": "_token", "value": cookie, "url": base_url}])
    return context.new_page()
