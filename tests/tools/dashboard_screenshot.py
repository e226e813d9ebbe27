"""Make the dashboard's screenshots for the docs (docs/images/dashboard*.png).

    python tests/tools/dashboard_screenshot.py [OUT_DIR]

A mock on a loopback port with a few tasks on two accounts, a fault rule that fires, a fate
rule and limits, shown in headless Chromium (Debian's, driven by Playwright) at 1440x900: the
page with a finished video task open, and a request opened from the journal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, create_app, make_jwt
from mockkling.server import LiveServer

OUT = Path(__file__).resolve().parents[2] / "docs" / "images"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
T2V = "/v1/videos/text2video"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    backend = Backend(Config(seed=2024))
    backend.use_manual_clock(start_ms=1_780_000_000_000)
    backend.add_account("studio-b", "studio-b-secret-key-0123456789")
    with LiveServer(create_app(backend)) as server:
        ours = httpx.Client(base_url=server.url)
        ours.headers["Authorization"] = f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"
        theirs = httpx.Client(base_url=server.url)
        theirs.headers["Authorization"] = f"Bearer {make_jwt('studio-b', 'studio-b-secret-key-0123456789')}"
        shown = ours.post(T2V, json={"prompt": "a red fox in the snow", "duration": "5"}).json()["data"]
        ours.post(T2V, json={"prompt": "city lights", "model_name": "kling-v1-6", "mode": "pro"})
        theirs.post("/v1/images/generations", json={"prompt": "a lighthouse", "n": 2})
        backend.advance(8)
        backend.fates.add(fate={"status": "failed", "message": "content review"}, action="image2video")
        backend.limits.set(rate=20, concurrency=4)
        ours.post(T2V, json={"prompt": "waves at dusk"})
        theirs.post(T2V, json={"prompt": "a paper boat"})
        backend.faults.add("POST /v1/videos/* 1303 x2")
        ours.post(T2V, json={"prompt": "over the limit"})
        ours.get(f"{T2V}/{shown['task_id']}")
        ours.get(T2V, params={"pageNum": 1, "pageSize": 10})
        theirs.get(f"{T2V}/no-such-task")
        backend.advance(2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{server.url}/__mockkling/")
            page.wait_for_selector("html[data-ready]")
            task = page.locator(f'li[data-task-id="{shown["task_id"]}"]')
            task.locator(".task-toggle").click()
            task.locator("video").evaluate(
                """v => new Promise(done => {
                    v.addEventListener('seeked', done, {once: true});
                    v.currentTime = 2;
                })"""
            )
            page.screenshot(path=str(out / "dashboard.png"))
            page.locator("#journal-rows tr", has_text="429").get_by_role("button").click()
            page.get_by_role("dialog").get_by_text("Answer: 429").wait_for()
            page.screenshot(path=str(out / "dashboard-request.png"))
            browser.close()
        ours.close()
        theirs.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
