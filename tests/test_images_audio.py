"""The image, audio and general task endpoints (issue 16): each one's lifecycle end to end on the
manual clock with the official examples' bodies (create -> query -> succeed -> download), and
the refusals the official pages and capability maps give.

The official examples: the English API reference's cURL examples (omni image, text to audio,
video to audio), and for the pages that show a request table only (WHQ25/rawgenai,
docs/research/kling/*.md) a body written from that table's own format strings."""

from __future__ import annotations

import io
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from mockkling import Backend, catalogue

URL = "https://example.com/person.jpg"
OMNI = "/v1/images/omni-image"
MULTI = "/v1/images/multi-image2image"
IMAGES = "/v1/images/generations"
T2A = "/v1/audio/text-to-audio"
V2A = "/v1/audio/video-to-audio"
VOICES = "/v1/general/custom-voices"
SHOTS = "/v1/general/ai-multi-shot"
T2V = "/v1/videos/text2video"

# The English API reference, Omni-Image, "Create Task" cURL example, verbatim.
OMNI_EXAMPLE = {
    "model_name": "kling-image-o1",
    "prompt": "Merge all the people in the images into the <<<object_1>>> image",
    "element_list": [{"element_id": 829836802793406551}],
    "image_list": [
        {"image": "https://v1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-4.png"},
        {"image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/1.png"},
        {"image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/4.png"},
    ],
    "resolution": "2k",
    "n": 1,
    "aspect_ratio": "3:2",
}
# The English API reference, Text to Audio, "Create Task" cURL example, verbatim.
T2A_EXAMPLE = {
    "prompt": "Fireworks sound during Chinese New Year celebration",
    "duration": 3,
    "external_task_id": "",
    "callback_url": "",
}
# The English API reference, Video to Audio, "Create Task" cURL example, verbatim.
V2A_EXAMPLE = {
    "video_url": "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/20fps-7s.mov",
    "external_task_id": "",
    "callback_url": "",
}
# multi-image-to-image.md's table: subject_image_list `[{"subject_image": "image_url"}]`.
MULTI_EXAMPLE = {
    "model_name": "kling-v2",
    "prompt": "The two of them on a beach at sunset",
    "subject_image_list": [{"subject_image": URL}, {"subject_image": "https://example.com/dog.png"}],
    "scene_image": "https://example.com/beach.jpg",
    "style_image": "https://example.com/watercolour.jpg",
    "n": 2,
    "aspect_ratio": "1:1",
}


def created(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["code"], payload["message"]) == (0, "SUCCEED")
    data: dict[str, Any] = payload["data"]
    assert data["task_status"] == "submitted"
    return data


