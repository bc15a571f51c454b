"""The chat page in headless Chromium: two pages on two workers, one message typed.

Chromium is Debian's (never a downloaded browser), driven by Playwright with a fresh
profile; the app runs with two workers and a real redis-server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.pubsub.support import BOTH_WORKERS_SERVING, RedisServer
from tests.support.servers import ServerProcess, run_server
from tests.support.services import require_binary

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 20_000
# Each reload lands on either worker; twenty misses in a row would mean it never moves.
MAX_RELOADS = 20

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    chromium = require_binary("chromium", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield context
        finally:
            context.close()


def chat_page(context: BrowserContext, server: ServerProcess, name: str) -> Page:
    page = context.new_page()
    page.goto(f"{server.url}/chat/?name={name}")
    wait_until_connected(page)
    return page


def wait_until_connected(page: Page) -> None:
    page.locator("body[data-ready='1']").wait_for(timeout=WAIT_MS)


def worker_of(page: Page) -> str:
    worker = page.get_attribute("body", "data-worker")
    assert worker
    return worker


def test_a_message_typed_in_one_page_appears_in_the_other(
    redis: RedisServer, browser: BrowserContext
) -> None:
    with run_server("examples.chat:app", "--workers", "2", env={"CHAT_REDIS_URL": redis.url}) as server:
        server.wait_for_log(BOTH_WORKERS_SERVING, timeout=30)
        ada = chat_page(browser, server, "ada")
        bob = chat_page(browser, server, "bob")
        for _ in range(MAX_RELOADS):
            if worker_of(bob) != worker_of(ada):
                break
            bob.reload()
            wait_until_connected(bob)
        assert worker_of(bob) != worker_of(ada), "both pages stayed on one worker"
        expect(bob.locator("#status")).to_contain_text(f"served by worker {worker_of(bob)}")

        ada.fill("#text", "hello from ada")
        ada.press("#text", "Enter")
        expected = re.compile(rf"^ada: hello from ada\s+\(via worker {worker_of(ada)}\)$")
        expect(bob.locator("#log li").last).to_have_text(expected, timeout=WAIT_MS)
        expect(ada.locator("#log li").last).to_have_text(expected, timeout=WAIT_MS)
        expect(ada.locator("#text")).to_have_value("")

        bob.fill("#text", "hi ada")
        bob.click("#send")
        expect(ada.locator("#log li").last).to_have_text(
            re.compile(rf"^bob: hi ada\s+\(via worker {worker_of(bob)}\)$"), timeout=WAIT_MS
        )
