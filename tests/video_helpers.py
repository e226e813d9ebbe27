"""What the tests of the 2026 video endpoints share: requests with their checks, real media to
send (images, WAV and MP3 audio), finished source videos, and a look inside served MP4s."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
from typing import Any

import av
import httpx
from PIL import Image

from mockkling import Backend

URL = "https://example.com/person.jpg"
VIDEO_URL = "https://example.com/dance.mp4"  # not fetched: taken to last 5 s


def created(client: httpx.Client, auth: dict[str, str], path: str, body: Any) -> dict[str, Any]:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["code"], payload["message"]) == (0, "SUCCEED"), payload
    data: dict[str, Any] = payload["data"]
    return data


def query(client: httpx.Client, auth: dict[str, str], path: str, ident: str) -> dict[str, Any]:
    response = client.get(f"{path}/{ident}", headers=auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def refusal(client: httpx.Client, auth: dict[str, str], path: str, body: Any) -> str:
    """The message of a 400 / 1201 refusal in the official envelope."""
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert (payload["code"], payload["data"]) == (1201, None), payload
    assert payload["request_id"]
    message: str = payload["message"]
    return message


def run_to_end(
    backend: Backend, client: httpx.Client, auth: dict[str, str], path: str, body: Any
) -> dict[str, Any]:
    """Create a task, check it is submitted then processing, let it succeed; its query data."""
    task = created(client, auth, path, body)
    assert task["task_status"] == "submitted"
    assert query(client, auth, path, task["task_id"])["task_status"] == "submitted"
    backend.advance(1)
    assert query(client, auth, path, task["task_id"])["task_status"] == "processing"
    backend.advance(10)
    data = query(client, auth, path, task["task_id"])
    assert data["task_status"] == "succeed", data
    listed = client.get(path, headers=auth).json()["data"]
    assert data["task_id"] in [t["task_id"] for t in listed]
    return data


def finished_video(
    backend: Backend, client: httpx.Client, auth: dict[str, str], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``task_result.videos[0]`` of a finished text2video task (5 s, 16:9, 720p by default)."""
    data = run_to_end(backend, client, auth, "/v1/videos/text2video", body or {"prompt": "a dancer"})
    video: dict[str, Any] = data["task_result"]["videos"][0]
    return video


def download_video(client: httpx.Client, url: str) -> tuple[float, int, int]:
    """(seconds, width, height) of a served MP4, as a real demuxer reads it."""
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        return container.duration / av.time_base, stream.width, stream.height


def image_b64(width: int = 640, height: int = 360) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def wav_b64(seconds: float, rate: int = 8000) -> str:
    """Raw Base64 of a mono 8-bit WAV lasting ``seconds`` (a quiet tone)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        frames = round(seconds * rate)
        out.writeframes(bytes(128 + int(20 * math.sin(i / 5)) for i in range(frames)))
    return base64.b64encode(buffer.getvalue()).decode()


def mp3_b64(seconds: float) -> str:
    """Raw Base64 of an MPEG-1 Layer III stream (128 kb/s, 44.1 kHz) of silent frames."""
    header = struct.pack(">I", 0xFFFB9000)  # sync, MPEG-1, layer III, no CRC, 128 kb/s, 44.1 kHz
    frame = header + bytes(417 - 4)  # 144 * 128000 / 44100 = 417 bytes a frame
    frames = round(seconds * 44100 / 1152)
    return base64.b64encode(frame * frames).decode()


def decode_rle(counts: str, width: int, height: int) -> bytes:
    """COCO compressed RLE back to a row-major 0/1 mask (pycocotools' rleFrString, then decode)."""
    runs: list[int] = []
    i = 0
    while i < len(counts):
        value, shift, more = 0, 0, True
        while more:
            chunk = ord(counts[i]) - 48
            value |= (chunk & 0x1F) << (5 * shift)
            more = bool(chunk & 0x20)
            i += 1
            shift += 1
            if not more and chunk & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    columns = bytearray()
    for n, run in enumerate(runs):
        columns += bytes([n % 2]) * run
    assert len(columns) == width * height
    return bytes(columns[x * height + y] for y in range(height) for x in range(width))
