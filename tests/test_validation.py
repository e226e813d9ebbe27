"""Request validation on the official surface: schema rules from openapi.yaml, then the rules
the model catalogue and the image checks add. Every refusal is 400 / 1201 (or 1200 for a body
that is not JSON) in the official envelope, naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mockkling import catalogue

T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
URL = "https://example.com/cat.jpg"


def _refusal(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> str:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["code"] == 1201
    assert payload["data"] is None
    assert payload["request_id"]
    message: str = payload["message"]
    return message


def _created(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 2501}, "prompt"),
        ({"prompt": "x", "negative_prompt": "x" * 2501}, "negative_prompt"),
        ({"prompt": "x", "duration": "7"}, "duration"),
        ({"prompt": "x", "cfg_scale": 1.5}, "cfg_scale"),
        ({"prompt": "x", "cfg_scale": -0.1}, "cfg_scale"),
        ({"prompt": "x", "model_name": "kling-v9"}, "model_name"),
        ({"prompt": "x", "camera_control": {"type": "spin"}}, "camera_control.type"),
        (
            {"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 11}}},
            "camera_control.config.zoom",
        ),
        ({"prompt": "x", "external_task_id": "x" * 257}, "external_task_id"),
        ({"prompt": "x", "callback_url": 3}, "callback_url"),
    ],
)
def test_schema_violations_name_the_field(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    assert field in _refusal(client, auth, T2V, body)


def test_every_official_field_is_accepted(client: httpx.Client, auth: dict[str, str]) -> None:
    body = {
        "model_name": "kling-v1",
        "prompt": "a kitten",
        "negative_prompt": "blur",
        "cfg_scale": 0.7,
        "mode": "std",
        "aspect_ratio": "9:16",
        "duration": "5",
        "sound": "off",
        "camera_control": {
            "type": "simple",
            "config": {"horizontal": 0, "vertical": 0, "pan": 0, "tilt": 0, "roll": 0, "zoom": 5},
        },
        "watermark_info": {"enabled": False},
        "callback_url": "https://example.com/hook",
        "external_task_id": "ext-1",
    }
    data = _created(client, auth, T2V, body)
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "ext-1"}
    assert data["created_at"] == data["updated_at"]


def test_an_empty_external_task_id_means_none(client: httpx.Client, auth: dict[str, str]) -> None:
    # The official Kling 3.0 examples send "external_task_id": "" (and "callback_url": "").
    for _ in range(2):
        data = _created(client, auth, T2V, {"prompt": "x", "external_task_id": "", "callback_url": ""})
        assert data["task_info"] == {}


def test_unknown_fields_are_ignored_as_gateways_need(client: httpx.Client, auth: dict[str, str]) -> None:
    # mainline new-api adds "model" beside "model_name"; other gateways add their own fields.
    _created(client, auth, T2V, {"prompt": "x", "model": "kling-v1", "model_name": "kling-v1", "n": 1})


@pytest.mark.parametrize(
    "camera",
    [
        {"type": "simple"},
        {"type": "simple", "config": {"horizontal": 0, "zoom": 0}},
        {"type": "simple", "config": {"horizontal": 1, "zoom": 2}},
    ],
)
def test_simple_camera_control_needs_exactly_one_axis(
    client: httpx.Client, auth: dict[str, str], camera: dict[str, Any]
) -> None:
    assert "camera_control" in _refusal(client, auth, T2V, {"prompt": "x", "camera_control": camera})


def test_predefined_camera_movement_needs_no_config(client: httpx.Client, auth: dict[str, str]) -> None:
    _created(client, auth, T2V, {"prompt": "x", "camera_control": {"type": "forward_up"}})


@pytest.mark.parametrize(
    "body",
    [
        {"model_name": "kling-v1", "mode": "pro", "camera_control": {"type": "down_back"}},
        {"model_name": "kling-v1", "duration": "10", "camera_control": {"type": "down_back"}},
        {"model_name": "kling-v1-6", "camera_control": {"type": "down_back"}},
        {"model_name": "kling-v2-6", "mode": "std", "sound": "on"},
        {"model_name": "kling-v1", "sound": "on"},
    ],
)
def test_capability_rules_from_the_catalogue(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any]
) -> None:
    assert "does not support" in _refusal(client, auth, T2V, {"prompt": "x", **body})


def test_sound_on_kling_v2_6_pro(client: httpx.Client, auth: dict[str, str]) -> None:
    _created(client, auth, T2V, {"prompt": "x", "model_name": "kling-v2-6", "mode": "pro", "sound": "on"})


def test_cfg_scale_is_ignored_for_v2_models(client: httpx.Client, auth: dict[str, str]) -> None:
    # Gateways send cfg_scale 0.5 to every model; the real service does not refuse it.
    _created(client, auth, T2V, {"prompt": "x", "model_name": "kling-v2-master", "cfg_scale": 0.5})


def test_duplicate_external_task_id_is_refused_per_account(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    _created(client, auth, T2V, {"prompt": "x", "external_task_id": "dup"})
    assert "external_task_id" in _refusal(client, auth, T2V, {"prompt": "y", "external_task_id": "dup"})
    assert "external_task_id" in _refusal(client, auth, I2V, {"image": URL, "external_task_id": "dup"})


# -- image2video ------------------------------------------------------------------------------


def test_image_url_is_accepted_unfetched(client: httpx.Client, auth: dict[str, str]) -> None:
    _created(client, auth, I2V, {"image": "https://unreachable.invalid/x.png"})


def test_prompt_is_optional_on_image2video(client: httpx.Client, auth: dict[str, str]) -> None:
    _created(client, auth, I2V, {"model_name": "kling-v1-6", "image": URL})


def test_neither_image_nor_tail_is_refused_as_the_real_service_does(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    assert _refusal(client, auth, I2V, {"prompt": "x"}) == "image can not be null"
    message = _refusal(client, auth, I2V, {"prompt": "x", "model_name": "kling-v1-6"})
    assert message == "image and image_tail cannot both be empty"


def test_base64_images(client: httpx.Client, auth: dict[str, str], make_image: Callable[..., str]) -> None:
    _created(client, auth, I2V, {"image": make_image(640, 360, "PNG")})
    _created(client, auth, I2V, {"image": make_image(300, 300, "JPEG")})
    # Exactly 2.5:1 is still allowed.
    _created(client, auth, I2V, {"image": make_image(750, 300, "JPEG")})


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (lambda mk: mk(299, 400), "300px"),
        (lambda mk: mk(400, 299), "300px"),
        (lambda mk: mk(1000, 300), "aspect ratio"),
        (lambda mk: mk(300, 1000), "aspect ratio"),
        (lambda mk: mk(400, 400, "GIF"), "not supported"),
        (lambda mk: mk(400, 400, "BMP"), "not supported"),
    ],
)
def test_bad_base64_images(
    client: httpx.Client,
    auth: dict[str, str],
    make_image: Callable[..., str],
    image: Callable[[Callable[..., str]], str],
    words: str,
) -> None:
    message = _refusal(client, auth, I2V, {"image": image(make_image)})
    assert message.startswith("image:")
    assert words in message


def test_oversized_image_is_refused_without_decoding(client: httpx.Client, auth: dict[str, str]) -> None:
    message = _refusal(client, auth, I2V, {"image": "A" * (14 * 1024 * 1024)})
    assert "10MB" in message


def test_image_tail_is_checked_too(
    client: httpx.Client, auth: dict[str, str], make_image: Callable[..., str]
) -> None:
    body = {"model_name": "kling-v1", "image": URL, "image_tail": make_image(100, 100)}
    assert _refusal(client, auth, I2V, body).startswith("image_tail:")


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"model_name": "kling-v1", "image": URL, "image_tail": URL}, True),
        ({"model_name": "kling-v1", "image": URL, "image_tail": URL, "duration": "10"}, False),
        ({"model_name": "kling-v1-6", "image": URL, "image_tail": URL}, False),
        ({"model_name": "kling-v1-6", "image": URL, "image_tail": URL, "mode": "pro"}, True),
        ({"model_name": "kling-v1-6", "image_tail": URL, "mode": "pro"}, True),
        ({"model_name": "kling-v1", "image_tail": URL}, False),
        (
            {
                "model_name": "kling-v1-5",
                "image": URL,
                "mode": "pro",
                "camera_control": {"type": "simple", "config": {"pan": 2}},
            },
            True,
        ),
        (
            {
                "model_name": "kling-v1-5",
                "image": URL,
                "mode": "pro",
                "camera_control": {"type": "down_back"},
            },
            False,
        ),
        ({"model_name": "kling-v1", "image": URL, "static_mask": URL}, True),
        ({"model_name": "kling-v2-master", "image": URL, "static_mask": URL}, False),
        ({"model_name": "kling-v1", "image": URL, "image_tail": URL, "static_mask": URL}, False),
        (
            {
                "model_name": "kling-v2-6",
                "image": URL,
                "mode": "pro",
                "sound": "on",
                "voice_list": [{"voice_id": "genshin_vindi2"}],
            },
            True,
        ),
        ({"model_name": "kling-v2-6", "image": URL, "sound": "on", "voice_list": [{"voice_id": "v"}]}, False),
    ],
)
def test_image2video_feature_rules(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], ok: bool
) -> None:
    response = client.post(I2V, json=body, headers=auth)
    assert (response.status_code == 200) is ok, response.text
    if not ok:
        assert response.json()["code"] == 1201


def test_dynamic_masks_shape(client: httpx.Client, auth: dict[str, str]) -> None:
    mask = {"mask": URL, "trajectories": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}
    _created(client, auth, I2V, {"image": URL, "dynamic_masks": [mask]})
    assert "dynamic_masks" in _refusal(client, auth, I2V, {"image": URL, "dynamic_masks": [mask] * 7})
    bad = {"mask": URL, "trajectories": [{"x": "1", "y": 2}, {"x": 3, "y": 4}]}
    assert "dynamic_masks[0].trajectories[0].x" in _refusal(
        client, auth, I2V, {"image": URL, "dynamic_masks": [bad]}
    )


def test_every_catalogue_model_creates_a_task(client: httpx.Client, auth: dict[str, str]) -> None:
    for action, path in (("text2video", T2V), ("image2video", I2V)):
        for model in catalogue.models_for(action):
            _created(client, auth, path, {"model_name": model, "prompt": "x", "image": URL})
