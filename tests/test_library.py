"""The voice and element libraries and speech (issue 16): text to speech answered at once, the
official voices and elements, custom voices and elements made, used wherever an id is taken,
deleted, and kept to their account."""

from __future__ import annotations

import io
from typing import Any

import av
import httpx
import pytest

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Fate, catalogue, make_jwt

TTS = "/v1/audio/tts"
VOICES = "/v1/general/custom-voices"
PRESET_VOICES = "/v1/general/presets-voices"
DELETE_VOICES = "/v1/general/delete-voices"
ELEMENTS = "/v1/general/custom-elements"
PRESET_ELEMENTS = "/v1/general/presets-elements"
DELETE_ELEMENTS = "/v1/general/delete-elements"
OMNI = "/v1/images/omni-image"
I2V = "/v1/videos/image2video"
URL = "https://example.com/person.jpg"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["code"], payload["message"]) == (0, "SUCCEED")
    return payload["data"]


def refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    payload = response.json()
    assert (payload["code"], payload["data"]) == (1201, None), payload
    message: str = payload["message"]
    return message


@pytest.fixture
def other(backend: Backend) -> dict[str, str]:
    """A second account's credentials."""
    backend.add_account("other-ak", "other-secret-key-for-tests")
    return {"Authorization": f"Bearer {make_jwt('other-ak', 'other-secret-key-for-tests')}"}


def decoded_seconds(client: httpx.Client, url: str) -> float:
    response = client.get(url)
    assert response.status_code == 200, response.text
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def custom_voice(backend: Backend, client: httpx.Client, auth: dict[str, str], name: str = "Mine") -> str:
    body = {"voice_name": name, "voice_url": "https://example.com/sample.wav"}
    task_id: str = ok(client.post(VOICES, json=body, headers=auth))["task_id"]
    backend.advance(10)
    return task_id


ELEMENT = {
    # custom-elements.md's table, in its own format strings.
    "element_name": "Captain",
    "element_description": "A ship captain in a navy coat",
    "element_frontal_image": URL,
    "element_refer_list": [
        {"image_url": "https://example.com/side.jpg"},
        {"image_url": "https://example.com/back.jpg"},
    ],
    "tag_list": [{"tag_id": "o_102"}],
}


# -- text to speech -------------------------------------------------------------------------------


