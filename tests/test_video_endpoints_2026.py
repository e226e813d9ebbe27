"""The 2026 video endpoints, each driven create -> query -> succeed -> download with the official
pages' own request examples (placeholders such as "xxx" images and ``long`` element ids filled
in), and the refusals each page documents: omni video, motion control, avatar, identify-face and
advanced lip sync, multi-element editing with its selection session, and image segmentation."""

# The pages' Chinese prompts are sent verbatim, full-width punctuation included.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image
from video_helpers import (
    URL,
    VIDEO_URL,
    created,
    decode_rle,
    download_video,
    finished_video,
    image_b64,
    mp3_b64,
    query,
    refusal,
    run_to_end,
    wav_b64,
)

from mockkling import Backend, make_jwt

OMNI = "/v1/videos/omni-video"
MOTION = "/v1/videos/motion-control"
AVATAR = "/v1/videos/avatar/image2video"
FACES = "/v1/videos/identify-face"
LIP_SYNC = "/v1/videos/advanced-lip-sync"
EDIT = "/v1/videos/multi-elements"
RECOGNIZE = "/v1/videos/image-recognize"
OTHER = ("other-ak", "other-secret-key-with-plenty-of-bytes")


@pytest.fixture
def other(backend: Backend) -> dict[str, str]:
    """Credentials of a second account."""
    backend.add_account(*OTHER)
    return {"Authorization": f"Bearer {make_jwt(*OTHER)}"}


def call(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A synchronous endpoint's answer ``data``."""
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["code"], payload["message"]) == (0, "SUCCEED") and payload["request_id"]
    data: dict[str, Any] = payload["data"]
    return data


def the_video(client: httpx.Client, data: dict[str, Any]) -> tuple[str, tuple[float, int, int]]:
    [video] = data["task_result"]["videos"]
    return video["duration"], download_video(client, video["url"])


# -- omni video ------------------------------------------------------------------------------------

OMNI_EXAMPLES: dict[str, tuple[dict[str, Any], tuple[str, tuple[float, int, int]]]] = {
    "image and element reference": (
        {
            "model_name": "kling-video-o1",
            "prompt": "<<<image_1>>>在东京的街头漫步，偶遇<<<element_1>>>和<<<element_2>>>，并跳到"
            "<<<element_2>>>的怀里。视频画面风格与<<<image_2>>>相同",
            "image_list": [{"image_url": URL}, {"image_url": URL}],
            "element_list": [{"element_id": 829836802793406551}, {"element_id": 829836802793406552}],
            "mode": "pro",
            "aspect_ratio": "1:1",
            "duration": "7",
        },
        ("7", (7.0, 1080, 1080)),
    ),
    "instruction edit of a base video": (
        {
            "model_name": "kling-video-o1",
            "prompt": "给<<<video_1>>>中的穿蓝衣服的女孩，戴上<<<image_1>>>中的王冠",
            "image_list": [{"image_url": URL}],
            "video_list": [{"video_url": VIDEO_URL, "refer_type": "base", "keep_original_sound": "yes"}],
            "mode": "pro",
        },
        ("5", (5.0, 1920, 1080)),  # the base video's length (a URL not fetched: 5 s, 16:9)
    ),
    "video reference": (
        {
            "model_name": "kling-video-o1",
            "prompt": "参考<<<video_1>>>的运镜方式，生成一段视频："
            "<<<element_1>>>和<<<element_2>>>在东京街头漫步，"
            "偶遇<<<image_1>>>",
            "image_list": [{"image_url": URL}],
            "element_list": [{"element_id": "829836802793406551"}, {"element_id": "829836802793406552"}],
            "video_list": [{"video_url": VIDEO_URL, "refer_type": "feature", "keep_original_sound": "yes"}],
            "mode": "pro",
            "aspect_ratio": "1:1",
            "duration": "7",
        },
        ("7", (7.0, 1080, 1080)),
    ),
    "video extension (next shot)": (
        {
            "model_name": "kling-video-o1",
            "prompt": "基于<<<video_1>>>，生成下一个镜头",
            "video_list": [{"video_url": VIDEO_URL, "refer_type": "feature", "keep_original_sound": "yes"}],
            "mode": "pro",
        },
        ("5", (5.0, 1920, 1080)),
    ),
    "first and end frames": (
        {
            "model_name": "kling-video-o1",
            "prompt": "视频中的人跳舞",
            "image_list": [
                {"image_url": "<portrait>", "type": "first_frame"},
                {"image_url": URL, "type": "end_frame"},
            ],
            "mode": "pro",
        },
        ("5", (5.0, 1080, 1920)),  # the first frame's 9:16
    ),
    "text to video": (
        {
            "model_name": "kling-video-o1",
            "prompt": "视频中的人跳舞",
            "mode": "pro",
            "aspect_ratio": "1:1",
            "duration": "7",
        },
        ("7", (7.0, 1080, 1080)),
    ),
}