def query(client: httpx.Client, auth: dict[str, str], path: str, ident: str) -> dict[str, Any]:
    response = client.get(f"{path}/{ident}", headers=auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def refusal(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> str:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert (payload["code"], payload["data"]) == (1201, None), payload
    message: str = payload["message"]
    return message


def run(
    backend: Backend, client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Create, see it submitted, let it finish; the finished task as a query shows it."""
    task_id = created(client, auth, path, body)["task_id"]
    assert query(client, auth, path, task_id)["task_status"] == "submitted"
    backend.advance(10)
    task = query(client, auth, path, task_id)
    assert task["task_status"] == "succeed", task
    listed = client.get(path, headers=auth).json()["data"]
    assert listed[0]["task_id"] == task_id
    return task


def png(client: httpx.Client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def decoded_seconds(client: httpx.Client, url: str, content_type: str) -> tuple[float, int]:
    """(seconds of audio a real decoder gets from the file, its sample rate)."""
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate, stream.rate


def video_id(backend: Backend, client: httpx.Client, auth: dict[str, str], body: dict[str, Any]) -> str:
    task_id = created(client, auth, T2V, body)["task_id"]
    backend.advance(10)
    vid: str = query(client, auth, T2V, task_id)["task_result"]["videos"][0]["id"]
    return vid


# -- omni image ----------------------------------------------------------------------------------


def test_omni_image_official_example_runs_to_its_images(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task = run(backend, client, auth, OMNI, OMNI_EXAMPLE)
    assert task["watermark_info"] == {"enabled": False}
    (image,) = task["task_result"]["images"]
    assert image["index"] == 0
    width, height = png(client, image["url"]).size
    assert abs(width / height - 3 / 2) < 0.01
    # kling-image-o1 images: 2 units each on the mock's image scale.
    assert task["final_unit_deduction"] == "2"


def test_omni_image_v3_series_with_references(
    backend: Backend, client: httpx.Client, auth: dict[str, str], make_image: Any
) -> None:
    body = {
        "model_name": "kling-v3-omni",
        "prompt": "A storyboard of <<<image_1>>> in four panels",
        "image_list": [{"image": make_image(800, 400)}],
        "result_type": "series",
        "series_amount": 3,
        "resolution": "4k",
        "aspect_ratio": "auto",
    }
    task = run(backend, client, auth, OMNI, body)
    images = task["task_result"]["images"]
    assert [i["index"] for i in images] == [0, 1, 2]
    # auto: the reference image's shape.
    assert png(client, images[2]["url"]).size == (320, 160)
    auto = {**body, "series_amount": "auto"}
    assert (
        len(run(backend, client, auth, OMNI, auto)["task_result"]["images"]) == catalogue.SERIES_AUTO_IMAGES
    )


def test_omni_image_n_images_text_to_image(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    body = {"prompt": "a lighthouse", "n": 4, "aspect_ratio": "9:16"}
    images = run(backend, client, auth, OMNI, body)["task_result"]["images"]
    assert len(images) == 4
    assert png(client, images[3]["url"]).size == (180, 320)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        # capability map: kling-image-o1 text to image has no auto ratio (auto is the default).
        ({"prompt": "x"}, "kling-image-o1 does not support text to image with aspect_ratio auto"),
        ({"prompt": "x", "aspect_ratio": "1:1", "resolution": "4k"}, "does not support resolution 4k"),
        (
            {"prompt": "x", "aspect_ratio": "1:1", "result_type": "series", "image_list": [{"image": URL}]},
            "kling-image-o1 does not support result_type series",
        ),
        (
            {"model_name": "kling-v3-omni", "prompt": "x", "result_type": "series"},
            "result_type: series needs reference images",
        ),
        (
            {"prompt": "<<<image_2>>> on a boat", "image_list": [{"image": URL}]},
            "prompt: <<<image_2>>> names image_list item 2, but image_list has 1 item",
        ),
        ({"prompt": "<<<element_1>>> dancing", "aspect_ratio": "1:1"}, "but element_list has 0 items"),
        ({"prompt": "x", "element_list": [{"element_id": 42}]}, "element_list[0].element_id: element 42"),
        (
            {
                "prompt": "x",
                "image_list": [{"image": URL}] * 6,
                "element_list": [{"element_id": 829836802793406551}] * 5,
            },
            "may number 10 in all",
        ),
        ({"prompt": "x", "image_list": [{"image": "data:image/png;base64,AAAA"}]}, "image_list[0].image"),
    ],
)
def test_omni_image_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, OMNI, body)


def test_omni_image_schema_refusals_name_the_field(client: httpx.Client, auth: dict[str, str]) -> None:
    for body, field in [
        ({"prompt": "x", "model_name": "kling-v1"}, "model_name"),
        ({"prompt": "x", "n": 10}, "n"),
        ({"prompt": "x", "series_amount": 1}, "series_amount"),
        ({"prompt": "x", "image_list": [{"image": URL}] * 11}, "image_list"),
    ]:
        assert field in refusal(client, auth, OMNI, body)


# -- multi-image to image and image generation's current models ----------------------------------


def test_multi_image2image_table_example_runs(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task = run(backend, client, auth, MULTI, MULTI_EXAMPLE)
    images = task["task_result"]["images"]
    assert [i["index"] for i in images] == [0, 1]
    assert png(client, images[1]["url"]).size == (320, 320)
    assert task["final_unit_deduction"] == "8"  # 4 a multi-image reference image, 2 images
    assert task["watermark_info"] == {"enabled": False}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"subject_image_list": []}, "subject_image_list"),
        ({"subject_image_list": [{"subject_image": URL}] * 5}, "subject_image_list"),
        ({"subject_image_list": [{"subject_image": URL}], "aspect_ratio": "auto"}, "aspect_ratio"),
        ({"subject_image_list": [{"subject_image": URL}], "model_name": "kling-v1"}, "model_name"),
        ({"subject_image_list": [{"subject_image": "not base64!"}]}, "subject_image_list[0].subject_image"),
        ({"subject_image_list": [{"subject_image": URL}], "scene_image": "bad"}, "scene_image"),
    ],
)
def test_multi_image2image_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, MULTI, body)


def test_image_generation_serves_kling_v3(
    backend: Backend, client: httpx.Client, auth: dict[str, str], make_image: Any
) -> None:
    """Kling Image 3.0 on /v1/images/generations: text or one image, 2k either way, elements."""
    text = {"model_name": "kling-v3", "prompt": "a fox", "resolution": "2k", "n": 2, "aspect_ratio": "21:9"}
    assert len(run(backend, client, auth, IMAGES, text)["task_result"]["images"]) == 2
    with_image = {
        "model_name": "kling-v3",
        "prompt": "the fox in winter",
        "image": make_image(600, 600),
        "resolution": "2k",
        "element_list": [{"element_id": "829836802793406552"}],
    }
    run(backend, client, auth, IMAGES, with_image)
    assert "does not support element_list" in refusal(
        client, auth, IMAGES, {"prompt": "x", "element_list": [{"element_id": 829836802793406551}]}
    )
    assert "image_reference subject" in refusal(
        client, auth, IMAGES, {**with_image, "image_reference": "subject", "element_list": None}
    )
    assert "2k is for text to image only" in refusal(
        client, auth, IMAGES, {"model_name": "kling-v2", "prompt": "x", "image": URL, "resolution": "2k"}
    )


# -- text to audio, video to audio ---------------------------------------------------------------


def test_text_to_audio_official_example_serves_real_mp3_and_wav(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task = run(backend, client, auth, T2A, T2A_EXAMPLE)
    assert "task_info" in task and "external_task_id" not in task["task_info"]
    assert "watermark_info" not in task
    assert task["final_unit_deduction"] == "0.25"
    (clip,) = task["task_result"]["audios"]
    assert clip["id"] == f"{task['task_id']}-a0"
    assert (clip["duration_mp3"], clip["duration_wav"]) == ("3.0", "3.0")
    assert decoded_seconds(client, clip["url_mp3"], "audio/mpeg") == (pytest.approx(3.0), 48000)
    assert decoded_seconds(client, clip["url_wav"], "audio/wav") == (pytest.approx(3.0), 16000)


@pytest.mark.parametrize(
    ("duration", "mp3", "wav"), [(5.5, "5.52", "5.5"), ("7.3", "7.32", "7.3"), (10, "10.008", "10.0")]
)
def test_text_to_audio_lasts_what_was_asked(
    backend: Backend, client: httpx.Client, auth: dict[str, str], duration: Any, mp3: str, wav: str
) -> None:
    """The WAV lasts exactly the duration; the MP3 whole 24 ms frames, never less."""
    clip = run(backend, client, auth, T2A, {"prompt": "rain", "duration": duration})["task_result"]["audios"][
        0
    ]
    assert (clip["duration_mp3"], clip["duration_wav"]) == (mp3, wav)
    assert decoded_seconds(client, clip["url_mp3"], "audio/mpeg")[0] == pytest.approx(float(mp3))
    assert decoded_seconds(client, clip["url_wav"], "audio/wav")[0] == pytest.approx(float(wav))


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        (2.9, "duration"),
        (10.1, "duration"),
        (5.25, "at most one decimal"),
        ("11", "outside 3.0 to 10.0"),
        ("five", "duration"),
    ],
)
def test_text_to_audio_duration_refusals(
    client: httpx.Client, auth: dict[str, str], duration: Any, words: str
) -> None:
    assert words in refusal(client, auth, T2A, {"prompt": "rain", "duration": duration})


def test_text_to_audio_prompt_is_at_most_200_characters(client: httpx.Client, auth: dict[str, str]) -> None:
    assert "prompt" in refusal(client, auth, T2A, {"prompt": "x" * 201, "duration": 3})


def test_video_to_audio_official_example_returns_video_and_audio(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task = run(backend, client, auth, V2A, V2A_EXAMPLE)
    result = task["task_result"]
    (video,) = result["videos"]
    (clip,) = result["audios"]
    assert video["duration"] == "5" and clip["duration_wav"] == "5.0"
    assert client.get(video["url"]).headers["content-type"] == "video/mp4"
    assert decoded_seconds(client, clip["url_wav"], "audio/wav")[0] == pytest.approx(5.0)


def test_video_to_audio_from_a_kling_video_shows_its_parent(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    vid = video_id(backend, client, auth, {"prompt": "a drum solo", "duration": "10"})
    # The ComfyUI node sends both fields, the unused one empty (see test_quirks.py).
    body = {
        "video_id": vid,
        "video_url": "",
        "sound_effect_prompt": "drums",
        "bgm_prompt": "",
        "asmr_mode": True,
    }
    task = run(backend, client, auth, V2A, body)
    assert task["task_info"]["parent_video"]["id"] == vid
    assert task["task_info"]["parent_video"]["duration"] == "10"
    clip = task["task_result"]["audios"][0]
    assert decoded_seconds(client, clip["url_mp3"], "audio/mpeg")[0] == pytest.approx(10.008)


@pytest.mark.parametrize("by", ["video_id", "video_url"])
def test_a_kling_video_is_known_by_its_id_and_by_its_url(
    backend: Backend, client: httpx.Client, auth: dict[str, str], by: str
) -> None:
    """Video-to-audio and lip sync: a result URL of the mock's own is the video it names (its
    length and parent), as its id is; only other URLs are taken to last 5 s."""
    task_id = created(client, auth, T2V, {"prompt": "a drum solo", "duration": "10"})["task_id"]
    backend.advance(10)
    (video,) = query(client, auth, T2V, task_id)["task_result"]["videos"]
    name = video["id"] if by == "video_id" else video["url"]
    audio = run(backend, client, auth, V2A, {by: name})
    assert audio["task_info"]["parent_video"]["id"] == video["id"]
    assert audio["task_result"]["audios"][0]["duration_wav"] == "10.0"
    lip_sync = {"input": {by: name, "mode": "text2video", "text": "hello", "voice_id": "genshin_vindi2"}}
    synced = run(backend, client, auth, "/v1/videos/lip-sync", lip_sync)
    assert synced["task_result"]["videos"][0]["duration"] == "10"
    assert synced["task_info"]["parent_video"]["id"] == video["id"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "send exactly one of them"),
        ({"video_id": "a", "video_url": URL}, "send exactly one of them"),
        ({"video_url": "", "video_id": None}, "send exactly one of them"),
        ({"video_url": "ftp://x/y.mp4"}, "video_url must be an http(s) URL"),
        ({"video_url": "https://x/y.avi"}, ".avi files are not supported"),
        ({"video_url": "http://[::1/v.mp4"}, "video_url is not a valid URL"),
        ({"video_id": "no-such-video-0"}, "video_id: video no-such-video-0 does not exist"),
        ({"video_url": URL.replace(".jpg", ".mp4"), "bgm_prompt": "x" * 201}, "bgm_prompt"),
    ],
)
def test_video_to_audio_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, V2A, body)


def test_video_to_audio_takes_videos_of_3_to_20_seconds(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    vid = video_id(backend, client, auth, {"prompt": "x", "model_name": "kling-v1", "duration": "10"})
    long_id = created(client, auth, "/v1/videos/video-extend", {"video_id": vid})["task_id"]
    for _ in range(2):
        backend.advance(10)
        extended = query(client, auth, "/v1/videos/video-extend", long_id)["task_result"]["videos"][0]["id"]
        long_id = created(client, auth, "/v1/videos/video-extend", {"video_id": extended})["task_id"]
    backend.advance(10)
    twenty_five = query(client, auth, "/v1/videos/video-extend", long_id)["task_result"]["videos"][0]
    assert twenty_five["duration"] == "25"
    assert "video_id: the video lasts 25s; it must last 3 to 20 seconds" in refusal(
        client, auth, V2A, {"video_id": twenty_five["id"]}
    )


# -- custom voices (a task) and AI multi-shot ----------------------------------------------------


def test_custom_voice_from_a_file_runs_to_its_voice(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    body = {
        "voice_name": "Narrator",
        "voice_url": "https://example.com/me.mp3",
        "external_task_id": "voice-1",
    }
    task = run(backend, client, auth, VOICES, body)
    (voice,) = task["task_result"]["voices"]
    assert voice["voice_id"] == task["task_id"] and voice["voice_name"] == "Narrator"
    assert voice["owned_by"].isdigit() and voice["owned_by"] != "kling"
    assert query(client, auth, VOICES, "voice-1")["task_id"] == task["task_id"]
    assert decoded_seconds(client, voice["trial_url"], "audio/mpeg")[0] == pytest.approx(3.0)
    assert task["final_unit_deduction"] == "0.05"


def test_custom_voice_from_a_video_needs_a_qualifying_video(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    sounded = video_id(
        backend,
        client,
        auth,
        {"prompt": "a speech", "model_name": "kling-v2-6", "mode": "pro", "sound": "on"},
    )
    run(backend, client, auth, VOICES, {"voice_name": "From video", "video_id": sounded})
    silent = video_id(
        backend, client, auth, {"prompt": "a speech", "model_name": "kling-v2-6", "mode": "pro"}
    )
    assert 'cloned only from videos made by kling-v2-6 with sound "on"' in refusal(
        client, auth, VOICES, {"voice_name": "x", "video_id": silent}
    )
    lip_sync = created(
        client,
        auth,
        "/v1/videos/lip-sync",
        {
            "input": {
                "video_url": "https://e.com/v.mp4",
                "mode": "text2video",
                "text": "hi",
                "voice_id": "ai_kaiya",
            }
        },
    )["task_id"]
    backend.advance(10)
    lip_video = query(client, auth, "/v1/videos/lip-sync", lip_sync)["task_result"]["videos"][0]["id"]
    run(backend, client, auth, VOICES, {"voice_name": "Lips", "video_id": lip_video})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"voice_name": "x"}, "send exactly one of them"),
        ({"voice_name": "x", "voice_url": URL.replace(".jpg", ".mp3"), "video_id": "v"}, "send exactly one"),
        ({"voice_name": "x", "voice_url": "https://e.com/a.ogg"}, ".ogg files are not supported"),
        ({"voice_name": "x" * 21, "voice_url": "https://e.com/a.wav"}, "voice_name"),
        ({"voice_name": "x", "video_id": "nope-0"}, "video_id: video nope-0 does not exist"),
    ],
)
def test_custom_voice_refusals(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], words: str
) -> None:
    assert words in refusal(client, auth, VOICES, body)


def test_ai_multi_shot_runs_to_three_views(
    backend: Backend, client: httpx.Client, auth: dict[str, str], make_image: Any
) -> None:
    body = {"element_frontal_image": make_image(300, 600), "external_task_id": ""}
    task = run(backend, client, auth, SHOTS, body)
    (item,) = task["task_result"]["images"]
    # Both shapes the page gives: url (query) and url_1..url_3 (list).
    assert item["url"] == item["url_1"]
    views = [png(client, item[f"url_{n}"]) for n in (1, 2, 3)]
    assert {view.size for view in views} == {(160, 320)}
    assert task["final_unit_deduction"] == "5"
    assert "element_frontal_image" in refusal(client, auth, SHOTS, {"element_frontal_image": "nope"})
