"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright against the
mock on a loopback port. The page loads with no console error, shows a task created over the
API within a second and plays its video, changes the mock's state with each of its actions
(checked over the control API), and shows a request with its credentials masked.

Chromium comes from the system (``apt-get install chromium``; .ci/run installs it): Playwright's
own browser download is never used. Without it these tests are skipped, except in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, create_app, make_jwt
from mockkling.server import LiveServer

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# What a browser needs on a machine with no network and no display (see the machine notes).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
C = "/__mockkling"
T2V = "/v1/videos/text2video"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        _unavailable("no chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        # Playwright starts Chromium with a new, empty profile (user data dir) of its own.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def backend() -> Backend:
    backend = Backend(Config(seed=21))
    backend.use_manual_clock()
    return backend


@pytest.fixture
def server(backend: Backend) -> Iterator[LiveServer]:
    with LiveServer(create_app(backend)) as live:
        yield live


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


class Page:
    """A browser tab on the dashboard, with every console error and uncaught exception kept."""

    def __init__(self, browser: Any, url: str, **context: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900}, **context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda dialog: dialog.accept())  # "Reset the mock?"
        self.url = url

    def open(self) -> Any:
        self.page.goto(f"{self.url}{C}/")
        self.page.wait_for_selector("html[data-ready]")
        return self.page

    def close(self) -> None:
        self.context.close()  # before the server stops: a page left open would reconnect


@pytest.fixture
def tab(browser: Any, server: LiveServer) -> Iterator[Page]:
    tab = Page(browser, server.url)
    yield tab
    tab.close()


def task_item(page: Any, task_id: str) -> Any:
    return page.locator(f'li[data-task-id="{task_id}"]')