@pytest.mark.parametrize("name", OMNI_EXAMPLES)
def test_omni_video_examples(backend: Backend, client: httpx.Client, auth: dict[str, str], name: str) -> None:
    body, expected = OMNI_EXAMPLES[name]
    if body.get("image_list") and body["image_list"][0]["image_url"] == "<portrait>":
        body = {
            **body,
            "image_list": [
                {**body["image_list"][0], "image_url": image_b64(360, 640)},
                body["image_list"][1],
            ],
        }
    data = run_to_end(backend, client, auth, OMNI, body)
    assert the_video(client, data) == expected
    assert "parent_video" not in data["task_info"]


def test_kling_v3_omni_lasts_up_to_15_seconds_with_sound_and_shots(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    body = {
        "model_name": "kling-v3-omni",
        "multi_shot": True,
        "shot_type": "customize",
        "multi_prompt": [
            {"index": 1, "prompt": "<<<image_1>>> waves", "duration": "6"},
            {"index": 2, "prompt": "then runs", "duration": "9"},
        ],
        "image_list": [{"image_url": URL}],
        "aspect_ratio": "9:16",
        "duration": "15",
        "mode": "std",
        "sound": "on",
    }
    data = run_to_end(backend, client, auth, OMNI, body)
    assert the_video(client, data) == ("15", (15.0, 720, 1280))


def test_a_base_video_of_the_mock_keeps_its_length_and_shape(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    source = finished_video(
        backend,
        client,
        auth,
        {"prompt": "a", "model_name": "kling-v3", "duration": "8", "aspect_ratio": "9:16"},
    )
    body = {
        "prompt": "make <<<video_1>>> snowy",
        "video_list": [{"video_url": source["url"], "refer_type": "base"}],
        "duration": "10",  # ignored: an edit follows its video
        "mode": "std",
    }
    data = run_to_end(backend, client, auth, OMNI, body)
    assert the_video(client, data) == ("8", (8.0, 720, 1280))


def _omni(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a walk", "aspect_ratio": "16:9", **fields}


FRAME = {"image_url": URL, "type": "first_frame"}
END = {"image_url": URL, "type": "end_frame"}
FEATURE = {"video_url": VIDEO_URL, "refer_type": "feature"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_omni(image_list=[{"image_url": URL}] * 8), "image_list must have at most 7"),
        (
            _omni(image_list=[{"image_url": URL}] * 5, video_list=[FEATURE]),
            "image_list: at most 4 images with a video",
        ),
        (
            _omni(image_list=[{"image_url": URL}] * 4, element_list=[{"element_id": 829836802793406551}] * 4),
            "at most 7 images and elements in all without a video (got 8)",
        ),
        (
            _omni(
                image_list=[{"image_url": URL}] * 2,
                element_list=[{"element_id": 829836802793406551}] * 3,
                video_list=[FEATURE],
            ),
            "at most 4 images and elements in all with a video (got 5)",
        ),
        (_omni(image_list=[END]), "an end_frame needs a first_frame"),
        (_omni(image_list=[FRAME, END, {"image_url": URL}]), "not supported with more than 2 images"),
        (_omni(image_list=[FRAME, FRAME]), "at most one first_frame"),
        (_omni(image_list=[{"image_url": URL, "type": "last_frame"}]), "image_list[0].type must be one of"),
        (_omni(video_list=[FEATURE, FEATURE]), "video_list must have at most 1"),
        (_omni(video_list=[{"video_url": "dance.mp4"}]), "video_list[0].video_url must be an http(s) URL"),
        (
            _omni(prompt="<<<image_1>>> runs"),
            "prompt: <<<image_1>>> names image_list item 1, but image_list has 0 items",
        ),
        (
            _omni(prompt="<<<element_2>>>", element_list=[{"element_id": 829836802793406551}]),
            "names element_list item 2",
        ),
        (_omni(prompt="<<<video_1>>>"), "names video_list item 1"),
        (_omni(element_list=[{"element_id": 42}]), "element_list[0].element_id: element 42 does not exist"),
        ({"prompt": "a walk"}, "aspect_ratio is required without a first_frame image or a video"),
        ({"aspect_ratio": "1:1"}, "prompt is required"),
        (_omni(duration="15"), "kling-video-o1 does not support generation with mode pro and duration 15s"),
        (_omni(image_list=[FRAME], duration="7"), "video from a first frame lasts 5 or 10 seconds"),
        (
            _omni(image_list=[FRAME], video_list=[{**FEATURE, "refer_type": "base"}]),
            "cannot be used with a base video",
        ),
        (_omni(sound="on"), "kling-video-o1 does not support sound"),
        (
            _omni(model_name="kling-v3-omni", sound="on", video_list=[FEATURE]),
            'sound: "on" is not supported with a video_list',
        ),
        (_omni(multi_shot=True, shot_type="intelligence"), "kling-video-o1 does not support multi_shot"),
        (
            {
                "model_name": "kling-v3-omni",
                "aspect_ratio": "1:1",
                "multi_shot": True,
                "shot_type": "intelligence",
            },
            "prompt is required",
        ),
        (_omni(model_name="kling-v3-omni", multi_shot=True), "shot_type is required when multi_shot is true"),
        (_omni(model_name="kling-v1"), "model_name must be one of"),
        (_omni(mode="max"), "mode must be one of"),
    ],
    ids=lambda v: str(v)[:60],
)
def test_omni_video_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, OMNI, body)


