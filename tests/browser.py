"""A real headless Chromium (Debian's ``chromium``) driven by Playwright, for the pages
tracetool writes: console errors, the plotly graph's data, hover and click."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Chromium's GPU emulation logs performance notes as console warnings; they say nothing
# about the page.
NOISE = ("GL Driver Message", "GPU stall", "WebGL")


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs the Debian package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@dataclass
class Opened:
    page: Any
    errors: list[str] = field(default_factory=list)  # console errors and page exceptions


@contextmanager
def opened(
    html: Path,
    width: int = 1500,
    height: int = 1000,
    ready: str = "window.tracetoolPainted !== undefined",
) -> Iterator[Opened]:
    """``html`` loaded from disk with the network cut off, once ``ready`` (a JavaScript
    expression) holds: by default, once the timeline's figure is drawn."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed; it is in the test extra")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            # A self-contained page needs nothing from the network: fail any request.
            context.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith("file:") else route.abort()
                ),
            )
            page = context.new_page()
            out = Opened(page)

            def console(msg: Any) -> None:
                if msg.type == "error" and not any(n in msg.text for n in NOISE):
                    out.errors.append(msg.text)

            page.on("console", console)
            page.on("pageerror", lambda exc: out.errors.append(f"page error: {exc}"))
            page.on("requestfailed", lambda req: out.errors.append(f"request failed: {req.url}"))
            page.goto(html.resolve().as_uri())
            page.wait_for_function(ready, timeout=60_000)
            yield out
        finally:
            browser.close()
