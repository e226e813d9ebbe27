"""The image, audio and general endpoints (issue 16) honour the contract without the kit creating
anything: whatever tasks the account has on them are lawful (newest first, finished ones carrying
their result files, external ids finding them), unknown tasks are 404 / 1203, the official
libraries are listed in their documented shapes, and invalid creates are refused with 400.
(Every read is also fuzzed by test_contract_schemas.py, from openapi.yaml.)"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from mockkling.tasks import RANK, TERMINAL

# path -> (list operation, query-one operation, the result kinds a finished task carries)
TASK_ENDPOINTS = {
    "/v1/images/omni-image": ("listOmniImageTasks", "getOmniImageTask", ("images",)),
    "/v1/images/multi-image2image": ("listMultiImage2ImageTasks", "getMultiImage2ImageTask", ("images",)),
    "/v1/audio/text-to-audio": ("listTextToAudioTasks", "getTextToAudioTask", ("audios",)),
    "/v1/audio/video-to-audio": ("listVideoToAudioTasks", "getVideoToAudioTask", ("videos", "audios")),
    "/v1/general/custom-voices": ("listCustomVoiceTasks", "getCustomVoiceTask", ("voices",)),
    "/v1/general/ai-multi-shot": ("listAiMultiShotTasks", "getAiMultiShotTask", ("images",)),
}
URL_FIELDS = ("url", "url_mp3", "url_wav", "trial_url", "url_1")


def _absolute(url: str) -> None:
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.netloc, f"not an absolute URL: {url!r}"


def assert_finished_well(task: dict[str, Any], kinds: tuple[str, ...]) -> None:
    if task["task_status"] == "failed":
        assert task["task_status_msg"], f"task {task['task_id']} failed without a task_status_msg"
        return
    result = task.get("task_result") or {}
    for kind in kinds:
        items = result.get(kind) or []
        assert items, f"task {task['task_id']} succeeded without {kind}"
        for item in items:
            for field in URL_FIELDS:
                if field in item:
                    _absolute(item[field])


@pytest.mark.parametrize("path", TASK_ENDPOINTS)
def test_existing_tasks_are_lawful(kling, conform, path: str) -> None:
    list_op, get_op, kinds = TASK_ENDPOINTS[path]
    query = {"pageNum": 1, "pageSize": 10}
    response = kling.get(path, params=query)
    conform(list_op, response, query=query)
    assert response.status_code == 200, f"list answered {response.status_code}: {response.text}"
    tasks = response.json()["data"]
    created = [task["created_at"] for task in tasks]
    assert created == sorted(created, reverse=True), "the list is not newest first"
    for task in tasks:
        assert task["task_status"] in RANK, f"status outside the lifecycle: {task['task_status']}"
        if task["task_status"] in TERMINAL:
            assert_finished_well(task, kinds)
        external = (task.get("task_info") or {}).get("external_task_id")
        if external:
            found = kling.get(f"{path}/{external}")
            conform(get_op, found, path_parameters={"task_id": external})
            found_id = found.json()["data"]["task_id"] if found.status_code == 200 else found.status_code
            assert found_id == task["task_id"], f"external_task_id {external} finds {found_id}"


@pytest.mark.parametrize("path", TASK_ENDPOINTS)
def test_unknown_task_is_404_1203(kling, conform, path: str) -> None:
    task_id = f"no-such-task-{uuid.uuid4().hex}"
    response = kling.get(f"{path}/{task_id}")
    conform(TASK_ENDPOINTS[path][1], response, path_parameters={"task_id": task_id})
    got = (response.status_code, response.json().get("code"))
    assert got == (404, 1203), f"unknown task: expected 404/1203, got {got}: {response.text}"


def test_the_official_voices_are_listed(kling, conform) -> None:
    query = {"pageNum": 1, "pageSize": 30}
    response = kling.get("/v1/general/presets-voices", params=query)
    conform("listPresetVoices", response, query=query)
    assert response.status_code == 200, response.text
    items = response.json()["data"]
    assert items, "no official voices"
    for item in items:
        for voice in item["task_result"]["voices"]:
            assert voice["owned_by"] == "kling", voice
            _absolute(voice["trial_url"])


def test_the_official_elements_are_listed(kling, conform) -> None:
    query = {"pageNum": 1, "pageSize": 30}
    response = kling.get("/v1/general/presets-elements", params=query)
    conform("listPresetElements", response, query=query)
    assert response.status_code == 200, response.text
    for element in response.json()["data"]:
        assert element["owned_by"] == "kling", element
        _absolute(element["element_frontal_image"])


INVALID = {
    "text to audio, 11 seconds": (
        "/v1/audio/text-to-audio",
        "createTextToAudio",
        {"prompt": "x", "duration": 11},
    ),
    "text to audio, no prompt": ("/v1/audio/text-to-audio", "createTextToAudio", {"duration": 5}),
    "omni image, no prompt": ("/v1/images/omni-image", "createOmniImage", {"n": 1}),
    "omni image, 10 images": ("/v1/images/omni-image", "createOmniImage", {"prompt": "x", "n": 10}),
    "multi-image, no subjects": ("/v1/images/multi-image2image", "createMultiImage2Image", {"prompt": "x"}),
    "custom voice, no name": (
        "/v1/general/custom-voices",
        "createCustomVoice",
        {"voice_url": "https://e.com/a.mp3"},
    ),
    "element, no images": (
        "/v1/general/custom-elements",
        "createCustomElement",
        {"element_name": "x", "element_description": "y"},
    ),
    "speech, no text": ("/v1/audio/tts", "createSpeech", {"voice_id": "genshin_vindi2"}),
}


@pytest.mark.posts
@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID.keys())
def test_invalid_creates_are_400(kling, conform, case: tuple[str, str, dict[str, Any]]) -> None:
    path, operation, body = case
    response = kling.post(path, json=body)
    conform(operation, response, body=body)
    assert response.status_code == 400, f"{body}: expected 400, got {response.status_code}: {response.text}"
    assert response.json()["code"] in (1200, 1201), f"{body}: expected code 1200/1201, got {response.text}"