def test_omni_reference_videos_of_the_mock_are_measured(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    long = finished_video(backend, client, auth, {"prompt": "a", "model_name": "kling-v3", "duration": "12"})
    body = _omni(video_list=[{"video_url": long["url"]}])
    assert "the video lasts 12s; it must last 3 to 10 seconds" in refusal(client, auth, OMNI, body)
    created(client, auth, OMNI, {**body, "model_name": "kling-v3-omni"})  # 3 to 15.5 s


# -- motion control --------------------------------------------------------------------------------


def motion(**fields: Any) -> dict[str, Any]:
    """The body real clients send (vercel/ai's klingai provider): the page's fields plus model_name."""
    return {
        "model_name": "kling-v2-6",
        "video_url": VIDEO_URL,
        "character_orientation": "image",
        "mode": "std",
        "prompt": "a dancer on a stage",
        "image_url": URL,
        "keep_original_sound": "yes",
        **fields,
    }


@pytest.mark.parametrize("model", ["kling-v2-6", "kling-v3"])
@pytest.mark.parametrize("mode", ["std", "pro"])
def test_motion_control_lasts_as_long_as_its_reference(
    backend: Backend, client: httpx.Client, auth: dict[str, str], model: str, mode: str
) -> None:
    reference = finished_video(
        backend, client, auth, {"prompt": "a", "model_name": "kling-v3", "duration": "8"}
    )
    body = motion(model_name=model, mode=mode, video_url=reference["url"], image_url=image_b64(400, 400))
    data = run_to_end(backend, client, auth, MOTION, body)
    short = 720 if mode == "std" else 1080
    assert the_video(client, data) == ("8", (8.0, short, short))


def test_motion_control_on_kling_v3_takes_one_element(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    body = motion(
        model_name="kling-v3",
        character_orientation="video",
        element_list=[{"element_id": 829836802793406551}],
    )
    data = run_to_end(backend, client, auth, MOTION, body)
    assert the_video(client, data) == (
        "5",
        (5.0, 1280, 720),
    )  # an unknown URL: 5 s; a URL image: its video's 16:9
    assert data["final_unit_deduction"] == "4.5"  # 0.9 units a second of output on kling-v3 std


def test_motion_control_reference_length_follows_the_orientation(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    twelve = finished_video(
        backend, client, auth, {"prompt": "a", "model_name": "kling-v3", "duration": "12"}
    )
    message = refusal(client, auth, MOTION, motion(video_url=twelve["url"]))
    assert message == "video_url: the video lasts 12s; it must last 3 to 10 seconds"
    created(client, auth, MOTION, motion(video_url=twelve["url"], character_orientation="video"))
    # 10 s, extended five times by 5 s: 35 s, past the 30 s orientation "video" takes.
    video = finished_video(backend, client, auth, {"prompt": "a", "duration": "10"})
    for _ in range(5):
        data = run_to_end(backend, client, auth, "/v1/videos/video-extend", {"video_id": video["id"]})
        video = data["task_result"]["videos"][0]
    message = refusal(client, auth, MOTION, motion(video_url=video["url"], character_orientation="video"))
    assert message == "video_url: the video lasts 35s; it must last 3 to 30 seconds"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({k: v for k, v in motion().items() if k != "mode"}, "mode is required"),
        (
            {k: v for k, v in motion().items() if k != "character_orientation"},
            "character_orientation is required",
        ),
        ({k: v for k, v in motion().items() if k != "image_url"}, "image_url is required"),
        ({k: v for k, v in motion().items() if k != "video_url"}, "video_url is required"),
        (motion(video_url="dance.mp4"), "video_url must be an http(s) URL"),
        (motion(image_url="data:image/png;base64,AAAA"), "image_url: send raw Base64"),
        (motion(keep_original_sound="maybe"), "keep_original_sound must be one of"),
        (motion(model_name="kling-v2-5-turbo"), "model_name must be one of"),
        (
            motion(element_list=[{"element_id": 829836802793406551}]),
            "kling-v2-6 does not support element_list",
        ),
        (
            motion(model_name="kling-v3", element_list=[{"element_id": 829836802793406551}]),
            'needs character_orientation "video"',
        ),
        (
            motion(
                model_name="kling-v3",
                character_orientation="video",
                element_list=[{"element_id": 829836802793406551}] * 2,
            ),
            "element_list must have at most 1",
        ),
    ],
    ids=lambda v: str(v)[:60],
)
def test_motion_control_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, MOTION, body)