def test_the_page_loads_with_no_console_error_and_every_control_has_a_name(tab: Page) -> None:
    page = tab.open()
    assert page.title() == "mockkling dashboard"
    assert page.locator("#connection").inner_text() == "Live"
    for heading in ("Tasks", "Requests", "Fault rules", "Fate rules", "Limits"):
        assert page.get_by_role("heading", name=heading).count() == 1, heading
    # Every control a screen reader reaches says what it is.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, button, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
            .map(el => el.outerHTML)"""
    )
    assert unnamed == []
    assert tab.errors == []


def test_a_task_created_over_the_api_appears_within_a_second_and_its_video_plays(
    tab: Page, api: httpx.Client, backend: Backend
) -> None:
    page = tab.open()
    task_id = api.post(T2V, json={"prompt": "a kitten"}).json()["data"]["task_id"]
    started = time.monotonic()
    task_item(page, task_id).wait_for(timeout=1000)
    assert time.monotonic() - started < 1.0
    item = task_item(page, task_id)
    assert item.locator(".badge").inner_text() == "submitted"
    assert page.locator("#task-groups").get_by_text(DEFAULT_ACCESS_KEY).count() == 1  # grouped by account
    assert item.locator("xpath=ancestor::section[@data-action='text2video']").count() == 1  # and endpoint

    backend.advance(600)
    item.locator(".badge", has_text="succeed").wait_for(timeout=1000)
    item.locator(".task-toggle").click()
    timeline = item.get_by_role("list", name=f"Status timeline of task {task_id}")
    assert timeline.locator("li.reached").count() == 3
    recorded = len(backend.journal)
    video = item.locator("video")
    played = video.evaluate(
        """async (v) => {
            v.muted = true;
            await v.play();
            await new Promise(resolve => setTimeout(resolve, 400));
            return {time: v.currentTime, width: v.videoWidth, error: v.error && v.error.code};
        }"""
    )
    assert played["error"] is None and played["width"] > 0 and played["time"] > 0
    assert len(backend.journal) == recorded  # the page's downloads are not the client's requests
    assert tab.errors == []


def test_each_action_changes_the_mocks_state(tab: Page, api: httpx.Client) -> None:
    page = tab.open()

    # Advance the clock, from the keyboard: type the seconds, press Enter.
    before = api.get(f"{C}/clock").json()["now_ms"]
    page.get_by_label("Advance by").fill("30")
    page.get_by_label("Advance by").press("Enter")
    page.get_by_text("Clock advanced by 30 s").wait_for()
    assert api.get(f"{C}/clock").json()["now_ms"] == before + 30_000

    # Set a task's fate.
    task_id = api.post(T2V, json={"prompt": "a fated kitten"}).json()["data"]["task_id"]
    item = task_item(page, task_id)
    item.locator(".task-toggle").press("Enter")
    item.get_by_label("Fate").select_option("failed")
    item.get_by_label("Failure message").fill("out of luck")
    item.get_by_role("button", name="Set fate").click()
    item.locator(".badge", has_text="failed").wait_for()
    task = api.get(f"{C}/tasks/{task_id}").json()
    assert (task["status"], task["status_msg"]) == ("failed", "out of luck")

    # Add a fault rule, then remove it.
    form = page.locator("#fault-form")
    form.get_by_label("Method").select_option("POST")
    form.get_by_label("Path (glob)").fill("/v1/videos/*")
    form.get_by_label("Error code").fill("1303")
    form.get_by_label("Times").fill("2")
    form.get_by_role("button", name="Add fault rule").click()
    page.get_by_text("Fault rule 1 added").wait_for()
    [rule] = api.get(f"{C}/faults").json()["faults"]
    assert (rule["method"], rule["path"], rule["code"], rule["times"]) == ("POST", "/v1/videos/*", 1303, 2)
    assert api.post(T2V, json={"prompt": "refused"}).json()["code"] == 1303
    page.locator("#fault-list").get_by_text("fired 1").wait_for()
    page.get_by_role("button", name="Remove fault rule 1").click()
    page.get_by_text("Fault rule 1 removed").wait_for()
    assert api.get(f"{C}/faults").json()["faults"] == []

    # Reset (the page asks first; the tab accepts).
    page.get_by_role("button", name="Reset mock…").click()
    page.get_by_text("The mock was reset.").wait_for()
    assert api.get(f"{C}/tasks").json()["tasks"] == []
    assert api.get(f"{C}/journal").json()["requests"] == []
    task_item(page, task_id).wait_for(state="detached")
    assert tab.errors == []


def test_the_journal_shows_a_request_and_its_answer_with_the_credentials_masked(
    tab: Page, api: httpx.Client
) -> None:
    page = tab.open()
    token = api.headers["Authorization"].removeprefix("Bearer ")
    api.get(
        T2V, params={"pageNum": 1, "access_token": "query-secret"}, headers={"X-Api-Key": "header-secret"}
    )
    row = page.locator("#journal-rows tr").first
    row.get_by_role("button").wait_for()
    assert "GET" in row.inner_text() and T2V in row.inner_text() and "200" in row.inner_text()
    row.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Answer: 200").wait_for()
    text = dialog.inner_text()
    assert "Bearer ***" in text and "access_token=***" in text
    assert '"code": 0' in text  # the answer, pretty-printed
    html = page.content()
    for secret in (token, "query-secret", "header-secret"):
        assert secret not in html and secret not in text
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.closest('#journal-rows') !== null")  # focus back on the row
    assert tab.errors == []


def test_with_an_admin_token_the_browser_gives_it_as_basic_credentials(browser: Any) -> None:
    backend = Backend(Config(seed=21, admin_token="t0ken"))
    with LiveServer(create_app(backend)) as live:
        # Asked (401, Basic), the browser answers with the credentials it was given.
        allowed = Page(browser, live.url, http_credentials={"username": "me", "password": "t0ken"})
        page = allowed.open()
        assert page.locator("#connection").inner_text() == "Live"
        assert allowed.errors == []
        allowed.close()


def test_the_skip_link_leads_the_keyboard_to_the_tasks(tab: Page) -> None:
    page = tab.open()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to tasks"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "tasks"


def test_the_benchmark_prints_every_figure(browser: Any) -> None:
    """tests/benchmarks/dashboard.py in its short mode (it asserts no timing: it prints figures)."""
    script = Path(__file__).resolve().parent / "benchmarks" / "dashboard.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for figure in (
        "page weight:",
        "time to render:",
        "query throughput:",
        "create throughput:",
        "query server CPU per request:",
        "server work for an open page:",
    ):
        assert figure in result.stdout, figure
