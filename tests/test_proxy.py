"""``mockkling serve --proxy``: any client reaches the mock with only HTTPS_PROXY and the CA set,
under the real host names; other hosts are refused; and ``mockkling contract`` stops at once when
its target does not answer."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_process import ServeProcess, serve_command

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt

pytestmark = pytest.mark.slow

HOST = "https://api-singapore.klingai.com"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str, Path]]:
    tls = tmp_path_factory.mktemp("tls")
    with ServeProcess(
        "--self-signed", str(tls), "--proxy", "0", "--run-seconds", "0", "--queue-seconds", "0"
    ) as mock:
        match = re.search(r"export HTTPS_PROXY=(http://127\.0\.0\.1:\d+)", mock.text())
        assert match, mock.text()
        yield mock, match.group(1), tls / "ca.pem"


def _token() -> str:
    return make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)


def test_a_python_client_reaches_the_mock_by_the_real_host_name(
    proxied: tuple[ServeProcess, str, Path],
) -> None:
    _mock, proxy, ca = proxied
    headers = {"Authorization": f"Bearer {_token()}"}
    with httpx.Client(
        proxy=proxy, verify=ssl.create_default_context(cafile=str(ca)), headers=headers, timeout=10
    ) as client:
        created = client.post(f"{HOST}/v1/videos/text2video", json={"prompt": "a cat"}).json()["data"]
        data = client.get(f"{HOST}/v1/videos/text2video/{created['task_id']}").json()["data"]
        assert data["task_status"] == "succeed"
        url = data["task_result"]["videos"][0]["url"]
        assert url.startswith("https://p1.a.kwimgs.com/")  # the real CDN's name, through the proxy too
        video = client.get(url)
    assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")
    # requests, configured only by its environment (the exports the banner prints), as a team's code is
    code = (
        "import os, requests; print(requests.get(os.environ['URL'], headers={'Authorization': "
        "os.environ['AUTH']}, timeout=10).json()['code'])"
    )
    env = {
        **os.environ,
        "HTTPS_PROXY": proxy,
        "REQUESTS_CA_BUNDLE": str(ca),
        "URL": f"{HOST}/v1/videos/text2video",
        "AUTH": headers["Authorization"],
    }
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (run.returncode, run.stdout.strip()) == (0, "0"), run.stderr


def test_other_hosts_are_refused_with_a_reason(proxied: tuple[ServeProcess, str, Path]) -> None:
    _mock, proxy, ca = proxied
    with (
        httpx.Client(proxy=proxy, verify=ssl.create_default_context(cafile=str(ca)), timeout=10) as client,
        pytest.raises(httpx.ProxyError) as refused,
    ):
        client.get("https://example.com/")
    assert "403" in str(refused.value)
    plain = httpx.get("http://example.com/", proxy=proxy, timeout=10)
    assert plain.status_code == 403 and "only the Kling hosts" in plain.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_through_the_proxy(proxied: tuple[ServeProcess, str, Path]) -> None:
    _mock, proxy, ca = proxied
    env = {**os.environ, "HTTPS_PROXY": proxy, "CURL_CA_BUNDLE": str(ca)}
    answer = subprocess.run(
        ["curl", "-sS", f"{HOST}/v1/videos/text2video", "-H", f"Authorization: Bearer {_token()}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert answer.returncode == 0, answer.stderr
    assert '"code":0' in answer.stdout
    refused = subprocess.run(
        ["curl", "-sS", "https://example.com/"], capture_output=True, text=True, env=env, timeout=30
    )
    assert refused.returncode != 0 and "403" in refused.stderr


def test_the_proxy_needs_the_throwaway_ca() -> None:
    run = subprocess.run(
        serve_command("--proxy"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2 and "--proxy needs --self-signed DIR" in run.stderr


def test_the_contract_kit_stops_at_once_when_its_target_does_not_answer() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "mockkling.cli", "contract", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "does not answer" in run.stderr
    assert time.monotonic() - started < 30  # not a whole run against a closed port
