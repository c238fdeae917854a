"""Debian's chromium driven headless by Playwright (the system browser: no browser download) for the report tests."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_or_skip() -> Iterator[Any]:
    """A headless chromium; skipped where none is installed (scripts/test installs Debian's as root), failed in CI."""
    exe = chromium_path()
    if exe is None:
        reason = "no chromium on PATH (apt-get install chromium; scripts/test does it as root)"
        if os.environ.get("EXECGUARD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EXECGUARD_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Opened:
    page: Any
    console: list[str] = field(default_factory=list)  # errors and warnings, and uncaught exceptions
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_report(browser: Any, path: Path, width: int = 1400, height: int = 900) -> Opened:
    """Open a report file and wait until its script says it has drawn everything."""
    page = browser.new_page(viewport={"width": width, "height": height})
    opened = Opened(page)
    page.on("console", lambda m: opened.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: opened.console.append(f"pageerror: {e}"))
    page.on("request", lambda r: opened.requests.append(r.url))
    page.on("requestfailed", lambda r: opened.failed.append(r.url))

    def dialog(d: Any) -> None:
        opened.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(path.resolve().as_uri())
    wait_until(page, "() => !!(window.__report && window.__report.ready)", timeout=120)
    return opened


def wait_until(page: Any, predicate: str, arg: Any = None, timeout: float = 30) -> None:
    """Poll a JS function until it returns true. Not page.wait_for_function: Playwright 1.52 (the floor) evals its
    predicate inside the page, which the report's Content-Security-Policy (no 'unsafe-eval') refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{predicate} not true after {timeout} s")
        time.sleep(0.02)


def table_count(page: Any) -> int:
    return int(page.eval_on_selector("#alerts", "e => e.dataset.count"))


def filter_to(page: Any, text: str) -> int:
    """Type into the table's filter and wait until the table has been redrawn for it."""
    page.fill("#filter", text)
    wait_until(page, "(t) => document.querySelector('#alerts').dataset.filter === t", text)
    return table_count(page)
