"""Shape fixes on existing endpoints (issue 16, point 4), and what real clients send that the
real service takes (point 5). Each quirk's test names the client file and function, or the
official page, it comes from."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockkling import Backend

URL = "https://example.com/person.jpg"
T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
IMAGES = "/v1/images/generations"
OMNI = "/v1/images/omni-image"
T2A = "/v1/audio/text-to-audio"
V2A = "/v1/audio/video-to-audio"
TTS = "/v1/audio/tts"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["code"] == 0, payload
    return payload["data"]


def refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["code"] == 1201, payload
    message: str = payload["message"]
    return message


# -- point 4: shape fixes --------------------------------------------------------------------------


def test_empty_external_task_id_is_none(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    """The official examples send ``"external_task_id": ""`` (English reference, text to audio
    and video to audio cURL examples): accepted, any number of times, and treated as none."""
    for path, body in [(T2V, {"prompt": "a"}), (I2V, {"image": URL}), (IMAGES, {"prompt": "a"})]:
        first = ok(client.post(path, json={**body, "external_task_id": ""}, headers=auth))
        second = ok(client.post(path, json={**body, "external_task_id": ""}, headers=auth))
        assert first["task_info"] == second["task_info"] == {}
        assert client.get(f"{path}/{first['task_id']}", headers=auth).json()["data"]["task_info"] == {}
        stored = backend.tasks.get(first["task_id"])
        assert stored is not None and stored.external_task_id is None


def test_watermark_info_is_in_query_and_list_answers(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """Every page whose request takes watermark_info shows ``data.watermark_info: {enabled}``
    in query and list answers; the audio and general pages take none and show none."""
    marked = ok(client.post(T2V, json={"prompt": "a", "watermark_info": {"enabled": True}}, headers=auth))
    plain = ok(client.post(IMAGES, json={"prompt": "a"}, headers=auth))
    sound = ok(client.post(T2A, json={"prompt": "a", "duration": 3}, headers=auth))
    backend.advance(10)
    task = ok(client.get(f"{T2V}/{marked['task_id']}", headers=auth))
    assert task["watermark_info"] == {"enabled": True}
    assert task["task_result"]["videos"][0]["watermark_url"]
    assert ok(client.get(T2V, headers=auth))[0]["watermark_info"] == {"enabled": True}
    assert ok(client.get(f"{IMAGES}/{plain['task_id']}", headers=auth))["watermark_info"] == {
        "enabled": False
    }
    assert ok(client.get(IMAGES, headers=auth))[0]["watermark_info"] == {"enabled": False}
    assert "watermark_info" not in ok(client.get(f"{T2A}/{sound['task_id']}", headers=auth))


def test_a_voice_needs_sound_on(client: httpx.Client, auth: dict[str, str]) -> None:
    body = {"model_name": "kling-v2-6", "mode": "pro", "image": URL, "voice_list": [{"voice_id": "ai_kaiya"}]}
    assert refused(client.post(I2V, json=body, headers=auth)) == 'voice_list: voices need sound "on"'
    assert "voices need sound" in refused(client.post(I2V, json={**body, "sound": "off"}, headers=auth))
    ok(client.post(I2V, json={**body, "sound": "on"}, headers=auth))


def test_kling_v2_6_sound_is_pro_only(client: httpx.Client, auth: dict[str, str]) -> None:
    body = {"model_name": "kling-v2-6", "prompt": "waves", "sound": "on"}
    assert "kling-v2-6 does not support sound with mode std" in refused(
        client.post(T2V, json=body, headers=auth)
    )
    ok(client.post(T2V, json={**body, "mode": "pro"}, headers=auth))
    ok(client.post(T2V, json={**body, "sound": "off"}, headers=auth))  # std, silent: fine


def test_kling_v2_6_start_and_end_frames_are_silent_only(client: httpx.Client, auth: dict[str, str]) -> None:
    body = {"model_name": "kling-v2-6", "mode": "pro", "image": URL, "image_tail": URL}
    ok(client.post(I2V, json=body, headers=auth))
    assert "makes start and end frame videos (image + image_tail) without sound" in refused(
        client.post(I2V, json={**body, "sound": "on"}, headers=auth)
    )
    ok(client.post(I2V, json={**body, "image_tail": None, "sound": "on"}, headers=auth))


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (("DELETE", T2V), 404, 1202),  # invalid request method: 404 in the official table
        (("PUT", "/v1/audio/tts"), 404, 1202),
        (("GET", "/v1/nothing/here"), 404, 1202),
        (("GET", f"{T2V}/no-such-task"), 404, 1203),
        (("POST", T2V), 400, 1201),
    ],
)
def test_business_codes_answer_with_the_official_http_status(
    client: httpx.Client, auth: dict[str, str], request_: tuple[str, str], status: int, code: int
) -> None:
    from mockkling.errors import BUSINESS_CODES

    method, path = request_
    response = client.request(method, path, headers=auth, json={} if method in ("POST", "PUT") else None)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert BUSINESS_CODES[code].http_status == status


# -- point 5: what real clients send ---------------------------------------------------------------


def test_empty_callback_url_is_none(client: httpx.Client, auth: dict[str, str]) -> None:
    """Official examples (text to audio, video to audio cURL) send ``"callback_url": ""``."""
    ok(client.post(T2A, json={"prompt": "rain", "duration": 3.0, "callback_url": ""}, headers=auth))
    ok(client.post(T2V, json={"prompt": "rain", "callback_url": ""}, headers=auth))


def test_comfyui_image_generator_sends_unset_fields_as_null(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """KwaiVGI/ComfyUI-KLingAI-API, py/nodes.py ImageGeneratorNode.generate sets every field
    (``image = _image_to_base64(None)`` is None; kling-v2-1 sets both fidelities to None) and
    py/api/prediction.py Prediction.to_dict sends each attribute set, None included."""
    body = {
        "model_name": "kling-v2-1",
        "prompt": "a red kite",
        "negative_prompt": "",
        "resolution": None,
        "image": None,
        "image_fidelity": None,
        "aspect_ratio": "16:9",
        "n": 1,
        "human_fidelity": None,
    }
    ok(client.post(IMAGES, json=body, headers=auth))
    ok(
        client.post(
            IMAGES, json={**body, "model_name": "kling-v1", "n": None, "aspect_ratio": None}, headers=auth
        )
    )


def test_comfyui_image2video_sends_an_unset_end_frame_as_null(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """KwaiVGI/ComfyUI-KLingAI-API, py/nodes.py Image2VideoNode.generate:
    ``generator.image_tail = _image_to_base64(image_tail)`` is None when nothing is connected."""
    body = {"model_name": "kling-v1-6", "image": URL, "image_tail": None, "prompt": "", "negative_prompt": ""}
    ok(client.post(I2V, json={**body, "cfg_scale": 0.5, "mode": "std", "duration": "5"}, headers=auth))


def test_comfyui_video2audio_sends_the_unused_source_empty(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """KwaiVGI/ComfyUI-KLingAI-API, py/nodes.py Video2AudioNode.generate sets both
    ``video_id`` and ``video_url`` (STRING inputs defaulting to ""), the prompts ("" by
    default) and ``asmr_mode`` (False: the input is misnamed ``asmr_mod``)."""
    body = {
        "video_id": "",
        "video_url": "https://example.com/clip.mp4",
        "sound_effect_prompt": "",
        "bgm_prompt": "",
        "asmr_mode": False,
    }
    ok(client.post(V2A, json=body, headers=auth))


def test_comfyui_text_to_audio_sends_a_float_duration(client: httpx.Client, auth: dict[str, str]) -> None:
    """KwaiVGI/ComfyUI-KLingAI-API, py/nodes.py TextToAudioNode: ``duration`` is a FLOAT input
    (3.0 to 10.0, step 0.1), sent as a float; the official example sends an integer, 3."""
    for duration in (3.0, 6.7, 3):
        ok(client.post(T2A, json={"prompt": "a door creaks", "duration": duration}, headers=auth))


def test_text_to_audio_duration_as_a_numeric_string(client: httpx.Client, auth: dict[str, str]) -> None:
    """Copies of the official reference type ``duration`` as a string (docs.kkiai.com and
    docs.fast-token.com, Text to Audio: "duration string Required"), the page as a float: both."""
    task = ok(client.post(T2A, json={"prompt": "thunder", "duration": "4.5"}, headers=auth))
    assert task["task_status"] == "submitted"


def test_tts_voice_speed_as_a_numeric_string(client: httpx.Client, auth: dict[str, str]) -> None:
    """The copied official TTS example sends ``"voice_speed": "1.0"`` (docs.kkiai.com, Text to
    Speech, Request Example); Kuaishou's lip-sync node sends a FLOAT (py/nodes.py
    LipSyncTextInputNode). Both are spoken; voice_language left out is zh, the page's default."""
    body = {"text": "Describe what you see in the image.", "voice_id": "genshin_vindi2", "voice_speed": "1.0"}
    assert ok(client.post(TTS, json=body, headers=auth))["task_status"] == "succeed"
    assert ok(client.post(TTS, json={**body, "voice_speed": 1.0}, headers=auth))["task_status"] == "succeed"
    # Strings Python's float() would read, but that are no decimal number, are refused alike.
    for wrong in ("fast", "nan", "", "1_5", "Infinity", "-inf", " 1.5 ", "1e0"):
        assert "voice_speed must" in refused(
            client.post(TTS, json={**body, "voice_speed": wrong}, headers=auth)
        )
    audio = {"prompt": "rain", "duration": "1_0"}
    assert "duration must be a number" in refused(
        client.post("/v1/audio/text-to-audio", json=audio, headers=auth)
    )


