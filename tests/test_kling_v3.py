"""kling-v3 on text2video and image2video, with the official Kling 3.0 page's own examples and
each rule it states: durations 3 to 15 s, multi-shot (``multi_shot``, ``shot_type``,
``multi_prompt``), ``element_list`` and ``voice_list``, ``sound``. The result video lasts the
requested duration, in the requested shape."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from video_helpers import URL, download_video, image_b64, refusal, run_to_end

from mockkling import Backend, catalogue

T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"

_SHOTS = [
    ("Two friends talking under a streetlight at night.  Warm glow, casual poses, no dialogue.", "2"),
    ("A runner sprinting through a forest, leaves flying.  Low-angle shot, focus on movement.", "3"),
    ("A woman hugging a cat, smiling.  Soft sunlight, cozy home setting, emphasize warmth.", "3"),
    ("A door creaking open, shadowy hallway.  Dark tones, minimal details, eerie mood.", "3"),
    ("A man slipping on a banana peel, shocked expression.  Exaggerated pose, bright colors.", "3"),
    ("A sunset over mountains, small figure walking away.  Wide angle, peaceful atmosphere.", "1"),
]
MULTI_PROMPT = [{"index": i, "prompt": p, "duration": d} for i, (p, d) in enumerate(_SHOTS, start=1)]

# The page's text2video example, verbatim.
T2V_EXAMPLE: dict[str, Any] = {
    "model_name": "kling-v3",
    "prompt": "",
    "multi_prompt": MULTI_PROMPT,
    "multi_shot": True,
    "shot_type": "customize",
    "duration": "15",
    "mode": "pro",
    "sound": "on",
    "aspect_ratio": "9:16",
    "callback_url": "",
    "external_task_id": "",
}

# The page's image2video example 1, verbatim but for the image ("xxx" on the page); note its
# "multi_shot": "true", a string.
I2V_EXAMPLE_1: dict[str, Any] = {
    "model_name": "kling-v3",
    "image": "<image>",
    "prompt": "",
    "multi_shot": "true",
    "shot_type": "customize",
    "multi_prompt": MULTI_PROMPT,
    "negative_prompt": "",
    "duration": "15",
    "mode": "pro",
    "sound": "on",
    "callback_url": "",
    "external_task_id": "",
}

# Example 2, with its placeholders filled (``long`` ids, "xxx" images and callback URL) and the
# trailing comma that makes the page's body invalid JSON dropped.
I2V_EXAMPLE_2: dict[str, Any] = {
    "model_name": "kling-v3",
    "image": "<image>",
    "image_tail": "<image>",
    "prompt": "The girl with <<<element_1>>> (using <<<voice_1>>>) communicates with the girl with "
    "<<<image_1>>> (using <<<voice_2>>>)",
    "element_list": [{"element_id": 829836802793406551}],
    "voice_list": [{"voice_id": "genshin_vindi2"}, {"voice_id": "ai_kaiya"}],
    "negative_prompt": "xxx",
    "duration": "9",
    "mode": "std",
    "sound": "on",
    "callback_url": "",
    "external_task_id": "",
}


def _with_image(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for field in ("image", "image_tail"):
        if body.get(field) == "<image>":
            body[field] = image_b64(640, 360)
    return body


def test_the_text2video_example_makes_a_15_second_vertical_video(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    data = run_to_end(backend, client, auth, T2V, T2V_EXAMPLE)
    assert data["task_info"] == {}  # "external_task_id": "" is no id
    [video] = data["task_result"]["videos"]
    assert video["duration"] == "15"
    assert download_video(client, video["url"]) == (15.0, 1080, 1920)  # pro: 1080p
    assert data["final_unit_deduction"] == "12"  # 15 s at 4 units per 5 s


def test_the_image2video_example_1_takes_multi_shot_as_a_string(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    data = run_to_end(backend, client, auth, I2V, _with_image(I2V_EXAMPLE_1))
    [video] = data["task_result"]["videos"]
    assert video["duration"] == "15"
    assert download_video(client, video["url"]) == (15.0, 1920, 1080)  # the frame's 16:9


def test_the_image2video_example_2_is_refused_as_the_page_says(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    # The page's own rule: element_list and voice_list are mutually exclusive.
    body = _with_image(I2V_EXAMPLE_2)
    assert refusal(client, auth, I2V, body) == "element_list and voice_list cannot be used together"
    # With the element alone (and the prompt naming no voice), it runs: 9 s, std (720p).
    body.pop("voice_list")
    body["prompt"] = "The girl with <<<element_1>>> communicates with the girl in the first frame"
    data = run_to_end(backend, client, auth, I2V, body)
    [video] = data["task_result"]["videos"]
    assert (video["duration"], download_video(client, video["url"])) == ("9", (9.0, 1280, 720))


@pytest.mark.parametrize("seconds", [3, 4, 7, 11, 15])
@pytest.mark.parametrize("mode", ["std", "pro"])
def test_every_duration_from_3_to_15_seconds(
    backend: Backend, client: httpx.Client, auth: dict[str, str], seconds: int, mode: str
) -> None:
    body = {"model_name": "kling-v3", "prompt": "a lighthouse", "duration": str(seconds), "mode": mode}
    data = run_to_end(backend, client, auth, T2V, {**body, "aspect_ratio": "1:1"})
    short = 720 if mode == "std" else 1080
    assert download_video(client, data["task_result"]["videos"][0]["url"]) == (float(seconds), short, short)


def test_voices_and_elements_that_exist_are_accepted(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    voices = {
        "model_name": "kling-v3",
        "prompt": "A man <<<voice_1>>> says: hello. A woman <<<voice_2>>> answers.",
        "voice_list": [{"voice_id": "genshin_vindi2"}, {"voice_id": "ai_kaiya"}],
        "sound": "on",
    }
    run_to_end(backend, client, auth, T2V, voices)
    elements = {
        "model_name": "kling-v3",
        "image": URL,
        "prompt": "<<<element_1>>> meets <<<element_2>>> and <<<element_3>>>",
        "element_list": [
            {"element_id": 829836802793406551},
            {"element_id": "829836802793406552"},
            {"element_id": 829836802793406553},
        ],
    }
    run_to_end(backend, client, auth, I2V, elements)


def test_intelligent_multi_shot_needs_only_the_prompt(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    body = {"model_name": "kling-v3", "multi_shot": True, "shot_type": "intelligence", "prompt": "a heist"}
    run_to_end(backend, client, auth, T2V, {**body, "duration": "12"})


def test_multi_shot_takes_no_end_frame(client: httpx.Client, auth: dict[str, str]) -> None:
    """The Kling 3.0 image-to-video page, multi_shot: "When true: ... the first/end frame
    generation is not supported"."""
    body = {"model_name": "kling-v3", "image": URL, "multi_shot": True, "shot_type": "intelligence"}
    assert refusal(client, auth, I2V, {**body, "prompt": "a heist", "image_tail": URL}) == (
        "image_tail is not supported when multi_shot is true"
    )


