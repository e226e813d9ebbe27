"""End to end: the real server on uvicorn, on a free loopback port, driven over HTTP with httpx
and a PyJWT token built exactly as the official SDK builds it."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from PIL import Image

from mockkling import Backend, Config, Timing, create_app
from mockkling.server import LiveServer

AK, SK = "e2e-access-key", "e2e-secret-key-of-at-least-32-bytes"


def official_token() -> str:
    now = int(time.time())
    return jwt.encode(
        {"iss": AK, "exp": now + 1800, "nbf": now - 5}, SK, headers={"alg": "HS256", "typ": "JWT"}
    )


@pytest.fixture
def server() -> Iterator[tuple[LiveServer, Backend]]:
    backend = Backend(Config(accounts={AK: SK}, timing=Timing(0.5, 1.0)))
    backend.use_manual_clock()
    with LiveServer(create_app(backend)) as live:
        yield live, backend


def test_full_lifecycles_over_real_http(server: tuple[LiveServer, Backend]) -> None:
    live, backend = server
    assert live.url.startswith("http://127.0.0.1:")
    png = io.BytesIO()
    Image.new("RGB", (512, 512), "white").save(png, format="PNG")
    requests = {
        "text2video": {"model_name": "kling-v1-6", "prompt": "a cat", "duration": "10"},
        "image2video": {"model_name": "kling-v1", "image": base64.b64encode(png.getvalue()).decode()},
    }
    with httpx.Client(base_url=live.url, timeout=10) as client:
        for action, body in requests.items():
            headers = {"Authorization": f"Bearer {official_token()}"}
            created = client.post(f"/v1/videos/{action}", json=body, headers=headers)
            assert created.status_code == 200
            task_id = created.json()["data"]["task_id"]
            statuses = []
            for _ in range(5):
                data = client.get(f"/v1/videos/{action}/{task_id}", headers=headers).json()["data"]
                statuses.append(data["task_status"])
                backend.advance(0.5)
            assert statuses == ["submitted", "processing", "processing", "succeed", "succeed"]
            video = data["task_result"]["videos"][0]
            assert video["url"].startswith(live.url)
            download = client.get(video["url"])
            assert download.status_code == 200 and download.content[4:8] == b"ftyp"
            assert video["duration"] == body.get("duration", "5")


def test_the_cli_serves_and_answers(tmp_path: object) -> None:
    """`mockkling serve` starts, answers with the official envelope, and stops on SIGTERM."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockkling.cli",
            "serve",
            "--port",
            str(port),
            "--queue-seconds",
            "0",
            "--run-seconds",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(f"{url}/v1/videos/text2video")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        assert response.status_code == 401 and response.json()["code"] == 1001
        token = jwt.encode(
            {"iss": "mockkling-access-key", "exp": int(time.time()) + 60},
            "mockkling-secret-key-for-local-tests",
        )
        created = httpx.post(
            f"{url}/v1/videos/text2video", json={"prompt": "x"}, headers={"Authorization": f"Bearer {token}"}
        )
        task_id = created.json()["data"]["task_id"]
        data = httpx.get(
            f"{url}/v1/videos/text2video/{task_id}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert data["data"]["task_status"] == "succeed"
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells the signal.
    assert proc.returncode in (0, -15)
    assert b"default credentials" in err
    assert b"Finished server process" in err
