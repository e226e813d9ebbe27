"""The official endpoints beyond text2video and image2video: each one's lifecycle end to end on
the manual clock, its result shape, and the refusals the official API gives (schema rules,
cross-field rules, and models or modes the endpoint does not serve)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mockkling import Backend, make_jwt

URL = "https://example.com/person.jpg"
T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
MULTI = "/v1/videos/multi-image2video"
EXTEND = "/v1/videos/video-extend"
LIP_SYNC = "/v1/videos/lip-sync"
EFFECTS = "/v1/videos/effects"
IMAGES = "/v1/images/generations"
TRY_ON = "/v1/images/kolors-virtual-try-on"
EXPAND = "/v1/images/editing/expand"
RATIOS = {"up_expansion_ratio": 0.2, "down_expansion_ratio": 0.2, "left_expansion_ratio": 0.5}


def _created(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["code"], payload["message"]) == (0, "SUCCEED")
    data: dict[str, Any] = payload["data"]
    return data


def _query(client: httpx.Client, auth: dict[str, str], path: str, ident: str) -> dict[str, Any]:
    response = client.get(f"{path}/{ident}", headers=auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _refusal(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> str:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert (payload["code"], payload["data"]) == (1201, None)
    message: str = payload["message"]
    return message


def _finished_video(
    backend: Backend, client: httpx.Client, auth: dict[str, str], path: str, body: Any
) -> str:
    """The video id of a task run to the end on ``path``."""
    task_id = _created(client, auth, path, body)["task_id"]
    backend.advance(10)
    video_id: str = _query(client, auth, path, task_id)["task_result"]["videos"][0]["id"]
    return video_id


# -- lifecycle, every endpoint -------------------------------------------------------------------

LIFECYCLE = [
    (
        MULTI,
        {"prompt": "two cats", "image_list": [{"image": URL}, {"image": URL}], "duration": "10"},
        "videos",
    ),
    (
        LIP_SYNC,
        {
            "input": {
                "video_url": "https://example.com/v.mp4",
                "mode": "text2video",
                "text": "hi",
                "voice_id": "v",
            }
        },
        "videos",
    ),
    (EFFECTS, {"effect_scene": "hug", "input": {"images": [URL, URL], "duration": "5"}}, "videos"),
    (EFFECTS, {"effect_scene": "hug_pro", "input": {"images": [URL, URL], "duration": "5"}}, "videos"),
    (EFFECTS, {"effect_scene": "pet_lion_pro", "input": {"image": URL, "duration": "10"}}, "videos"),
    (IMAGES, {"prompt": "a fox", "n": 3, "aspect_ratio": "1:1"}, "images"),
    (TRY_ON, {"human_image": URL, "cloth_image": URL}, "images"),
    (EXPAND, {"image": URL, **RATIOS, "right_expansion_ratio": 0.5, "n": 2}, "images"),
]


@pytest.mark.parametrize(("path", "body", "result"), LIFECYCLE, ids=lambda v: str(v)[:40])
def test_lifecycle(
    backend: Backend, client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any], result: str
) -> None:
    created = _created(client, auth, path, {**body, "external_task_id": "order-1"})
    assert created["task_status"] == "submitted"
    assert created["task_info"] == {"external_task_id": "order-1"}
    t0, task_id = created["created_at"], created["task_id"]

    data = _query(client, auth, path, task_id)
    assert (data["task_status"], data["updated_at"], data["final_unit_deduction"]) == ("submitted", t0, "0")
    assert "task_result" not in data
    backend.advance(1)
    assert _query(client, auth, path, task_id)["task_status"] == "processing"
    backend.advance(4)
    data = _query(client, auth, path, "order-1")
    assert (data["task_id"], data["task_status"], data["updated_at"]) == (task_id, "succeed", t0 + 5000)
    assert float(data["final_unit_deduction"]) > 0
    assert list(data["task_result"]) == [result]
    if result == "videos":
        [video] = data["task_result"]["videos"]
        assert video["url"] == f"http://mock/media/videos/{task_id}.mp4"
        expected = body.get("duration") or body.get("input", {}).get("duration") or "5"
        assert video["duration"] == expected
        assert client.get(video["url"]).headers["content-type"] == "video/mp4"
    else:
        images = data["task_result"]["images"]
        assert [image["index"] for image in images] == list(range(body.get("n", 1)))
        for image in images:
            assert image["url"] == f"http://mock/media/images/{task_id}/{image['index']}.png"
            assert client.get(image["url"]).headers["content-type"] == "image/png"

    listed = client.get(path, params={"pageSize": 5}, headers=auth).json()["data"]
    assert [task["task_id"] for task in listed] == [task_id]
    assert listed[0] == data


def test_lists_are_per_endpoint(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    _created(client, auth, IMAGES, {"prompt": "a"})
    _created(client, auth, TRY_ON, {"human_image": URL, "cloth_image": URL})
    assert len(client.get(IMAGES, headers=auth).json()["data"]) == 1
    assert len(client.get(TRY_ON, headers=auth).json()["data"]) == 1
    assert client.get(EXPAND, headers=auth).json()["data"] == []


def test_fail_rules_read_each_endpoints_text(auth: dict[str, str]) -> None:
    from mockkling import Config, FailRule, create_app
    from mockkling.transport import SyncASGITransport

    backend = Backend(Config(fail_rules=[FailRule("forbidden")]))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        image = _created(client, auth, IMAGES, {"prompt": "something forbidden"})["task_id"]
        lips = _created(
            client,
            auth,
            LIP_SYNC,
            {
                "input": {
                    "video_url": "https://example.com/v.mp4",
                    "mode": "text2video",
                    "text": "FORBIDDEN",
                    "voice_id": "v",
                }
            },
        )["task_id"]
        backend.advance(10)
        for path, task_id in ((IMAGES, image), (LIP_SYNC, lips)):
            data = _query(client, auth, path, task_id)
            assert data["task_status"] == "failed"
            assert data["task_status_msg"] == "Failure to pass the risk control system"
            assert "task_result" not in data


def test_watermarked_results(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    task_id = _created(client, auth, IMAGES, {"prompt": "a", "n": 2, "watermark_info": {"enabled": True}})[
        "task_id"
    ]
    backend.advance(5)
    for image in _query(client, auth, IMAGES, task_id)["task_result"]["images"]:
        assert image["watermark_url"].startswith(image["url"])
        assert client.get(image["watermark_url"]).status_code == 200


# -- video extend and lip sync: tasks made from an earlier video ---------------------------------


def test_video_extend_adds_five_seconds_and_names_its_parent(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    parent = _finished_video(
        backend, client, auth, T2V, {"prompt": "a", "model_name": "kling-v1", "mode": "pro"}
    )
    created = _created(client, auth, EXTEND, {"video_id": parent, "prompt": "and then"})
    # The create answer has no parent_video; the query does.
    assert created["task_info"] == {}
    backend.advance(5)
    data = _query(client, auth, EXTEND, created["task_id"])
    parent_task = parent.rpartition("-")[0]
    assert data["task_info"]["parent_video"] == {
        "id": parent,
        "url": f"http://mock/media/videos/{parent_task}.mp4",
        "duration": "5",
    }
    [video] = data["task_result"]["videos"]
    assert video["duration"] == "10"
    # The extension keeps the parent's model and mode: billed as kling-v1 pro for 5 s.
    assert data["final_unit_deduction"] == "3.5"
    # An extended video can be extended again.
    again = _created(client, auth, EXTEND, {"video_id": video["id"]})["task_id"]
    backend.advance(5)
    assert _query(client, auth, EXTEND, again)["task_result"]["videos"][0]["duration"] == "15"


def test_extended_videos_stop_at_three_minutes(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    video = _finished_video(backend, client, auth, T2V, {"prompt": "a", "duration": "10"})
    for _ in range(34):  # 10 s + 34 * 5 s = 180 s
        video = _finished_video(backend, client, auth, EXTEND, {"video_id": video})
    assert "at most 180s" in _refusal(client, auth, EXTEND, {"video_id": video})


def test_video_extend_refuses_what_cannot_be_extended(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    # A model that video extension does not serve.
    v2 = _finished_video(backend, client, auth, T2V, {"prompt": "a", "model_name": "kling-v2-master"})
    assert "kling-v2-master does not support" in _refusal(client, auth, EXTEND, {"video_id": v2})
    # Effects videos are not text2video/image2video/video-extend results.
    effect = _finished_video(
        backend,
        client,
        auth,
        EFFECTS,
        {"effect_scene": "hug", "input": {"images": [URL, URL], "duration": "5"}},
    )
    assert "only videos made by" in _refusal(client, auth, EXTEND, {"video_id": effect})
    # image2video results can be extended.
    i2v = _finished_video(backend, client, auth, I2V, {"image": URL, "model_name": "kling-v1-6"})
    _created(client, auth, EXTEND, {"video_id": i2v})


def test_unknown_unfinished_expired_and_foreign_videos_are_refused_alike(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.add_account("other-ak", "other-secret-key-with-plenty-of-bytes")
    other = {"Authorization": f"Bearer {make_jwt('other-ak', 'other-secret-key-with-plenty-of-bytes')}"}
    foreign = _finished_video(backend, client, other, T2V, {"prompt": "theirs"})
    unfinished = _created(client, auth, T2V, {"prompt": "a"})["task_id"] + "-0"
    old = _finished_video(backend, client, auth, T2V, {"prompt": "old"})
    backend.advance(30 * 24 * 3600)  # past the official 30-day retention
    messages = set()
    for video_id in ("no-such-video", "abc-1", foreign, unfinished, old):
        message = _refusal(client, auth, EXTEND, {"video_id": video_id})
        messages.add(message.replace(video_id, "<id>"))
    assert messages == {"video_id: video <id> does not exist or has expired"}


def test_lip_sync_on_a_kling_video(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    parent = _finished_video(backend, client, auth, T2V, {"prompt": "a", "duration": "10"})
    body = {
        "input": {
            "video_id": parent,
            "mode": "audio2video",
            "audio_type": "url",
            "audio_url": "https://example.com/a.mp3",
        }
    }
    task_id = _created(client, auth, LIP_SYNC, body)["task_id"]
    backend.advance(5)
    data = _query(client, auth, LIP_SYNC, task_id)
    assert data["task_info"]["parent_video"]["id"] == parent
    assert data["task_result"]["videos"][0]["duration"] == "10"
    # A 15 s extended video is too long for lip sync.
    longer = _finished_video(backend, client, auth, EXTEND, {"video_id": parent})
    body["input"]["video_id"] = longer
    assert "at most 10s" in _refusal(client, auth, LIP_SYNC, body)


# -- refusals ------------------------------------------------------------------------------------

TEXT = {"mode": "text2video", "text": "hello", "voice_id": "v", "video_url": "https://example.com/v.mp4"}
AUDIO = {"mode": "audio2video", "video_url": "https://example.com/v.mp4"}
HUG = {"effect_scene": "hug", "input": {"images": [URL, URL], "duration": "5"}}


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        # multi-image to video
        (MULTI, {"prompt": "x"}, "image_list is required"),
        (MULTI, {"image_list": [{"image": URL}]}, "prompt is required"),
        (MULTI, {"prompt": "x", "image_list": []}, "image_list must have at least 1"),
        (MULTI, {"prompt": "x", "image_list": [{"image": URL}] * 5}, "image_list must have at most 4"),
        (MULTI, {"prompt": "x", "image_list": [{"image": URL}], "model_name": "kling-v1"}, "model_name"),
        (MULTI, {"prompt": "x", "image_list": [{"image": URL}], "mode": "max"}, "mode"),
        (MULTI, {"prompt": "x", "image_list": [{"image": URL}], "duration": "7"}, "duration"),
        # video extend
        (EXTEND, {}, "video_id is required"),
        (EXTEND, {"video_id": "v", "model_name": "kling-v2-master"}, "model_name must be one of"),
        (EXTEND, {"video_id": "v", "cfg_scale": 2}, "cfg_scale"),
        # lip sync
        (LIP_SYNC, {}, "input is required"),
        (LIP_SYNC, {"input": {"video_url": URL}}, "input.mode is required"),
        (
            LIP_SYNC,
            {"input": {**AUDIO, "audio_type": "url", "audio_url": "https://example.com/a.ogg"}},
            "input.audio_url: .ogg files are not supported",
        ),
        (LIP_SYNC, {"input": {"mode": "text2video", "text": "a", "voice_id": "v"}}, "cannot both be empty"),
        (LIP_SYNC, {"input": {**TEXT, "text": ""}}, "input.text is required"),
        (LIP_SYNC, {"input": {**TEXT, "voice_id": ""}}, "input.voice_id is required"),
        (LIP_SYNC, {"input": {**TEXT, "text": "x" * 121}}, "input.text must be at most 120"),
        (LIP_SYNC, {"input": {**TEXT, "voice_speed": 2.5}}, "input.voice_speed must be <= 2"),
        (LIP_SYNC, {"input": {**TEXT, "voice_language": "fr"}}, "input.voice_language"),
        (
            LIP_SYNC,
            {"input": {**TEXT, "video_url": "ftp://x/v.mp4"}},
            "input.video_url must be an http(s) URL",
        ),
        (LIP_SYNC, {"input": AUDIO}, "input.audio_type is required"),
        (LIP_SYNC, {"input": {**AUDIO, "audio_type": "file"}}, "input.audio_file is required"),
        (
            LIP_SYNC,
            {"input": {**AUDIO, "audio_type": "file", "audio_file": "!!"}},
            "input.audio_file: not valid",
        ),
        (LIP_SYNC, {"input": {**AUDIO, "audio_type": "url"}}, "input.audio_url is required"),
        (
            LIP_SYNC,
            {"input": {**AUDIO, "audio_type": "url", "audio_url": "x.mp3"}},
            "input.audio_url must be",
        ),
        (LIP_SYNC, {"input": {**TEXT, "video_id": "nope"}}, "input.video_id: video nope does not exist"),
        # effects
        (EFFECTS, {"input": {}}, "effect_scene is required"),
        (EFFECTS, {"effect_scene": "hug"}, "input is required"),
        (
            EFFECTS,
            {"effect_scene": "moonwalk", "input": {"image": URL, "duration": "5"}},
            "not a supported effect",
        ),
        (EFFECTS, {"effect_scene": "hug", "input": {"images": [URL], "duration": "5"}}, "exactly 2 images"),
        (EFFECTS, {"effect_scene": "hug", "input": {"images": [URL, URL], "mode": "max"}}, "input.mode"),
        (
            EFFECTS,
            {"effect_scene": "hug_pro", "input": {"images": [URL, URL], "duration": "10"}},
            "lasts 5 seconds",
        ),
        (EFFECTS, {"effect_scene": "hug_pro", "input": {"images": [URL, URL]}}, "lasts 5 seconds"),
        (
            EFFECTS,
            {"effect_scene": "hug_pro", "input": {"images": [URL, URL, URL], "duration": "5"}},
            "exactly 2",
        ),
        (EFFECTS, {"effect_scene": "pet_lion_pro", "input": {"duration": "5"}}, "input.image is required"),
        (EFFECTS, {"effect_scene": "pet_lion_pro", "input": {"image": URL}}, "input.duration is required"),
        # image generation
        (IMAGES, {}, "prompt is required"),
        (IMAGES, {"prompt": "x", "n": 10}, "n must be <= 9"),
        (IMAGES, {"prompt": "x", "n": 0}, "n must be >= 1"),
        (IMAGES, {"prompt": "x", "aspect_ratio": "5:4"}, "aspect_ratio must be one of"),
        (IMAGES, {"prompt": "x", "resolution": "4k"}, "resolution"),
        (IMAGES, {"prompt": "x", "image_fidelity": 1.5}, "image_fidelity"),
        (IMAGES, {"prompt": "x", "image_reference": "subject"}, "image_reference needs an image"),
        (
            IMAGES,
            {"prompt": "x", "image": URL, "negative_prompt": "blur"},
            "negative_prompt is not supported",
        ),
        (
            IMAGES,
            {"prompt": "x", "image": URL, "model_name": "kling-v2", "resolution": "2k"},
            "2k is for text",
        ),
        # virtual try-on
        (TRY_ON, {"cloth_image": URL}, "human_image is required"),
        (TRY_ON, {"human_image": URL}, "cloth_image is required"),
        (
            TRY_ON,
            {"human_image": URL, "cloth_image": URL, "model_name": "kolors-virtual-try-on-v2"},
            "model_name",
        ),
        # image expansion
        (EXPAND, {"image": URL, **RATIOS}, "right_expansion_ratio is required"),
        (EXPAND, {**RATIOS, "right_expansion_ratio": 0}, "image is required"),
        (
            EXPAND,
            {"image": URL, **RATIOS, "right_expansion_ratio": 2.5},
            "right_expansion_ratio must be <= 2",
        ),
        (
            EXPAND,
            {"image": URL, **RATIOS, "right_expansion_ratio": -0.1},
            "right_expansion_ratio must be >= 0",
        ),
        (EXPAND, {"image": URL, **RATIOS, "right_expansion_ratio": 1.5}, "at most 3 times"),
        (EXPAND, {"image": URL, **RATIOS, "right_expansion_ratio": 0, "n": 10}, "n must be <= 9"),
    ],
    ids=lambda v: str(v)[:48],
)
def test_refusals_name_the_field(
    client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any], words: str
) -> None:
    assert words in _refusal(client, auth, path, body)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (MULTI, {"prompt": "x", "image_list": [{"image": URL}, {"image": "small"}]}, "image_list[1].image:"),
        (
            EFFECTS,
            {"effect_scene": "hug", "input": {"images": [URL, "small"], "duration": "5"}},
            "input.images[1]:",
        ),
        (
            EFFECTS,
            {"effect_scene": "pet_lion_pro", "input": {"image": "small", "duration": "5"}},
            "input.image:",
        ),
        (IMAGES, {"prompt": "x", "image": "small"}, "image:"),
        (TRY_ON, {"human_image": URL, "cloth_image": "small"}, "cloth_image:"),
        (TRY_ON, {"human_image": "small", "cloth_image": URL}, "human_image:"),
        (EXPAND, {"image": "small", **RATIOS, "right_expansion_ratio": 0}, "image:"),
    ],
    ids=lambda v: str(v)[:48],
)
def test_every_image_field_is_checked(
    client: httpx.Client,
    auth: dict[str, str],
    make_image: Callable[..., str],
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    small = make_image(200, 200)  # under the official 300 px minimum
    body = _replace(body, "small", small)
    message = _refusal(client, auth, path, body)
    assert message.startswith(field) and "300px" in message


def _replace(value: Any, old: str, new: str) -> Any:
    if value == old:
        return new
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value


# -- models and modes each endpoint serves (the catalogue) ---------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "ok"),
    [
        (MULTI, {"model_name": "kling-v1-6", "mode": "pro", "duration": "10"}, True),
        (EFFECTS, {**HUG, "input": {**HUG["input"], "model_name": "kling-v1-5", "mode": "pro"}}, True),
        (EFFECTS, {**HUG, "input": {**HUG["input"], "model_name": "kling-v1-6", "duration": "10"}}, True),
        (EFFECTS, {**HUG, "input": {**HUG["input"], "model_name": "kling-v2-master"}}, False),
        (
            EFFECTS,
            {**HUG, "effect_scene": "fight", "input": {**HUG["input"], "model_name": "kling-v1-6"}},
            True,
        ),
        (
            EFFECTS,
            {**HUG, "effect_scene": "fight", "input": {**HUG["input"], "model_name": "kling-v1"}},
            False,
        ),
        (EFFECTS, {**HUG, "effect_scene": "fight"}, False),  # the default model, kling-v1, has no fight
        (IMAGES, {"model_name": "kling-v1", "aspect_ratio": "21:9"}, False),
        (IMAGES, {"model_name": "kling-v1-5", "aspect_ratio": "21:9"}, True),
        (IMAGES, {"model_name": "kling-v1", "resolution": "2k"}, False),
        (IMAGES, {"model_name": "kling-v2", "resolution": "2k"}, True),
        (IMAGES, {"model_name": "kling-v2-1", "resolution": "2k"}, False),
        (IMAGES, {"model_name": "kling-v1", "image": URL}, True),
        (IMAGES, {"model_name": "kling-v1", "image": URL, "image_reference": "subject"}, False),
        (IMAGES, {"model_name": "kling-v1-5", "image": URL}, False),
        (IMAGES, {"model_name": "kling-v1-5", "image": URL, "image_reference": "face"}, True),
        (IMAGES, {"model_name": "kling-v2", "image": URL}, True),
        (IMAGES, {"model_name": "kling-v2-new", "image": URL}, True),
        (IMAGES, {"model_name": "kling-v2-new"}, False),
        (IMAGES, {"model_name": "kling-v2-1", "image": URL}, False),
        (IMAGES, {"model_name": "kling-v9"}, False),
        (TRY_ON, {"model_name": "kolors-virtual-try-on-v1-5"}, True),
        (TRY_ON, {"model_name": "kling-v1"}, False),
    ],
    ids=lambda v: str(v)[:60],
)
def test_models_and_modes_per_endpoint(
    client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any], ok: bool
) -> None:
    base: dict[str, Any] = {
        MULTI: {"prompt": "x", "image_list": [{"image": URL}]},
        EFFECTS: {},
        IMAGES: {"prompt": "x"},
        TRY_ON: {"human_image": URL, "cloth_image": URL},
    }[path]
    response = client.post(path, json={**base, **body}, headers=auth)
    assert (response.status_code == 200) is ok, response.text
    if not ok:
        payload = response.json()
        assert payload["code"] == 1201
        assert any(words in payload["message"] for words in ("model_name", "does not support", "is required"))


def test_every_catalogue_model_creates_a_task(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    from mockkling import catalogue

    def image_body(model: str) -> dict[str, Any]:
        # kling-v2-new only restyles an image; kling-v1-5 takes an image only with a reference.
        if model == "kling-v2-new":
            return {"model_name": model, "prompt": "x", "image": URL}
        if model == "kling-v1-5":
            return {"model_name": model, "prompt": "x", "image": URL, "image_reference": "face"}
        return {"model_name": model, "prompt": "x"}

    bodies: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
        "multi-image2video": (
            MULTI,
            lambda m: {"model_name": m, "prompt": "x", "image_list": [{"image": URL}]},
        ),
        "effects": (EFFECTS, lambda m: {**HUG, "input": {**HUG["input"], "model_name": m}}),
        "image-generation": (IMAGES, image_body),
        "virtual-try-on": (TRY_ON, lambda m: {"model_name": m, "human_image": URL, "cloth_image": URL}),
    }
    for action, (path, body) in bodies.items():
        for model in catalogue.models_for(action):
            _created(client, auth, path, body(model))
    for model in catalogue.models_for("video-extend"):
        video = _finished_video(backend, client, auth, I2V, {"model_name": model, "image": URL})
        _created(client, auth, EXTEND, {"video_id": video})


def test_result_images_have_the_requested_shape(
    backend: Backend, client: httpx.Client, auth: dict[str, str], make_image: Callable[..., str]
) -> None:
    from mockkling.media import IMAGE_LONG_SIDE

    expect = {
        _created(client, auth, IMAGES, {"prompt": "x", "aspect_ratio": "9:16"})["task_id"]: (180, 320),
        _created(client, auth, IMAGES, {"prompt": "x", "aspect_ratio": "21:9", "model_name": "kling-v2"})[
            "task_id"
        ]: (320, 137),
        # A restyled image keeps the input's shape.
        _created(
            client, auth, IMAGES, {"prompt": "x", "model_name": "kling-v2", "image": make_image(600, 400)}
        )["task_id"]: (320, 213),
        _created(client, auth, TRY_ON, {"human_image": make_image(300, 400), "cloth_image": URL})[
            "task_id"
        ]: (
            240,
            320,
        ),
        # 640x360 grown by half its width on each side: 1280x360.
        _created(
            client,
            auth,
            EXPAND,
            {
                "image": make_image(640, 360),
                "up_expansion_ratio": 0,
                "down_expansion_ratio": 0,
                "left_expansion_ratio": 0.5,
                "right_expansion_ratio": 0.5,
            },
        )["task_id"]: (320, 90),
    }
    backend.advance(5)
    import io

    from PIL import Image

    for task_id, size in expect.items():
        response = client.get(f"/media/images/{task_id}/0.png")
        with Image.open(io.BytesIO(response.content)) as img:
            assert img.size == size
            assert max(img.size) == IMAGE_LONG_SIDE
