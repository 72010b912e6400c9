"""A real Debian chromium driven by Playwright, for the web page tests.

``browser`` (module scope) launches ``/usr/bin/chromium`` (``make tools`` installs it; Playwright's
own browser download cannot work offline). ``open_page`` gives a page that records every
console error, uncaught exception and request to anything but 127.0.0.1, so a test can fail on
them (``BrowserPage.assert_clean``), and saves screenshots: under ``$TELLER_SCREENSHOTS`` when
set (``make screenshots`` sets it to ``docs/screenshots/``, which the README shows), else in a
temporary directory, so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
SCREENSHOTS = Path(os.environ.get("TELLER_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "teller-screenshots")
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run `make tools`"
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class BrowserPage:
    page: Page
    errors: list[str] = field(default_factory=list)
    # Console errors the test provoked on purpose (a 4xx the page must show), by substring.
    expected: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        unexpected = [e for e in self.errors if not any(x in e for x in self.expected)]
        for error in self.errors:
            if error not in unexpected:
                log.info("expected browser error: %s", error)
        assert not unexpected, f"browser errors: {unexpected}"

    def screenshot(self, name: str, size: dict[str, int], full_page: bool = True) -> Path:
        self.page.set_viewport_size(size)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def open_page(browser: Browser, **context_args: Any) -> BrowserPage:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, **context_args)
    page = context.new_page()
    record = BrowserPage(page)
    page.on("console", lambda msg: record.errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: record.errors.append(f"exception: {exc}"))

    def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            record.errors.append(f"external request: {route.request.url}")
            route.abort()

    page.route("**/*", only_loopback)
    return record
