"""End to end over a real socket: the app on uvicorn on a free loopback port, driven with httpx
and a PyJWT token built exactly as the official SDK builds it, one server for the official
surface and its result files, the gateway surfaces and the control API; and ``mockkling serve``
itself, over HTTPS with its throwaway CA, from start-up banner to SIGTERM.

What each surface answers is tested in process (test_lifecycle, test_media, test_gateway,
test_control); here only what a socket can change: status lines, headers, HEAD without a body
on the wire, byte ranges, addresses in result URLs, the client address the control API sees.
"""

from __future__ import annotations

import base64
import io
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from PIL import Image
from serve_process import ServeProcess

from mockkling import Backend, Config, Timing, create_app
from mockkling.server import LiveServer

pytestmark = pytest.mark.slow  # a live server, and `mockkling serve` in a child process

AK, SK = "e2e-access-key", "e2e-secret-key-of-at-least-32-bytes"
API_KEY = "sk-e2e-gateway-key"


def official_token() -> str:
    now = int(time.time())
    return jwt.encode(
        {"iss": AK, "exp": now + 1800, "nbf": now - 5}, SK, headers={"alg": "HS256", "typ": "JWT"}
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LiveServer, Backend]]:
    """One live server for the module; each test works with tasks of its own."""
    backend = Backend(Config(accounts={AK: SK}, api_keys={API_KEY: AK}, timing=Timing(0.5, 1.0)))
    backend.use_manual_clock()
    with LiveServer(create_app(backend)) as live:
        yield live, backend


def _png(size: tuple[int, int]) -> str:
    png = io.BytesIO()
    Image.new("RGB", size, "white").save(png, format="PNG")
    return base64.b64encode(png.getvalue()).decode()


def test_official_lifecycles_and_their_downloads(server: tuple[LiveServer, Backend]) -> None:
    """Each task polled to its end over HTTP, then its result fetched whole, by HEAD (headers,
    no body on the wire) and by a byte range."""
    live, backend = server
    assert live.url.startswith("http://127.0.0.1:")
    requests = {
        "/v1/videos/text2video": {"model_name": "kling-v1-6", "prompt": "a cat", "duration": "10"},
        "/v1/videos/image2video": {"model_name": "kling-v1", "image": _png((512, 512))},
        "/v1/images/generations": {"prompt": "a", "aspect_ratio": "16:9"},
    }
    headers = {"Authorization": f"Bearer {official_token()}"}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        created = {}
        for path, body in requests.items():
            answer = client.post(path, json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            created[path] = answer.json()["data"]["task_id"]
        statuses = []
        for _ in range(4):
            polled = [client.get(f"{p}/{t}", headers=headers).json()["data"] for p, t in created.items()]
            statuses.append({data["task_status"] for data in polled})
            backend.advance(0.5)
        assert statuses == [{"submitted"}, {"processing"}, {"processing"}, {"succeed"}]
        video = polled[0]["task_result"]["videos"][0]
        assert video["duration"] == "10"
        urls = [video["url"], polled[1]["task_result"]["videos"][0]["url"]]
        urls.append(polled[2]["task_result"]["images"][0]["url"])
        for url in urls:
            assert url.startswith(live.url)
            full = client.get(url)
            assert full.status_code == 200
            head = client.head(url)
            assert (head.status_code, head.content) == (200, b"")
            assert head.headers["content-length"] == str(len(full.content))
            part = client.get(url, headers={"Range": "bytes=10-19"})
            assert (part.status_code, part.content) == (206, full.content[10:20])
        assert client.get(urls[0]).content[4:8] == b"ftyp"
        with Image.open(io.BytesIO(client.get(urls[2]).content)) as img:
            assert (img.format, img.size) == ("PNG", (320, 180))


def test_the_gateway_surfaces(server: tuple[LiveServer, Backend]) -> None:
    live, backend = server
    key = {"Authorization": API_KEY}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        created = client.post("/v1/video/generations", json={"prompt": "x", "duration": 5}, headers=key)
        task_id = created.json()["task_id"]
        backend.advance(1.5)
        done = client.get(f"/v1/video/generations/{task_id}", headers=key).json()
        assert done["status"] == "succeeded"
        assert done["url"] == f"{live.url}/media/videos/{task_id}.mp4"
        assert client.get(done["url"]).content[4:8] == b"ftyp"
        passthrough = client.get(f"/kling/v1/videos/text2video/{task_id}", headers=key).json()
        assert passthrough["message"] == "success" and passthrough["data"]["task_status"] == "succeed"
        refused = client.get(f"/v1/video/generations/{task_id}", headers={"Authorization": "sk-nope"})
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


def test_the_control_api_serves_a_loopback_client(server: tuple[LiveServer, Backend]) -> None:
    live, _ = server
    control = "/__mockkling"
    with httpx.Client(base_url=live.url, timeout=10) as client:
        rule = client.post(f"{control}/faults", json={"path": "/nowhere", "code": 5000})
        assert rule.status_code == 201
        assert client.get(f"{control}/clock").json()["manual"] is True
        assert client.get("/nowhere").status_code == 500
        journal = client.get(f"{control}/journal", params={"path": "/nowhere"}).json()["requests"]
        assert [entry["status"] for entry in journal] == [500]
        assert client.delete(f"{control}/faults/{rule.json()['id']}").json() == {"removed": 1}


def test_mockkling_serve_over_https_from_banner_to_sigterm(tmp_path: Path) -> None:
    """``mockkling serve --self-signed DIR``: it prints where it listens and how to trust its CA,
    answers over HTTPS verified against that CA, runs a task, and stops cleanly on SIGTERM."""
    tls = tmp_path / "tls"
    flags = ["--self-signed", str(tls), "--queue-seconds", "0", "--run-seconds", "0"]
    with ServeProcess(*flags) as serve:
        assert serve.url.startswith("https://127.0.0.1:")
        verify = ssl.create_default_context(cafile=str(tls / "ca.pem"))
        with httpx.Client(base_url=serve.url, verify=verify, timeout=10) as client:
            refused = client.get("/v1/videos/text2video")
            assert refused.status_code == 401 and refused.json()["code"] == 1001
            token = jwt.encode(
                {"iss": "mockkling-access-key", "exp": int(time.time()) + 60},
                "mockkling-secret-key-for-local-tests",
            )
            auth = {"Authorization": f"Bearer {token}"}
            task_id = client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=auth).json()["data"][
                "task_id"
            ]
            data = client.get(f"/v1/videos/text2video/{task_id}", headers=auth).json()["data"]
            assert data["task_status"] == "succeed"
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells the signal.
    assert serve.proc.returncode in (0, -15)
    log = serve.text()
    assert "default credentials" in log and "Finished server process" in log
    assert "the Kling API on https://127.0.0.1:" in log  # the banner (port 0 here: uvicorn picks one)
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert f"export {variable}={tls / 'ca.pem'}" in log