def test_speech_answers_with_its_clip_at_once(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    # tts.md's fields; voice and language as Kuaishou's own client pairs them.
    body = {"text": "Welcome to the show, everyone.", "voice_id": "genshin_vindi2", "voice_language": "en"}
    data = ok(client.post(TTS, json=body, headers=auth))
    assert data["task_status"] == "succeed" and data["task_status_msg"] == ""
    assert "task_info" not in data and data["final_unit_deduction"] == "0.05"
    (clip,) = data["task_result"]["audios"]
    assert set(clip) == {"id", "url", "duration"}
    # 30 characters of English at 14 a second, speed 1: 2.1 s, in whole 24 ms MP3 frames.
    assert clip["duration"] == "2.112"
    assert decoded_seconds(client, clip["url"]) == pytest.approx(2.112)
    # No task route shows it: there is no query endpoint for speech.
    assert client.get(f"/v1/audio/text-to-audio/{data['task_id']}", headers=auth).status_code == 404


def test_a_speech_clip_is_an_audio_id_other_endpoints_take(
    backend: Backend, client: httpx.Client, auth: dict[str, str], other: dict[str, str]
) -> None:
    data = ok(client.post(TTS, json={"text": "你好", "voice_id": "ai_shatang"}, headers=auth))
    audio_id = data["task_result"]["audios"][0]["id"]
    account = backend.authenticate(auth["Authorization"])
    assert backend.find_audio(account, audio_id) is not None
    assert backend.find_audio(backend.authenticate(other["Authorization"]), audio_id) is None


@pytest.mark.parametrize(
    ("speed", "seconds"),
    [(None, "2.016"), (2.0, "1.008"), (3.5, "1.008"), (0.1, "2.52"), ("1.0", "2.016"), (0, "2.52")],
)
def test_speech_speed_outside_the_range_is_brought_into_it(
    client: httpx.Client, auth: dict[str, str], speed: Any, seconds: str
) -> None:
    """tts.md: 0.8 to 2.0, to one decimal; the English reference: out-of-range values are
    "automatically rounded", not refused. 8 Chinese characters at 4 a second: 2 s at speed 1."""
    body: dict[str, Any] = {"text": "八个汉字八个汉字", "voice_id": "ai_shatang", "voice_language": "zh"}
    if speed is not None:
        body["voice_speed"] = speed
    assert ok(client.post(TTS, json=body, headers=auth))["task_result"]["audios"][0]["duration"] == seconds


def test_speech_refusals_use_the_official_wording(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    # An English-only voice asked to speak Chinese, an unknown voice, and a custom voice (the
    # English reference: text to speech "only supports official voices").
    assert refused(
        client.post(TTS, json={"text": "x", "voice_id": "AOT", "voice_language": "zh"}, headers=auth)
    ) == ("Voice id not found")
    assert (
        refused(client.post(TTS, json={"text": "x", "voice_id": "nobody"}, headers=auth))
        == "Voice id not found"
    )
    mine = custom_voice(backend, client, auth)
    assert (
        refused(client.post(TTS, json={"text": "x", "voice_id": mine}, headers=auth)) == "Voice id not found"
    )
    assert "text" in refused(client.post(TTS, json={"text": "x" * 1001, "voice_id": "AOT"}, headers=auth))


def test_speech_obeys_fates_and_fail_words(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.fates.add(Fate("failed", message="risk control"), action=catalogue.TTS)
    data = ok(
        client.post(TTS, json={"text": "hello", "voice_id": "AOT", "voice_language": "en"}, headers=auth)
    )
    assert (data["task_status"], data["task_status_msg"]) == ("failed", "risk control")
    assert "task_result" not in data and data["final_unit_deduction"] == "0"


def test_a_fate_for_the_next_task_waits_for_a_task_a_client_polls(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """Speech is answered finished: a rule that names no endpoint is not used up by it, and a
    status to hold is refused for it (the client could never see the clip)."""
    backend.fates.add(Fate("failed", message="meant for the video"))
    speech = {"text": "hello", "voice_id": "AOT", "voice_language": "en"}
    assert ok(client.post(TTS, json=speech, headers=auth))["task_status"] == "succeed"
    task_id = ok(client.post("/v1/videos/text2video", json={"prompt": "a"}, headers=auth))["task_id"]
    video = ok(client.get(f"/v1/videos/text2video/{task_id}", headers=auth))
    assert (video["task_status"], video["task_status_msg"]) == ("failed", "meant for the video")
    held = client.post(
        "/__mockkling/fates", json={"fate": {"status": "processing", "seconds": 30}, "action": "tts"}
    )
    assert held.status_code == 400 and "succeed or failed" in held.json()["message"]
    assert ok(client.post(TTS, json=speech, headers=auth))["task_status"] == "succeed"


# -- voices ---------------------------------------------------------------------------------------


def test_preset_voices_are_listed_as_tasks_with_trial_clips(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    first = ok(client.get(PRESET_VOICES, params={"pageNum": 1, "pageSize": 10}, headers=auth))
    assert len(first) == 10
    item = first[0]
    assert item["task_status"] == "succeed" and "task_info" not in item
    (voice,) = item["task_result"]["voices"]
    assert voice == {
        "voice_id": "genshin_vindi2",
        "voice_name": "Sunny",
        "trial_url": "http://mock/media/voices/genshin_vindi2.mp3",
        "owned_by": "kling",
    }
    assert decoded_seconds(client, voice["trial_url"]) == pytest.approx(catalogue.TRIAL_SECONDS)
    everyone = ok(client.get(PRESET_VOICES, params={"pageSize": 500}, headers=auth))
    assert {i["task_result"]["voices"][0]["voice_id"] for i in everyone} == catalogue.PRESET_VOICE_IDS
    assert (
        ok(client.get(PRESET_VOICES, params={"pageNum": 2, "pageSize": 40}, headers=auth)) == everyone[40:80]
    )
    assert "pageSize" in refused(client.get(PRESET_VOICES, params={"pageSize": 501}, headers=auth))


def test_custom_voice_used_then_deleted(
    backend: Backend, client: httpx.Client, auth: dict[str, str], other: dict[str, str]
) -> None:
    voice_id = custom_voice(backend, client, auth)
    i2v = {
        "model_name": "kling-v2-6",
        "mode": "pro",
        "sound": "on",
        "image": URL,
        "prompt": "<<<voice_1>>> says hello",
        "voice_list": [{"voice_id": voice_id}],
    }
    ok(client.post(I2V, json=i2v, headers=auth))
    # Another account cannot use it, nor delete it: both as if it did not exist.
    assert f"voice {voice_id} does not exist" in refused(client.post(I2V, json=i2v, headers=other))
    assert "does not exist" in refused(client.post(DELETE_VOICES, json={"voice_id": voice_id}, headers=other))

    deleted = ok(client.post(DELETE_VOICES, json={"voice_id": voice_id}, headers=auth))
    assert set(deleted) == {"task_id", "task_status"} and deleted["task_status"] == "succeed"
    assert f"voice {voice_id} does not exist" in refused(client.post(I2V, json=i2v, headers=auth))
    assert client.get(f"{VOICES}/{voice_id}", headers=auth).status_code == 404
    assert voice_id not in {t["task_id"] for t in ok(client.get(VOICES, headers=auth))}
    assert client.get(f"/media/voices/{voice_id}.mp3").status_code == 404
    assert "does not exist" in refused(client.post(DELETE_VOICES, json={"voice_id": voice_id}, headers=auth))


def test_custom_voice_list_pages_skip_deleted_voices(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    ids = [custom_voice(backend, client, auth, f"v{n}") for n in range(5)]
    ok(client.post(DELETE_VOICES, json={"voice_id": ids[3]}, headers=auth))
    page = ok(client.get(VOICES, params={"pageNum": 1, "pageSize": 2}, headers=auth))
    assert [t["task_id"] for t in page] == [ids[4], ids[2]]
    page = ok(client.get(VOICES, params={"pageNum": 2, "pageSize": 2}, headers=auth))
    assert [t["task_id"] for t in page] == [ids[1], ids[0]]


def test_official_and_unfinished_voices_cannot_be_deleted(client: httpx.Client, auth: dict[str, str]) -> None:
    assert "only custom voices can be deleted" in refused(
        client.post(DELETE_VOICES, json={"voice_id": "genshin_vindi2"}, headers=auth)
    )
    pending = ok(
        client.post(VOICES, json={"voice_name": "p", "voice_url": "https://e.com/a.mp3"}, headers=auth)
    )
    assert "does not exist" in refused(
        client.post(DELETE_VOICES, json={"voice_id": pending["task_id"]}, headers=auth)
    )


# -- elements -------------------------------------------------------------------------------------


def test_custom_element_made_at_once_used_and_deleted(
    backend: Backend, client: httpx.Client, auth: dict[str, str], other: dict[str, str], make_image: Any
) -> None:
    body = {
        **ELEMENT,
        "element_refer_list": [{"image_url": make_image(400, 300)}, *ELEMENT["element_refer_list"]],
    }
    element = ok(client.post(ELEMENTS, json=body, headers=auth))
    element_id = element["element_id"]
    assert isinstance(element_id, int) and len(str(element_id)) == 18
    assert element["element_frontal_image"] == URL
    served, *urls = (item["image_url"] for item in element["element_refer_list"])
    assert urls == [item["image_url"] for item in ELEMENT["element_refer_list"]]
    # The image sent as Base64 is served by the mock, at its shape.
    response = client.get(served)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert client.get(f"/media/elements/{element_id}/0.png").status_code == 404  # a URL: not ours
    assert element["tag_list"] == [{"id": "o_102", "name": "人物", "description": "人物角色"}]
    assert element["owned_by"].isdigit()

    omni = {
        "prompt": "<<<element_1>>> at sea",
        "element_list": [{"element_id": element_id}],
        "aspect_ratio": "1:1",
    }
    ok(client.post(OMNI, json=omni, headers=auth))
    ok(client.post(OMNI, json={**omni, "element_list": [{"element_id": str(element_id)}]}, headers=auth))
    assert ok(client.get(ELEMENTS, headers=auth)) == [element]
    assert ok(client.get(ELEMENTS, headers=other)) == []
    assert "does not exist" in refused(client.post(OMNI, json=omni, headers=other))

    deleted = ok(client.post(DELETE_ELEMENTS, json={"element_id": str(element_id)}, headers=auth))
    assert deleted["task_status"] == "succeed"
    assert f"element {element_id} does not exist" in refused(client.post(OMNI, json=omni, headers=auth))
    assert ok(client.get(ELEMENTS, headers=auth)) == []
    assert client.get(served).status_code == 404
    assert "does not exist" in refused(
        client.post(DELETE_ELEMENTS, json={"element_id": element_id}, headers=auth)
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"element_name": "x" * 21}, "element_name"),
        ({"element_description": "x" * 101}, "element_description"),
        ({"element_refer_list": []}, "element_refer_list"),
        ({"element_refer_list": [{"image_url": URL}] * 4}, "element_refer_list"),
        ({"element_frontal_image": "data:image/png;base64,AAAA"}, "element_frontal_image"),
        ({"tag_list": [{"tag_id": "o_999"}]}, "tag_list[0].tag_id: unknown tag o_999"),
    ],
)
def test_custom_element_refusals(
    client: httpx.Client, auth: dict[str, str], change: dict[str, Any], words: str
) -> None:
    assert words in refused(client.post(ELEMENTS, json={**ELEMENT, **change}, headers=auth))
    assert ok(client.get(ELEMENTS, headers=auth)) == []


def test_custom_elements_list_newest_first_by_page(client: httpx.Client, auth: dict[str, str]) -> None:
    ids = [
        ok(client.post(ELEMENTS, json={**ELEMENT, "element_name": f"e{n}"}, headers=auth))["element_id"]
        for n in range(3)
    ]
    page = ok(client.get(ELEMENTS, params={"pageNum": 1, "pageSize": 2}, headers=auth))
    assert [e["element_id"] for e in page] == [ids[2], ids[1]]
    assert [
        e["element_id"] for e in ok(client.get(ELEMENTS, params={"pageNum": 2, "pageSize": 2}, headers=auth))
    ] == [ids[0]]


def test_preset_elements_and_their_images(client: httpx.Client, auth: dict[str, str]) -> None:
    elements = ok(client.get(PRESET_ELEMENTS, headers=auth))
    assert {str(e["element_id"]) for e in elements} == catalogue.PRESET_ELEMENT_IDS
    first = elements[0]
    assert (first["owned_by"], first["final_unit_deduction"]) == ("kling", "0")
    assert len(first["element_refer_list"]) == 3
    for url in [first["element_frontal_image"], *(i["image_url"] for i in first["element_refer_list"])]:
        response = client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert "only custom elements can be deleted" in refused(
        client.post(DELETE_ELEMENTS, json={"element_id": first["element_id"]}, headers=auth)
    )


def test_library_records_survive_a_restart_on_a_state_file(tmp_path: Any) -> None:
    """Custom elements and deletions live in the task store, so a state file keeps them."""
    from mockkling import Config, create_app
    from mockkling.transport import SyncASGITransport

    headers = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    config = Config(state_file=str(tmp_path / "state.db"))
    first = Backend(config)
    with httpx.Client(transport=SyncASGITransport(create_app(first)), base_url="http://mock") as client:
        kept = ok(client.post(ELEMENTS, json=ELEMENT, headers=headers))["element_id"]
        gone = ok(client.post(ELEMENTS, json={**ELEMENT, "element_name": "gone"}, headers=headers))[
            "element_id"
        ]
        ok(client.post(DELETE_ELEMENTS, json={"element_id": gone}, headers=headers))
    first.close()
    second = Backend(config)
    with httpx.Client(transport=SyncASGITransport(create_app(second)), base_url="http://mock") as client:
        assert [e["element_id"] for e in ok(client.get(ELEMENTS, headers=headers))] == [kept]
    second.close()
