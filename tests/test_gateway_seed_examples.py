"""Every example request of the seed document works verbatim on the gateway surfaces, and every
example response matches what the mock answers, field for field. The examples are copied from
the seed (its English rendering) unchanged; only ids, times and URLs differ by nature."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockkling import DEFAULT_API_KEY, Backend, Config, FailRule

# -- the seed's examples, verbatim -----------------------------------------------------------------

GENERIC_REQUEST: dict[str, Any] = {
    "model": "kling-v1-6",
    "prompt": "a cute kitten chasing butterflies in a sunny garden",
    "duration": 5.0,
    "width": 1280,
    "height": 720,
    "metadata": {
        "negative_prompt": "blurry, low quality, distorted",
        "cfg_scale": 0.7,
        "mode": "pro",
        "aspect_ratio": "16:9",
    },
}
GENERIC_RESPONSE: dict[str, Any] = {"task_id": "cls2a3b4c5d6e7f8g9h0i1j2"}
QUERY_RESPONSE: dict[str, Any] = {
    "task_id": "cls2a3b4c5d6e7f8g9h0i1j2",
    "status": "succeeded",
    "url": "https://storage.klingai.com/videos/example.mp4",
    "format": "mp4",
    "metadata": {"duration": 5.0, "fps": 30, "width": 1280, "height": 720, "seed": 12345},
}
FAILED_RESPONSE: dict[str, Any] = {
    "task_id": "cls2a3b4c5d6e7f8g9h0i1j2",
    "status": "failed",
    "error": {"code": 4001, "message": "video generation failed: the prompt contains inappropriate content"},
}
TEXT2VIDEO_REQUEST: dict[str, Any] = {
    "model_name": "kling-v1-6",
    "prompt": "a kitten running under the moon",
    "negative_prompt": "dark scene",
    "cfg_scale": 0.7,
    "mode": "pro",
    "aspect_ratio": "16:9",
    "duration": "5",
    "camera_control": {
        "type": "simple",
        "config": {"horizontal": 2.5, "vertical": 0, "pan": 0, "tilt": 0, "roll": 0, "zoom": 0},
    },
    "callback_url": "https://your.domain/callback",
    "external_task_id": "custom-task-001",
}
IMAGE2VIDEO_REQUEST: dict[str, Any] = {
    "model_name": "kling-v2-master",
    "image": "https://example.com/image.jpg",
    "prompt": "make the kitten in the picture move, playing in the garden",
    "negative_prompt": "blurry, low quality",
    "cfg_scale": 0.7,
    "mode": "std",
    "aspect_ratio": "16:9",
    "duration": "5",
    "callback_url": "https://your.domain/callback",
    "external_task_id": "custom-task-002",
}
PASSTHROUGH_RESPONSE: dict[str, Any] = {
    "code": 0,
    "message": "success",
    "request_id": "Cl6Mq2bftxoAAAAAAA_SxQ",
    "data": {
        "task_id": "Cl6Mq2bftxoAAAAAAA_SxQ",
        "task_status": "submitted",
        "created_at": 1725974776706,
        "updated_at": 1725974776706,
    },
}
TRY_ON_REQUEST: dict[str, Any] = {
    "model_name": "kling-v2-master",
    "image": "https://example.com/person-image.jpg",
    "prompt": "this person wears a red dress, keeping the original pose and expression",
    "negative_prompt": "blurry, deformed, unnatural",
    "cfg_scale": 0.8,
    "mode": "pro",
    "aspect_ratio": "9:16",
    "duration": "3",
    "metadata": {"style": "fashion", "quality": "high", "try_on": True},
}

# The seed shows the key as it is, without "Bearer".
KEY = {"Authorization": DEFAULT_API_KEY, "Content-Type": "application/json"}
# Values that are ids, times or the mock's own URLs: compared by kind, not by value.
VARIABLE = {"task_id", "request_id", "url", "created_at", "updated_at"}


@pytest.fixture
def config() -> Config:
    return Config(seed=1234, fail_rules=[FailRule("inappropriate")])


def assert_matches(actual: Any, example: Any, path: str = "") -> None:
    """Same keys at every level; same values, except ids, times and URLs, which match in kind."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(example), (path, sorted(actual), sorted(example))
        for key, value in example.items():
            if key in VARIABLE:
                assert type(actual[key]) is type(value) and actual[key], f"{path}.{key}"
            else:
                assert_matches(actual[key], value, f"{path}.{key}")
    else:
        assert type(actual) is type(example) and actual == example, (path, actual, example)


def test_generic_create_example(client: httpx.Client) -> None:
    response = client.post("/v1/video/generations", json=GENERIC_REQUEST, headers=KEY)
    assert response.status_code == 200, response.text
    assert_matches(response.json(), GENERIC_RESPONSE)


def test_query_example(backend: Backend, client: httpx.Client) -> None:
    # The query example reports fps 30 and seed 12345: the values this request asks for.
    request = GENERIC_REQUEST | {"fps": 30, "seed": 12345}
    task_id = client.post("/v1/video/generations", json=request, headers=KEY).json()["task_id"]
    backend.advance(60)
    body = client.get(f"/v1/video/generations/{task_id}", headers=KEY).json()
    assert_matches(body, QUERY_RESPONSE)
    assert body["task_id"] == task_id
    assert body["url"].endswith(".mp4")
    assert client.get(body["url"]).headers["content-type"] == "video/mp4"


def test_failed_task_example(backend: Backend, client: httpx.Client) -> None:
    request = GENERIC_REQUEST | {"prompt": "something inappropriate"}
    task_id = client.post("/v1/video/generations", json=request, headers=KEY).json()["task_id"]
    backend.advance(60)
    body = client.get(f"/v1/video/generations/{task_id}", headers=KEY).json()
    assert body == FAILED_RESPONSE | {"task_id": task_id}


@pytest.mark.parametrize(
    ("path", "request_body"),
    [
        ("/kling/v1/videos/text2video", TEXT2VIDEO_REQUEST),
        ("/kling/v1/videos/image2video", IMAGE2VIDEO_REQUEST),
        ("/kling/v1/videos/image2video", TRY_ON_REQUEST),
    ],
    ids=["text2video", "image2video", "try-on"],
)
def test_passthrough_examples(
    backend: Backend, client: httpx.Client, path: str, request_body: dict[str, Any]
) -> None:
    response = client.post(path, json=request_body, headers=KEY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_matches(body, PASSTHROUGH_RESPONSE)
    assert body["data"]["created_at"] == body["data"]["updated_at"] == backend.now_ms()


def test_the_official_surface_refuses_what_the_gateway_takes(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """Camera control on kling-v1-6 pro and a 3 s video are gateway liberties, not Kling's."""
    t2v = client.post("/v1/videos/text2video", json=TEXT2VIDEO_REQUEST, headers=auth)
    assert (t2v.status_code, t2v.json()["code"]) == (400, 1201)
    assert "camera_control" in t2v.json()["message"]
    try_on = client.post("/v1/videos/image2video", json=TRY_ON_REQUEST, headers=auth)
    assert (try_on.status_code, try_on.json()["code"]) == (400, 1201)
    assert "duration" in try_on.json()["message"]