def test_shot_prompts_are_read_by_fail_rules(auth: dict[str, str]) -> None:
    from mockkling import Config, FailRule, create_app
    from mockkling.transport import SyncASGITransport

    backend = Backend(Config(fail_rules=[FailRule("banana")]))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        task_id = client.post(T2V, json=T2V_EXAMPLE, headers=auth).json()["data"]["task_id"]
        backend.advance(10)
        assert client.get(f"{T2V}/{task_id}", headers=auth).json()["data"]["task_status"] == "failed"


def _shots(*durations: str) -> list[dict[str, Any]]:
    return [{"index": i, "prompt": f"shot {i}", "duration": d} for i, d in enumerate(durations, start=1)]


V3 = {"model_name": "kling-v3", "prompt": "a city"}
MULTI = {"model_name": "kling-v3", "multi_shot": True, "shot_type": "customize"}


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        # multi-shot
        (T2V, {**MULTI, "duration": "5", "multi_prompt": _shots("2", "2")}, "must add up to duration (5s)"),
        (T2V, {**MULTI, "duration": "7", "multi_prompt": _shots(*"1111111")}, "at most 6 items (got 7)"),
        (T2V, {**MULTI, "duration": "5", "multi_prompt": _shots("0", "5")}, "multi_prompt[0].duration: 0s"),
        (T2V, {**MULTI, "duration": "5", "multi_prompt": _shots("6")}, "multi_prompt[0].duration: 6s"),
        (
            T2V,
            {**MULTI, "duration": "5", "multi_prompt": _shots("2.5", "2.5")},
            "multi_prompt[0].duration must be",
        ),
        (
            T2V,
            {**MULTI, "multi_prompt": [{"index": 1, "prompt": "x" * 513, "duration": "5"}]},
            "multi_prompt[0].prompt must be at most 512",
        ),
        (
            T2V,
            {
                **MULTI,
                "multi_prompt": [
                    {"index": 1, "prompt": "a", "duration": "2"},
                    {"index": 1, "prompt": "b", "duration": "3"},
                ],
            },
            "multi_prompt[1].index: index 1 is used",
        ),
        (T2V, {**MULTI}, "multi_prompt is required when multi_shot is true"),
        (T2V, {**MULTI, "multi_prompt": []}, "multi_prompt is required"),
        (
            T2V,
            {"model_name": "kling-v3", "multi_shot": True},
            "shot_type is required when multi_shot is true",
        ),
        (
            T2V,
            {"model_name": "kling-v3", "multi_shot": True, "shot_type": "intelligence"},
            "prompt is required",
        ),
        (T2V, {**MULTI, "shot_type": "storyboard"}, "shot_type must be one of"),
        (T2V, {**MULTI, "multi_shot": "yes"}, "multi_shot"),
        (T2V, {"model_name": "kling-v3"}, "prompt is required"),
        (T2V, {"model_name": "kling-v3", "prompt": ""}, "prompt is required"),
        (I2V, {"model_name": "kling-v3", "image": URL}, "prompt is required"),
        (
            T2V,
            {"prompt": "x", "multi_shot": True, "shot_type": "intelligence"},
            "kling-v1 does not support multi_shot",
        ),
        # durations
        (T2V, {**V3, "duration": "16"}, "duration must be one of"),
        (T2V, {**V3, "duration": "2"}, "duration must be one of"),
        (
            T2V,
            {"prompt": "x", "duration": "12"},
            "kling-v1 does not support generation with mode std and duration 12s",
        ),
        (T2V, {"prompt": "x", "model_name": "kling-v2-6", "duration": "15"}, "kling-v2-6 does not support"),
        # voices and elements
        (
            T2V,
            {**V3, "voice_list": [{"voice_id": "genshin_vindi2"}]},
            'voice_list: voices need sound "on"',
        ),
        (
            T2V,
            {**V3, "sound": "on", "voice_list": [{"voice_id": "no-such-voice"}]},
            "voice_list[0].voice_id: voice",
        ),
        (T2V, {**V3, "voice_list": [{"voice_id": "a"}, {"voice_id": "b"}, {"voice_id": "c"}]}, "at most 2"),
        (
            T2V,
            {
                **V3,
                "prompt": "<<<voice_2>>> talks",
                "sound": "on",
                "voice_list": [{"voice_id": "genshin_vindi2"}],
            },
            "prompt: <<<voice_2>>> names voice_list item 2, but voice_list has 1 item",
        ),
        (
            I2V,
            {**V3, "image": URL, "element_list": [{"element_id": 829836802793406551}] * 4},
            "element_list: at most 3 elements (got 4)",
        ),
        (
            I2V,
            {**V3, "image": URL, "element_list": [{"element_id": 999}]},
            "element_list[0].element_id: element 999 does not exist",
        ),
        (
            I2V,
            {
                **V3,
                "image": URL,
                "prompt": "<<<element_2>>>",
                "element_list": [{"element_id": 829836802793406551}],
            },
            "names element_list item 2",
        ),
        (
            I2V,
            {"prompt": "x", "image": URL, "element_list": [{"element_id": 829836802793406551}]},
            "kling-v1 does not support element_list",
        ),
        # what kling-v3 does not do
        (T2V, {**V3, "camera_control": {"type": "forward_up"}}, "kling-v3 does not support camera_control"),
        (I2V, {**V3, "image_tail": URL}, "kling-v3 does not support an end frame"),
        (I2V, {**V3, "image": URL, "static_mask": URL}, "kling-v3 does not support motion brush"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_refusals_name_the_field(
    client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, path, body)


def test_the_catalogue_gives_kling_v3_every_duration_from_3_to_15() -> None:
    for action in ("text2video", "image2video"):
        for seconds in range(1, 20):
            for mode in ("std", "pro"):
                allowed = catalogue.supports(action, "kling-v3", "generate", mode, str(seconds))
                assert allowed is (3 <= seconds <= 15)
    assert catalogue.variants(("std",), range(3, 5)) == {"std:3", "std:4"}
