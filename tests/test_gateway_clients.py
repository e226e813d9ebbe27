"""A small client for each gateway, written from what that gateway offers its users, run green
against the matching profile: the seed document's gateway (written from the document alone),
the fork's real API (from pipiwei123/ppwapi's source) and mainline new-api's OpenAI-compatible
video API (OpenAI's own SDK, unmodified but for its base URL and key).

Each client waits by calling ``sleep(seconds)``: here, the mock's manual clock moves instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mockkling import DEFAULT_API_KEY, Backend, Config, create_app
from mockkling.testing import KlingMock
from mockkling.transport import SyncASGITransport

IMAGE = "https://example.com/person.jpg"
Sleep = Callable[[float], Any]


def in_process(gateway: str) -> tuple[Backend, httpx.Client]:
    backend = Backend(Config(seed=11, gateway=gateway))
    backend.use_manual_clock()
    return backend, httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://gw")


class SeedClient:
    """What a developer writes from the seed document: ``Authorization: sk-...``, POST the
    generic request, poll until ``succeeded`` or ``failed``, download ``url``."""

    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http, self.headers = http, {"Authorization": key}

    def generate(self, prompt: str, *, width: int = 1280, height: int = 720) -> str:
        body = {"model": "kling-v1-6", "prompt": prompt, "duration": 5.0, "width": width, "height": height}
        response = self.http.post("/v1/video/generations", json=body, headers=self.headers)
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    def wait(self, task_id: str, sleep: Sleep, every: float = 2.0) -> dict[str, Any]:
        while True:
            task: dict[str, Any] = self.http.get(
                f"/v1/video/generations/{task_id}", headers=self.headers
            ).json()
            if task["status"] in ("succeeded", "failed"):
                return task
            sleep(every)


class PpwapiClient:
    """What works against the fork, from its source: text through the Kling passthrough (its
    generic create always calls image2video), images through the generic create with a model its
    channel serves; wait for SUCCESS or FAILURE in the task record, whose fail_reason is the video
    URL on success."""

    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {key}"}

    def text_to_video(self, prompt: str, model_name: str = "kling-v1-6") -> str:
        body = {"model_name": model_name, "prompt": prompt}
        response = self.http.post("/kling/v1/videos/text2video", json=body, headers=self.headers)
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    def image_to_video(self, prompt: str, image: str, model: str = "kling-v1", seconds: int = 5) -> str:
        body = {"model": model, "prompt": prompt, "image": image, "duration": seconds}
        response = self.http.post("/v1/video/generations", json=body, headers=self.headers)
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    def wait(self, task_id: str, sleep: Sleep, every: float = 15.0) -> dict[str, Any]:
        while True:
            answer = self.http.get(f"/v1/video/generations/{task_id}", headers=self.headers).json()
            assert answer["code"] == "success", answer
            record: dict[str, Any] = answer["data"]
            if record["status"] in ("SUCCESS", "FAILURE"):
                return record
            sleep(every)

    @staticmethod
    def video_url(record: dict[str, Any]) -> str:
        assert record["status"] == "SUCCESS", record
        url: str = record["fail_reason"]
        return url


def test_a_client_written_from_the_seed_document_runs_against_the_seed_profile() -> None:
    backend, http = in_process("seed")
    with http:
        client = SeedClient(http, DEFAULT_API_KEY)
        task = client.wait(client.generate("a kitten in a garden"), backend.advance)
        assert task["status"] == "succeeded" and task["format"] == "mp4"
        assert (task["metadata"]["width"], task["metadata"]["height"]) == (1280, 720)
        assert http.get(task["url"]).content[4:8] == b"ftyp"


def test_a_client_written_for_the_fork_runs_against_the_ppwapi_profile() -> None:
    backend, http = in_process("ppwapi")
    with http:
        client = PpwapiClient(http, DEFAULT_API_KEY)
        text = client.wait(client.text_to_video("a kitten under the moon"), backend.advance)
        image = client.wait(client.image_to_video("make it move", IMAGE), backend.advance)
        for record, action in ((text, "textGenerate"), (image, "generate")):
            assert record["action"] == action and record["progress"] == "100%"
            assert http.get(PpwapiClient.video_url(record)).content[4:8] == b"ftyp"
        # The seed document's client does not get far with the fork: its 5.0 is refused.
        with pytest.raises(httpx.HTTPStatusError) as refused:
            SeedClient(http, DEFAULT_API_KEY).generate("a kitten")
        assert refused.value.response.json()["code"] == "invalid_request"


# -- mainline new-api: OpenAI's SDK ---------------------------------------------------------------


@pytest.fixture
def new_api(kling_mock_live: KlingMock) -> Iterator[tuple[KlingMock, Any]]:
    """OpenAI's SDK on a live new-api profile (the SDK brings its own HTTP stack)."""
    from openai import OpenAI

    with OpenAI(
        api_key=kling_mock_live.api_key, base_url=kling_mock_live.base_url + "/v1", max_retries=0
    ) as sdk:
        yield kling_mock_live, sdk


# The SDK marks its video API deprecated (OpenAI's own Sora service is being retired).
@pytest.mark.slow
@pytest.mark.kling_mock(gateway="new-api")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_openais_video_client_runs_against_the_new_api_profile(new_api: tuple[KlingMock, Any]) -> None:
    mock, sdk = new_api
    video = sdk.videos.create(
        model="kling-v1", prompt="a calico cat playing a piano", seconds="10", size="1280x720"
    )
    assert (video.object, video.status, video.progress, video.model) == ("video", "queued", 0, "kling-v1")
    assert video.id.startswith("task_")
    # Poll as the SDK's poll() does, but let the gateway's poller run first (see the next test).
    while True:
        mock.advance(15)
        video = sdk.videos.retrieve(video.id)
        if video.status in ("completed", "failed"):
            break
        assert video.status in ("queued", "in_progress")
    assert (video.status, video.progress, video.seconds) == ("completed", 100, "10")
    content = sdk.videos.download_content(video.id)
    data = content.read()
    assert data[4:8] == b"ftyp" and len(data) > 1000
    (task,) = mock.tasks
    assert (task.action, task.duration, task.extra["aspect_ratio"]) == ("text2video", "10", "16:9")


@pytest.mark.slow
@pytest.mark.kling_mock(gateway="new-api")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_sdks_poll_stops_at_once_on_a_task_no_poll_has_seen(new_api: tuple[KlingMock, Any]) -> None:
    """model/task.go ToVideoStatus answers "unknown" for NOT_START, which the SDK's poll() takes
    as final: a client must wait out the gateway's first poll (up to 15 s) itself."""
    mock, sdk = new_api
    video = sdk.videos.create(model="kling-v1", prompt="a cat")
    polled = sdk.videos.poll(video.id, poll_interval_ms=1)
    assert polled.status == "unknown"
    mock.advance(15)
    assert sdk.videos.poll(video.id, poll_interval_ms=1).status == "completed"