def test_new_api_sends_model_beside_model_name_and_default_cfg_scale(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """QuantumNous/new-api, relay/channel/task/kling/adaptor.go convertToRequestPayload: both
    ``model_name`` and ``model`` ("double writing improves compatibility"), ``cfg_scale`` 0.5
    whatever the model, mode "std", ``duration`` "%d", and empty callback and external ids
    (omitempty drops them, metadata may bring them back). Unknown ``model`` is ignored."""
    body = {
        "prompt": "a paper boat",
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "1:1",
        "model_name": "kling-v2-5-turbo",
        "model": "kling-v2-5-turbo",
        "cfg_scale": 0.5,
        "callback_url": "",
        "external_task_id": "",
    }
    ok(client.post(T2V, json=body, headers=auth))
    ok(client.post(I2V, json={**body, "image": URL}, headers=auth))


def test_vercel_ai_passes_unknown_provider_options_through(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """vercel/ai, packages/klingai/src/klingai-video-model.ts addPassthroughOptions: any
    provider option it does not handle goes into the body as is. Unknown fields are ignored."""
    body = {"model_name": "kling-v2-6", "prompt": "a kite", "duration": "5", "someFutureOption": {"x": 1}}
    ok(client.post(T2V, json=body, headers=auth))
    ok(client.post(OMNI, json={"prompt": "a kite", "aspect_ratio": "1:1", "style_hint": "ink"}, headers=auth))


def test_grid_image_clients_send_every_default(client: httpx.Client, auth: dict[str, str]) -> None:
    """inference-sh/grid, api/klingai/kling_helper.py: ImageGenerationAPI.create always sends
    ``resolution``, ``n`` and ``aspect_ratio`` (image-v3/inference.py with kling-v3);
    OmniImageAPI.create sends ``resolution`` (up to "4k"), ``aspect_ratio`` "16:9" by default,
    and ``result_type``/``series_amount`` for kling-v3-omni."""
    ok(
        client.post(
            IMAGES,
            json={
                "model_name": "kling-v3",
                "prompt": "a fox",
                "resolution": "2k",
                "n": 2,
                "aspect_ratio": "4:3",
            },
            headers=auth,
        )
    )
    ok(
        client.post(
            OMNI,
            json={
                "model_name": "kling-v3-omni",
                "prompt": "<<<image_1>>> as a comic",
                "resolution": "4k",
                "n": 1,
                "aspect_ratio": "16:9",
                "image_list": [{"image": URL}],
                "result_type": "series",
                "series_amount": 4,
            },
            headers=auth,
        )
    )


def test_element_ids_as_integers_or_strings(client: httpx.Client, auth: dict[str, str]) -> None:
    """The official omni-image example sends ``{"element_id": 829836802793406551}`` (an
    integer; grid's ElementRef too), delete-elements declares ``element_id`` a string: both."""
    for element_id in (829836802793406551, "829836802793406551"):
        body = {"prompt": "<<<element_1>>> on Mars", "element_list": [{"element_id": element_id}]}
        ok(client.post(OMNI, json={**body, "aspect_ratio": "1:1"}, headers=auth))