MOVE = {"character_orientation": "image", "mode": "std"}


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        (
            MOTION,
            {**MOVE, "image_url": "https://e.com/a.gif", "video_url": VIDEO_URL},
            "image_url: .gif files",
        ),
        (MOTION, {**MOVE, "image_url": URL, "video_url": "https://e.com/d.avi"}, "video_url: .avi files"),
        (
            OMNI,
            {"prompt": "a <<<image_1>>>", "image_list": [{"image_url": "https://e.com/a.webp"}]},
            ".webp files",
        ),
        (
            AVATAR,
            {"image": URL, "sound_file": "https://e.com/a.ogg"},
            "sound_file: .ogg files are not supported",
        ),
    ],
    ids=["motion-image", "motion-video", "omni-image", "avatar-sound"],
)
def test_urls_naming_a_file_type_the_page_does_not_take_are_refused(
    client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any], words: str
) -> None:
    """The pages take JPG/PNG images, MP4/MOV videos and MP3/WAV/M4A/AAC sound; the mock never
    fetches a URL, but one that names another media type is refused, as the real service does
    once it has fetched it."""
    assert words in refusal(client, auth, path, body)


def test_urls_that_name_no_media_type_are_taken(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    body = {"image_url": "https://e.com/photo.php?id=7", "video_url": "https://e.com/stream", "mode": "std"}
    run_to_end(backend, client, auth, MOTION, {**body, "character_orientation": "image"})


# -- avatar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sound", "seconds"), [(wav_b64(3.5), "3.5"), (mp3_b64(12), "12")])
def test_avatar_lasts_as_long_as_its_sound_file(
    backend: Backend, client: httpx.Client, auth: dict[str, str], sound: str, seconds: str
) -> None:
    body = {"image": image_b64(400, 400), "sound_file": sound, "prompt": "smiles", "mode": "pro"}
    data = run_to_end(backend, client, auth, AVATAR, body)
    duration, (length, width, height) = the_video(client, data)
    assert duration == seconds and (width, height) == (1080, 1080)
    assert length == pytest.approx(float(seconds), abs=0.001)


@pytest.fixture
def speech(client: httpx.Client, auth: dict[str, str]) -> tuple[str, str]:
    """A speech clip the default account made with text to speech: its ``audio_id`` and length."""
    body = {"text": "A portrait that speaks for a little while.", "voice_id": "genshin_vindi2"}
    answer = client.post("/v1/audio/tts", json={**body, "voice_language": "zh"}, headers=auth)
    audio = answer.json()["data"]["task_result"]["audios"][0]
    return audio["id"], audio["duration"]


def test_avatar_takes_an_audio_id_the_account_made(
    backend: Backend,
    client: httpx.Client,
    auth: dict[str, str],
    other: dict[str, str],
    speech: tuple[str, str],
) -> None:
    audio_id, seconds = speech
    data = run_to_end(backend, client, auth, AVATAR, {"image": URL, "audio_id": audio_id})
    # The video lasts as long as the speech, to the tenth of a second its duration shows.
    assert float(the_video(client, data)[0]) == pytest.approx(float(seconds), abs=0.05)
    # Another account's clip is refused as an unknown one is.
    messages = {
        refusal(client, other, AVATAR, {"image": URL, "audio_id": ident}) for ident in (audio_id, "nope-a0")
    }
    assert {m.replace(audio_id, "<id>").replace("nope-a0", "<id>") for m in messages} == {
        "audio_id: audio <id> does not exist or has expired"
    }


def test_avatar_with_a_sound_url_lasts_five_seconds(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    data = run_to_end(
        backend,
        client,
        auth,
        AVATAR,
        {"image": image_b64(360, 640), "sound_file": "https://example.com/a.mp3"},
    )
    assert the_video(client, data) == ("5", (5.0, 720, 1280))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"sound_file": wav_b64(3)}, "image is required"),
        ({"image": URL}, "audio_id and sound_file: send exactly one of them"),
        ({"image": URL, "audio_id": "x-a0", "sound_file": wav_b64(3)}, "send exactly one of them"),
        (
            {"image": URL, "sound_file": wav_b64(1.5)},
            "sound_file: the audio lasts 1.5s; it must last 2 to 300 seconds",
        ),
        ({"image": URL, "sound_file": wav_b64(301, rate=4000)}, "the audio lasts 301s"),
        (
            {"image": URL, "sound_file": base64.b64encode(b"not audio at all" * 10).decode()},
            "sound_file: not a valid audio file",
        ),
        ({"image": URL, "sound_file": "data:audio/wav;base64," + wav_b64(3)}, "sound_file: send raw Base64"),
        ({"image": URL, "sound_file": "!!!"}, "sound_file: not valid Base64"),
        ({"image": "small", "sound_file": wav_b64(3)}, "image: image is 200x200"),
        ({"image": URL, "sound_file": wav_b64(3), "mode": "max"}, "mode must be one of"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_avatar_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    if body.get("image") == "small":
        body = {**body, "image": image_b64(200, 200)}
    assert words in refusal(client, auth, AVATAR, body)


# -- identify-face and advanced lip sync ------------------------------------------------------------


def lip_sync_body(session_id: str, face_id: str = "0", **choice: Any) -> dict[str, Any]:
    """The page's request: one face, a crop of a sound file inserted at the start."""
    face = {
        "face_id": face_id,
        "sound_file": wav_b64(4),
        "sound_start_time": 0,
        "sound_end_time": 3000,
        "sound_insert_time": 1000,
        "sound_volume": 1,
        "original_audio_volume": 1,
        **choice,
    }
    return {"session_id": session_id, "face_choose": [face], "external_task_id": "lips-1"}


def test_identify_face_then_advanced_lip_sync(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    video = finished_video(backend, client, auth, {"prompt": "a talk", "aspect_ratio": "9:16"})
    faces = call(client, auth, FACES, {"video_id": video["id"]})
    assert faces["final_unit_deduction"] == "0"
    [face] = faces["face_data"]
    assert (face["face_id"], face["start_time"], face["end_time"]) == ("0", 0, 5000)
    thumbnail = client.get(face["face_image"])
    assert thumbnail.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (160, 160)

    data = run_to_end(backend, client, auth, LIP_SYNC, lip_sync_body(faces["session_id"]))
    assert data["task_info"]["external_task_id"] == "lips-1"
    assert data["task_info"]["parent_video"]["id"] == video["id"]
    assert the_video(client, data) == ("5", (5.0, 720, 1280))  # the session video's length and shape


def test_identify_face_on_a_url(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    faces = call(client, auth, FACES, {"video_url": VIDEO_URL})
    data = run_to_end(
        backend, client, auth, LIP_SYNC, lip_sync_body(faces["session_id"], sound_file=mp3_b64(4))
    )
    assert "parent_video" not in data["task_info"]
    assert the_video(client, data) == ("5", (5.0, 1280, 720))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "video_id and video_url: send exactly one of them"),
        ({"video_id": "a-0", "video_url": VIDEO_URL}, "send exactly one of them"),
        ({"video_id": "nope-0"}, "video_id: video nope-0 does not exist or has expired"),
        ({"video_url": "video.mp4"}, "video_url must be an http(s) URL"),
        ({"video_id": 5}, "video_id must be of type string"),
    ],
    ids=str,
)
def test_identify_face_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, FACES, body)


