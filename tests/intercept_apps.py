"""Small Kling integrations as teams write them, kept unmodified by the interception tests: each
hard-codes the production host, signs its own JWT, polls every 5 s with a real-looking timeout
and downloads the result, with one client library each."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx
import jwt
import requests

BASE_URL = "https://api-singapore.klingai.com"
POLL_SECONDS = 5
TIMEOUT_SECONDS = 900


class GenerationFailed(RuntimeError):
    pass


def _token(access_key: str, secret_key: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": access_key, "exp": now + 1800, "nbf": now - 5}, secret_key, algorithm="HS256")


def _finished(data: dict[str, Any]) -> str | None:
    """The video URL of a finished task, None while it runs; raises if it failed."""
    if data["task_status"] == "failed":
        raise GenerationFailed(data["task_status_msg"])
    if data["task_status"] == "succeed":
        url: str = data["task_result"]["videos"][0]["url"]
        return url
    return None


def generate_with_httpx(access_key: str, secret_key: str, prompt: str) -> tuple[str, bytes]:
    headers = {"Authorization": f"Bearer {_token(access_key, secret_key)}"}
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=30) as client:
        created = client.post("/v1/videos/text2video", json={"prompt": prompt, "duration": "10"})
        created.raise_for_status()
        task_id = created.json()["data"]["task_id"]
        for _ in range(TIMEOUT_SECONDS // POLL_SECONDS):
            url = _finished(client.get(f"/v1/videos/text2video/{task_id}").json()["data"])
            if url:
                return url, client.get(url).content
            time.sleep(POLL_SECONDS)
    raise TimeoutError(task_id)


async def generate_with_httpx_async(access_key: str, secret_key: str, prompt: str) -> tuple[str, bytes]:
    headers = {"Authorization": f"Bearer {_token(access_key, secret_key)}"}
    async with httpx.AsyncClient(base_url=BASE_URL, headers=headers, timeout=30) as client:
        created = await client.post("/v1/videos/text2video", json={"prompt": prompt, "duration": "10"})
        created.raise_for_status()
        task_id = created.json()["data"]["task_id"]
        for _ in range(TIMEOUT_SECONDS // POLL_SECONDS):
            url = _finished((await client.get(f"/v1/videos/text2video/{task_id}")).json()["data"])
            if url:
                return url, (await client.get(url)).content
            await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(task_id)


def generate_with_requests(access_key: str, secret_key: str, prompt: str) -> tuple[str, bytes]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {_token(access_key, secret_key)}"
    created = session.post(f"{BASE_URL}/v1/videos/text2video", json={"prompt": prompt}, timeout=30)
    created.raise_for_status()
    task_id = created.json()["data"]["task_id"]
    for _ in range(TIMEOUT_SECONDS // POLL_SECONDS):
        url = _finished(session.get(f"{BASE_URL}/v1/videos/text2video/{task_id}", timeout=30).json()["data"])
        if url:
            return url, session.get(url, timeout=30).content
        time.sleep(POLL_SECONDS)
    raise TimeoutError(task_id)


async def generate_with_aiohttp(access_key: str, secret_key: str, prompt: str) -> tuple[str, bytes]:
    headers = {"Authorization": f"Bearer {_token(access_key, secret_key)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{BASE_URL}/v1/videos/text2video", json={"prompt": prompt}) as created:
            created.raise_for_status()
            task_id = (await created.json())["data"]["task_id"]
        for _ in range(TIMEOUT_SECONDS // POLL_SECONDS):
            async with session.get(f"{BASE_URL}/v1/videos/text2video/{task_id}") as answer:
                url = _finished((await answer.json())["data"])
            if url:
                async with session.get(url) as video:
                    return url, await video.read()
            await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(task_id)
