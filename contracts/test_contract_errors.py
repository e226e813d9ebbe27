"""Requests the contract refuses get the documented status and business code in the error
envelope, and never a server error."""

from __future__ import annotations

import uuid

import pytest

ACTIONS = {
    "text2video": ("createText2Video", "getText2VideoTask"),
    "image2video": ("createImage2Video", "getImage2VideoTask"),
    # 2026 video endpoints
    "omni-video": ("createOmniVideo", "getOmniVideoTask"),
    "motion-control": ("createMotionControl", "getMotionControlTask"),
    "avatar/image2video": ("createAvatarImage2Video", "getAvatarImage2VideoTask"),
    "advanced-lip-sync": ("createAdvancedLipSync", "getAdvancedLipSyncTask"),
    "multi-elements": ("createMultiElements", "getMultiElementsTask"),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_unknown_task_is_404_1203(kling, conform, action: str) -> None:
    task_id = f"no-such-task-{uuid.uuid4().hex}"
    response = kling.get(f"/v1/videos/{action}/{task_id}")
    conform(ACTIONS[action][1], response, path_parameters={"task_id": task_id})
    got = (response.status_code, response.json().get("code"))
    assert got == (404, 1203), f"unknown task: expected 404/1203, got {got}: {response.text}"


@pytest.mark.parametrize("query", [{"pageNum": 1000, "pageSize": 500}, {"pageSize": 1}, {}], ids=str)
def test_valid_page_parameters_are_accepted(kling, conform, query: dict[str, object]) -> None:
    response = kling.get("/v1/videos/text2video", params=query)
    conform("listText2VideoTasks", response, query=query)
    got = (response.status_code, response.json().get("code"))
    assert got == (200, 0), f"{query}: expected 200/0, got {got}: {response.text}"


@pytest.mark.parametrize(
    "query", [{"pageNum": 0}, {"pageSize": 0}, {"pageSize": 501}, {"pageNum": "one"}], ids=str
)
def test_bad_page_parameters_are_400(kling, conform, query: dict[str, object]) -> None:
    response = kling.get("/v1/videos/text2video", params=query)
    conform("listText2VideoTasks", response, query=query)
    got = (response.status_code, response.json().get("code"))
    assert got[0] == 400 and got[1] in (1200, 1201), f"{query}: expected 400/1200-1201, got {got}"


INVALID_BODIES = {
    "no prompt": {"model_name": "kling-v1"},
    "prompt not a string": {"prompt": 5},
    "unknown mode": {"prompt": "a cat", "mode": "ultra"},
    "unknown duration": {"prompt": "a cat", "duration": "7"},
    "unknown model": {"prompt": "a cat", "model_name": "kling-v0"},
    "cfg_scale out of range": {"prompt": "a cat", "cfg_scale": 2},
}


@pytest.mark.posts
@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_create_bodies_are_400(kling, conform, body: dict[str, object]) -> None:
    response = kling.post("/v1/videos/text2video", json=body)
    conform("createText2Video", response, body=body)
    assert response.status_code == 400, f"{body}: expected 400, got {response.status_code}: {response.text}"
    assert response.json()["code"] in (1200, 1201), f"{body}: expected code 1200/1201, got {response.text}"


@pytest.mark.posts
def test_a_body_that_is_not_json_is_400(kling, conform) -> None:
    headers = {**kling.headers(), "Content-Type": "application/json"}
    response = kling.client.post("/v1/videos/text2video", content=b"{not json", headers=headers)
    conform("createText2Video", response)
    got = (response.status_code, response.json().get("code"))
    assert got[0] == 400 and got[1] in (1200, 1201), (
        f"a body that is not JSON: expected 400/1200-1201, got {got}"
    )


# A body each 2026 video endpoint refuses without creating a task (a required field is missing).
INVALID_2026 = {
    "omni-video": ({"aspect_ratio": "16:9"}, "createOmniVideo"),
    "motion-control": ({"image_url": "https://example.com/a.png", "mode": "std"}, "createMotionControl"),
    "avatar/image2video": ({"sound_file": "https://example.com/a.mp3"}, "createAvatarImage2Video"),
    "advanced-lip-sync": ({"face_choose": []}, "createAdvancedLipSync"),
    "multi-elements": ({"edit_mode": "removal"}, "createMultiElements"),
    "identify-face": ({}, "identifyFace"),
    "image-recognize": ({}, "imageRecognize"),
    "multi-elements/init-selection": ({}, "initSelection"),
}


@pytest.mark.posts
@pytest.mark.parametrize("action", INVALID_2026)
def test_invalid_2026_video_bodies_are_400(kling, conform, action: str) -> None:
    body, operation = INVALID_2026[action]
    response = kling.post(f"/v1/videos/{action}", json=body)
    conform(operation, response, body=body)
    assert response.status_code == 400, (
        f"{action} {body}: expected 400, got {response.status_code}: {response.text}"
    )
    assert response.json()["code"] in (1200, 1201), f"{action}: expected code 1200/1201, got {response.text}"