def test_identify_face_takes_2_to_60_second_videos(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    video = finished_video(backend, client, auth, {"prompt": "a", "duration": "10"})
    for _ in range(11):  # 10 s + 11 * 5 s = 65 s
        video = run_to_end(backend, client, auth, "/v1/videos/video-extend", {"video_id": video["id"]})[
            "task_result"
        ]["videos"][0]
    assert refusal(client, auth, FACES, {"video_id": video["id"]}) == (
        "video_id: the video lasts 65s; it must last 2 to 60 seconds"
    )


@pytest.fixture
def session(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> str:
    return str(call(client, auth, FACES, {"video_url": VIDEO_URL})["session_id"])


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        ({"face_id": "7"}, "face_choose[0].face_id: face 7 is not in this session"),
        ({"sound_file": None}, "face_choose[0].audio_id and face_choose[0].sound_file: send exactly one"),
        ({"audio_id": "x-a0"}, "send exactly one"),
        (
            {"sound_end_time": 1500},
            "face_choose[0].sound_end_time: the audio cut lasts 1500ms; at least 2000ms",
        ),
        ({"sound_end_time": 4500}, "face_choose[0].sound_end_time: 4500ms is past the audio's end (4000ms)"),
        ({"sound_insert_time": 3500}, "face_choose[0].sound_insert_time: the audio would end at 6500ms"),
        ({"sound_file": wav_b64(70, rate=1000)}, "the audio lasts 70s; it must last 2 to 60 seconds"),
        (
            {"sound_file": base64.b64encode(b"\xff\xf1" + bytes(300)).decode()},
            "not a valid audio file (.m4a, .mp3, .wav)",
        ),
        ({"sound_volume": 3}, "face_choose[0].sound_volume must be <= 2"),
        ({"sound_start_time": -1}, "face_choose[0].sound_start_time must be >= 0"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_advanced_lip_sync_refusals(
    client: httpx.Client, auth: dict[str, str], session: str, choice: dict[str, Any], words: str
) -> None:
    body = lip_sync_body(session, **choice)
    body["face_choose"][0] = {k: v for k, v in body["face_choose"][0].items() if v is not None}
    assert words in refusal(client, auth, LIP_SYNC, body)


def test_a_face_chosen_twice_is_refused(client: httpx.Client, auth: dict[str, str], session: str) -> None:
    body = lip_sync_body(session)
    body["face_choose"] *= 2
    assert "face_choose[1].face_id: face 0 is chosen twice" in refusal(client, auth, LIP_SYNC, body)


def test_unknown_expired_and_foreign_sessions_are_refused_alike(
    backend: Backend, client: httpx.Client, auth: dict[str, str], other: dict[str, str], session: str
) -> None:
    theirs = str(call(client, other, FACES, {"video_url": VIDEO_URL})["session_id"])
    messages = {
        refusal(client, auth, LIP_SYNC, lip_sync_body(ident)).replace(ident, "<id>")
        for ident in (theirs, "nope")
    }
    backend.advance(24 * 3600)  # the session lives 24 hours
    messages.add(refusal(client, auth, LIP_SYNC, lip_sync_body(session)).replace(session, "<id>"))
    assert messages == {"session_id: session <id> does not exist or has expired"}


# -- multi-element editing -------------------------------------------------------------------------

PROMPTS = {
    "addition": "Using the context of <<<video_1>>>, seamlessly add a hat from <<<image_1>>>",
    "swap": "swap the hat from <<<image_1>>> for the cap from <<<video_1>>>",
    "removal": "Delete the dog from <<<video_1>>>",
}
POINTS = [{"x": 0.5, "y": 0.5}, {"x": 0.6, "y": 0.4}]


def edit(session_id: str, edit_mode: str, images: int = 1, **fields: Any) -> dict[str, Any]:
    """The create body Kuaishou's own client sends (ComfyUI-KLingAI-API)."""
    return {
        "model_name": "kling-v1-6",
        "session_id": session_id,
        "edit_mode": edit_mode,
        "image_list": [{"image": URL}] * images,
        "prompt": PROMPTS[edit_mode],
        "negative_prompt": "",
        "mode": "std",
        "duration": "5",
        **fields,
    }


def test_a_selection_session_then_each_edit_mode(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    video = finished_video(backend, client, auth)
    init = call(client, auth, f"{EDIT}/init-selection", {"video_id": video["id"]})
    session_id = init["session_id"]
    assert {k: init[k] for k in ("status", "fps", "original_duration", "width", "height", "total_frame")} == {
        "status": 0,
        "fps": 24.0,
        "original_duration": 5000,
        "width": 1280,
        "height": 720,
        "total_frame": 120,
    }
    assert download_video(client, init["normalized_video"]) == (5.0, 1280, 720)

    assert "nothing is selected yet" in refusal(
        client, auth, f"{EDIT}/preview-selection", {"session_id": session_id}
    )
    assert "mark what to remove with add-selection first" in refusal(
        client, auth, EDIT, edit(session_id, "removal", 0)
    )

    added = call(
        client, auth, f"{EDIT}/add-selection", {"session_id": session_id, "frame_index": 10, "points": POINTS}
    )
    [mask] = added["res"]["rle_mask_list"]
    assert (added["res"]["frame_index"], mask["object_id"], mask["rle_mask"]["size"]) == (10, 0, [1280, 720])
    png = Image.open(io.BytesIO(base64.b64decode(mask["png_mask"]["base64"])))
    assert png.size == (1280, 720)
    assert decode_rle(mask["rle_mask"]["counts"], 1280, 720) == bytes(1 if p else 0 for p in png.tobytes())
    assert png.getpixel((640, 360)) == 255 and png.getpixel((10, 10)) == 0  # the points are inside

    preview = call(client, auth, f"{EDIT}/preview-selection", {"session_id": session_id})["res"]
    assert download_video(client, preview["video"]) == (5.0, 1280, 720)
    assert client.get(preview["video_cover"]).headers["content-type"] == "image/png"
    assert download_video(client, preview["tracking_output"])[0] == 5.0

    for mode, images in (("addition", 2), ("swap", 1), ("removal", 0)):
        data = run_to_end(backend, client, auth, EDIT, edit(session_id, mode, images))
        [result] = data["task_result"]["videos"]
        assert result["session_id"] == session_id
        assert the_video(client, data) == ("5", (5.0, 1280, 720))


def test_selections_are_deleted_and_cleared(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    session_id = call(client, auth, f"{EDIT}/init-selection", {"video_url": VIDEO_URL})["session_id"]
    body = {"session_id": session_id, "frame_index": 3, "points": POINTS}
    call(client, auth, f"{EDIT}/add-selection", body)
    second = call(client, auth, f"{EDIT}/add-selection", {**body, "points": [{"x": 0.1, "y": 0.1}]})
    assert [m["object_id"] for m in second["res"]["rle_mask_list"]] == [0, 1]
    wrong = {**body, "points": [{"x": 0.5, "y": 0.51}]}
    assert refusal(client, auth, f"{EDIT}/delete-selection", wrong) == (
        "points: no selection on frame 3 has exactly these points"
    )
    left = call(client, auth, f"{EDIT}/delete-selection", body)
    assert [m["object_id"] for m in left["res"]["rle_mask_list"]] == [1]
    call(client, auth, f"{EDIT}/clear-selection", {"session_id": session_id})
    assert "nothing is selected yet" in refusal(
        client, auth, f"{EDIT}/preview-selection", {"session_id": session_id}
    )


@pytest.mark.parametrize(
    ("step", "body", "words"),
    [
        ("init-selection", {}, "video_id and video_url: send exactly one of them"),
        ("init-selection", {"video_id": "nope-0"}, "video_id: video nope-0 does not exist"),
        (
            "add-selection",
            {"session_id": "<s>", "frame_index": 120, "points": POINTS},
            "frame_index: 120; the video's frames are 0 to 119",
        ),
        (
            "add-selection",
            {"session_id": "<s>", "frame_index": 0, "points": []},
            "points must have at least 1",
        ),
        (
            "add-selection",
            {"session_id": "<s>", "frame_index": 0, "points": [{"x": 1.5, "y": 0}]},
            "points[0].x must be <= 1",
        ),
        (
            "add-selection",
            {"session_id": "nope", "frame_index": 0, "points": POINTS},
            "session_id: session nope does not exist",
        ),
        ("delete-selection", {"session_id": "<s>", "frame_index": 0}, "points is required"),
        ("clear-selection", {}, "session_id is required"),
        ("preview-selection", {"session_id": "nope"}, "session_id: session nope does not exist"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_selection_refusals(
    client: httpx.Client, auth: dict[str, str], step: str, body: dict[str, Any], words: str
) -> None:
    if body.get("session_id") == "<s>":
        body = {
            **body,
            "session_id": call(client, auth, f"{EDIT}/init-selection", {"video_url": VIDEO_URL})[
                "session_id"
            ],
        }
    assert words in refusal(client, auth, f"{EDIT}/{step}", body)


def test_selection_videos_must_last_2_to_5_or_7_to_10_seconds(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    six = finished_video(backend, client, auth, {"prompt": "a", "model_name": "kling-v3", "duration": "6"})
    assert refusal(client, auth, f"{EDIT}/init-selection", {"video_url": six["url"]}) == (
        "video_url: the video lasts 6s; it must last 2 to 5 or 7 to 10 seconds"
    )
    ten = finished_video(backend, client, auth, {"prompt": "a", "duration": "10"})
    session_id = call(client, auth, f"{EDIT}/init-selection", {"video_id": ten["id"]})["session_id"]
    assert "session_id: the video lasts 10s; it must last 2 to 5 seconds" in refusal(
        client, auth, EDIT, edit(session_id, "addition")
    )
    data = run_to_end(backend, client, auth, EDIT, edit(session_id, "addition", duration="10"))
    assert the_video(client, data)[0] == "10"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"edit_mode": "addition", "image_list": []},
            "image_list: edit_mode addition takes 1 to 2 images (got 0)",
        ),
        ({"edit_mode": "swap", "image_list": [{"image": URL}] * 2}, "edit_mode swap takes 1 image (got 2)"),
        (
            {"edit_mode": "removal", "image_list": [{"image": URL}]},
            "edit_mode removal takes no image (got 1)",
        ),
        ({"edit_mode": "addition", "image_list": [{"image": URL}] * 3}, "image_list must have at most 2"),
        ({"edit_mode": "blend"}, "edit_mode must be one of"),
        ({"prompt": "add <<<image_2>>> to <<<video_1>>>"}, "names image_list item 2"),
        ({"model_name": "kling-v2-6"}, "model_name must be one of"),
        ({"duration": "7"}, "duration must be one of"),
        ({"session_id": "nope"}, "session_id: session nope does not exist or has expired"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_multi_elements_refusals(
    client: httpx.Client, auth: dict[str, str], fields: dict[str, Any], words: str
) -> None:
    session_id = call(client, auth, f"{EDIT}/init-selection", {"video_url": VIDEO_URL})["session_id"]
    assert words in refusal(client, auth, EDIT, {**edit(session_id, "addition"), **fields})


def test_selection_sessions_belong_to_their_account_and_expire(
    backend: Backend, client: httpx.Client, auth: dict[str, str], other: dict[str, str]
) -> None:
    session_id = call(client, auth, f"{EDIT}/init-selection", {"video_url": VIDEO_URL})["session_id"]
    body = {"session_id": session_id, "frame_index": 0, "points": POINTS}
    expected = f"session_id: session {session_id} does not exist or has expired"
    assert refusal(client, other, f"{EDIT}/add-selection", body) == expected
    call(client, auth, f"{EDIT}/add-selection", body)
    backend.advance(24 * 3600 - 1)
    call(client, auth, f"{EDIT}/preview-selection", {"session_id": session_id})
    backend.advance(1)
    assert refusal(client, auth, f"{EDIT}/preview-selection", {"session_id": session_id}) == expected
    assert refusal(client, auth, EDIT, edit(session_id, "swap")) == expected


# -- image segmentation ----------------------------------------------------------------------------


def test_image_recognize_answers_typed_masks(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    data = call(client, auth, RECOGNIZE, {"image": image_b64(600, 400)})
    images = data["task_result"]["images"]
    assert [(i["type"], i["is_contain"]) for i in images] == [
        ("object_seg", True),
        ("head_seg", True),
        ("face_seg", True),
        ("cloth_seg", True),
    ]
    masks = {}
    for item in images:
        response = client.get(item["url"])
        assert response.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(response.content)) as png:
            assert (png.size, png.mode) == ((1024, 683), "L")
            masks[item["type"]] = png.tobytes()
    assert len(set(masks.values())) == 4  # each type its own mask
    # The head lies within the subject, the face within the head.
    for inner, outer in (("head_seg", "object_seg"), ("face_seg", "head_seg"), ("cloth_seg", "object_seg")):
        assert all(o or not i for i, o in zip(masks[inner], masks[outer], strict=True)), inner
    backend.advance(30 * 24 * 3600)  # results are kept 30 days
    assert client.get(images[0]["url"]).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "image is required"),
        ({"image": "small"}, "image: image is 200x200"),
        ({"image": "nope"}, "image: not a valid JPEG or PNG"),
    ],
    ids=str,
)
def test_image_recognize_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    if body.get("image") == "small":
        body = {"image": image_b64(200, 200)}
    assert words in refusal(client, auth, RECOGNIZE, body)


def test_a_url_image_gets_square_masks(client: httpx.Client, auth: dict[str, str]) -> None:
    [first, *_] = call(client, auth, RECOGNIZE, {"image": URL})["task_result"]["images"]
    assert Image.open(io.BytesIO(client.get(first["url"]).content)).size == (1024, 1024)


def test_session_files_are_gone_with_their_session(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    faces = call(client, auth, FACES, {"video_url": VIDEO_URL})
    url = faces["face_data"][0]["face_image"]
    assert client.get(url).status_code == 200
    assert client.get(url.replace("/0.png", "/1.png")).status_code == 404
    assert client.get(url.replace(faces["session_id"], "nope")).status_code == 404
    backend.advance(24 * 3600)
    assert client.get(url).status_code == 404


def test_tasks_and_sessions_show_in_lists_only_where_they_belong(
    backend: Backend, client: httpx.Client, auth: dict[str, str], session: str
) -> None:
    # A session is a record: never listed or queried as a task.
    assert client.get(f"{LIP_SYNC}/{session}", headers=auth).json()["code"] == 1203
    assert client.get(LIP_SYNC, headers=auth).json()["data"] == []
    task_id = created(client, auth, LIP_SYNC, lip_sync_body(session))["task_id"]
    assert [t["task_id"] for t in client.get(LIP_SYNC, headers=auth).json()["data"]] == [task_id]
    assert query(client, auth, LIP_SYNC, "lips-1")["task_id"] == task_id
