"""The model-in-path design, as a client written for it meets it: every endpoint driven with the
bodies of the official pages' examples from create through GET /tasks to `succeeded` and the
download; each documented refusal in this design's envelope, naming the field; API keys only;
several ids in one /tasks call; a list walked page by page with its cursor."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    catalogue,
    create_app,
    make_jwt,
)
from mockkling.auth import AK_SK_REFUSED
from mockkling.transport import SyncASGITransport

API_KEY = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
# The official examples' inputs: URLs, taken as they are (never fetched).
IMAGE = "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-tob-release_note/image_25.png"
VIDEO = "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-tob-release_note/video_7.1.mp4"
MOTION_IMAGE = (
    "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/35d77e27300cf5e8995704cd858d759c.png"
)
MOTION_VIDEO = "https://v4-kling.kechuangai.com/kcdn/cdn-kcdn112452/kling-qa-test/dance_10s.mp4"
TRAIN = "A girl sat on the train, looking out the window with a melancholic expression, her head swaying."
PARROT = "Change the color of the parrot's feathers to match the reference image."
OPTIONS = {
    "callback_url": "https://xxx/callback",
    "external_task_id": "",
    "watermark_info": {"enabled": False},
}
SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}


def image_b64(width: int, height: int) -> str:
    """Raw Base64 of a real PNG of that size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def prompt(text: str = PARROT) -> dict[str, str]:
    return {"type": "prompt", "text": text}


@dataclass(frozen=True)
class Example:
    """A create body and what its task must deliver: seconds, resolution, shape, units billed."""

    name: str
    path: str
    body: dict[str, Any]
    seconds: int
    resolution: str
    units: str
    size: tuple[int, int] = (16, 9)


EXAMPLES = [
    # The official pages' own examples (Kling 3.0 and 3.0 Omni, motion control 3.0).
    Example(
        "t2v-3.0",
        "/text-to-video/kling-3.0",
        {
            "prompt": TRAIN,
            "settings": {
                "resolution": "4k",
                "aspect_ratio": "16:9",
                "duration": 15,
                "audio": "off",
                "multi_shot": True,
            },
            "options": OPTIONS,
        },
        15,
        "4k",
        "45",
    ),
    Example(
        "i2v-3.0-first-frame",
        "/image-to-video/kling-3.0",
        {
            "contents": [prompt(TRAIN), {"type": "first_frame", "url": IMAGE}],
            "settings": {"resolution": "4k", "duration": 10, "audio": "off", "multi_shot": False},
            "options": OPTIONS,
        },
        10,
        "4k",
        "30",
    ),
    Example(
        "i2v-3.0-frames-and-element",
        "/image-to-video/kling-3.0",
        {
            "contents": [
                prompt(TRAIN),
                {"type": "first_frame", "url": IMAGE},
                {"type": "last_frame", "url": IMAGE},
                {"type": "element", "element_id": "163", "id": "element_1"},
            ],
            "settings": {"resolution": "1080p", "duration": 10, "audio": "native", "multi_shot": False},
            "options": {**OPTIONS, "watermark_info": {"enabled": True}},
        },
        10,
        "1080p",
        "12",
    ),
    Example(
        "omni-3.0-prompt-only",
        "/omni-video/kling-3.0-omni",
        {
            "contents": [prompt()],
            "settings": {"resolution": "1080p", "duration": 5, "audio": "native", "multi_shot": False},
            "options": {"callback_url": "https://xxx/callback", "external_task_id": ""},
        },
        5,
        "1080p",
        "5",
    ),
    Example(
        "omni-3.0-first-frame-and-refer-image",
        "/omni-video/kling-3.0-omni",
        {
            "contents": [
                prompt(),
                {"type": "first_frame", "url": IMAGE, "id": "image_1"},
                {"type": "refer_image", "url": IMAGE, "id": "image_2"},
            ],
            "settings": {"resolution": "1080p", "duration": 5, "audio": "native", "multi_shot": False},
            "options": {"callback_url": "https://xxx/callback", "external_task_id": ""},
        },
        5,
        "1080p",
        "5",
    ),
    Example(
        "omni-3.0-frames-and-elements",
        "/omni-video/kling-3.0-omni",
        {
            "contents": [
                prompt(),
                {"type": "first_frame", "url": IMAGE, "id": "image_1"},
                {"type": "last_frame", "url": IMAGE, "id": "image_2"},
                {"type": "element", "element_id": "162", "id": "element_1"},
                {"type": "element", "element_id": "163", "id": "element_2"},
            ],
            "settings": {"resolution": "1080p", "duration": 5, "audio": "native", "multi_shot": True},
            "options": {"callback_url": "https://xxx/callback", "external_task_id": ""},
        },
        5,
        "1080p",
        "5",
    ),
    Example(
        "omni-3.0-feature-video",
        "/omni-video/kling-3.0-omni",
        {
            "contents": [prompt(), {"type": "feature_video", "url": VIDEO, "id": "video_1"}],
            "settings": {"resolution": "4k", "audio": "off", "multi_shot": True},
            "options": {"callback_url": "https://xxx/callback", "external_task_id": ""},
        },
        5,
        "4k",
        "15",
    ),
    Example(
        "omni-3.0-base-video",
        "/omni-video/kling-3.0-omni",
        {
            "contents": [prompt(), {"type": "base_video", "url": VIDEO, "id": "video_1"}],
            "settings": {"resolution": "1080p", "audio": "original", "multi_shot": False},
            "options": {"callback_url": "https://xxx/callback", "external_task_id": ""},
        },
        5,
        "1080p",
        "6",
    ),
    Example(
        "motion-3.0",
        "/motion-control/kling-3.0",
        {
            "contents": [
                prompt("The girl is wearing a loose gray T-shirt and denim shorts"),
                {"type": "image", "url": MOTION_IMAGE},
                {"type": "video", "url": MOTION_VIDEO},
            ],
            "settings": {"character_orientation": "video", "resolution": "1080p", "audio": "original"},
            "options": {"callback_url": "https://xxx/callback", "external_task_id": ""},
        },
        catalogue.UNKNOWN_MEDIA_SECONDS,  # a video URL not of the mock's own: not fetched
        "1080p",
        "6",
    ),
    # The other models, with the fields their pages document.
    Example("t2v-3.0-turbo", "/text-to-video/kling-3.0-turbo", {"prompt": TRAIN}, 5, "720p", "4"),
    Example(
        "i2v-3.0-turbo",
        "/image-to-video/kling-3.0-turbo",
        {
            "contents": [prompt(TRAIN), {"type": "first_frame", "url": image_b64(360, 640)}],
            "settings": {"resolution": "1080p", "duration": 5},
        },
        5,
        "1080p",
        "5",
        (9, 16),
    ),
    Example(
        "t2v-2.6-native-audio",
        "/text-to-video/kling-2.6",
        {
            "prompt": TRAIN,
            "settings": {"resolution": "1080p", "aspect_ratio": "9:16", "duration": 10, "audio": "native"},
        },
        10,
        "1080p",
        "10",
        (9, 16),
    ),
    Example(
        "i2v-2.6-first-and-last",
        "/image-to-video/kling-2.6",
        {
            "contents": [
                prompt(TRAIN),
                {"type": "first_frame", "url": IMAGE},
                {"type": "last_frame", "url": IMAGE},
            ],
            "settings": {"resolution": "1080p", "duration": 5},
        },
        5,
        "1080p",
        "2.5",
    ),
    Example(
        "i2v-2.6-voices",
        "/image-to-video/kling-2.6",
        {
            "contents": [
                prompt("@1 says hello to @2"),
                {"type": "first_frame", "url": IMAGE},
                {"type": "voice", "voice_id": "genshin_vindi2", "id": "1"},
                {"type": "voice", "voice_id": "ai_kaiya", "id": "2"},
            ],
            "settings": {"resolution": "1080p", "audio": "native"},
        },
        5,
        "1080p",
        "5",
    ),
    Example(
        "motion-2.6",
        "/motion-control/kling-2.6",
        {
            "contents": [{"type": "image", "url": MOTION_IMAGE}, {"type": "video", "url": MOTION_VIDEO}],
            "settings": {"character_orientation": "image"},
        },
        catalogue.UNKNOWN_MEDIA_SECONDS,
        "720p",
        "1.5",
    ),
    Example(
        "t2v-2.5-turbo",
        "/text-to-video/kling-2.5-turbo",
        {"prompt": TRAIN, "settings": {"aspect_ratio": "1:1", "duration": 10}},
        10,
        "720p",
        "3",
        (1, 1),
    ),
    Example(
        "i2v-2.5-turbo-first-and-last",
        "/image-to-video/kling-2.5-turbo",
        {
            "contents": [
                prompt(TRAIN),
                {"type": "first_frame", "url": IMAGE},
                {"type": "last_frame", "url": IMAGE},
            ],
            "settings": {"resolution": "1080p"},
        },
        5,
        "1080p",
        "2.5",
    ),
    Example(
        "omni-o1-prompt",
        "/omni-video/kling-o1",
        {"contents": [prompt()], "settings": {"aspect_ratio": "16:9", "duration": 7}},
        7,
        "720p",
        "4.2",
    ),
    Example(
        "omni-o1-first-frame",
        "/omni-video/kling-o1",
        {
            "contents": [prompt(), {"type": "first_frame", "url": IMAGE}],
            "settings": {"resolution": "1080p", "duration": 10},
        },
        10,
        "1080p",
        "8",
    ),
]


def seed_elements(backend: Backend, account: str = DEFAULT_ACCESS_KEY) -> None:
    """The custom elements the official examples name (162, 163, 164, 165), in the account, as the
    element API would have made them."""
    for ident in ("162", "163", "164", "165"):
        backend.add_record(
            account, catalogue.CUSTOM_ELEMENTS, ident=ident, extra={"reference_type": "image_refer"}
        )


def client_for(backend: Backend, key: str = DEFAULT_API_KEY) -> httpx.Client:
    """A client on ``backend`` that sends ``key`` as the bearer API key."""
    return httpx.Client(
        transport=SyncASGITransport(create_app(backend)),
        base_url="http://mock",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
def api(backend: Backend) -> Iterator[httpx.Client]:
    seed_elements(backend)
    with client_for(backend) as client:
        yield client


def create(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["code"] == 0 and envelope["message"] == "SUCCEED"
    return dict(envelope["data"])


def query(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = api.get("/tasks", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def probe(content: bytes) -> tuple[float, tuple[int, int]]:
    """(duration in seconds, (width, height)) as FFmpeg's demuxer reads the MP4."""
    with av.open(io.BytesIO(content), format="mp4") as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        return container.duration / av.time_base, (stream.width, stream.height)


# -- every endpoint, create to download ----------------------------------------------------------


def test_every_catalogued_endpoint_has_an_example() -> None:
    assert {example.path for example in EXAMPLES} == {route.path for route in catalogue.MODEL_ROUTES.values()}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_create_query_succeed_download(backend: Backend, api: httpx.Client, example: Example) -> None:
    now = backend.now_ms()
    created = create(api, example.path, example.body)
    assert created["id"].isdigit() and len(created["id"]) == 18
    assert created["status"] == "submitted"
    assert created["create_time"] == created["update_time"] == now
    assert "external_id" not in created  # the examples send "external_task_id": "", meaning none

    [task] = query(api, task_ids=created["id"])
    assert (task["id"], task["status"], task["outputs"], task["billing"]) == (
        created["id"],
        "submitted",
        [],
        [],
    )
    backend.advance(1)
    assert query(api, task_ids=created["id"])[0]["status"] == "processing"
    backend.advance(4)
    [task] = query(api, task_ids=created["id"])
    assert task["status"] == "succeeded" and task["message"] == ""
    assert task["create_time"] == now and task["update_time"] == now + 5000

    [video] = task["outputs"]
    assert video["type"] == "video" and video["duration"] == str(example.seconds)
    assert ("watermark_url" in video) == bool(
        example.body.get("options", {}).get("watermark_info", {}).get("enabled")
    )
    assert task["billing"] == [{"charge_type": "unit", "amount": example.units, "package_type": "video"}]

    download = api.get(video["url"], headers={"Authorization": ""})
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    seconds, (width, height) = probe(download.content)
    assert seconds == pytest.approx(example.seconds, abs=0.05)
    assert min(width, height) == SHORT_SIDE[example.resolution]
    assert width * example.size[1] == pytest.approx(height * example.size[0], rel=0.01)


def test_the_task_records_its_design(backend: Backend, api: httpx.Client) -> None:
    """Own action names: fates, limits, the journal and the control API tell the endpoints apart."""
    created = create(api, "/image-to-video/kling-3.0", EXAMPLES[1].body)
    task = backend.tasks.get(created["id"])
    assert task is not None
    assert (task.action, task.model, task.mode, task.duration) == (
        "image-to-video/kling-3.0",
        "kling-3.0",
        "4k",
        "10",
    )
    assert catalogue.video_shape(task) == ("16:9", "4k")


def test_motion_control_lasts_as_long_as_a_kling_reference_video(backend: Backend, api: httpx.Client) -> None:
    """A motion reference that is one of the mock's own results is known: the video lasts as
    long as it does, as on the legacy design."""
    reference = create(api, T2V30, {"prompt": "a dancer", "settings": {"duration": 8}})["id"]
    backend.advance(3600)
    url = query(api, task_ids=reference)[0]["outputs"][0]["url"]
    body = {
        "contents": [{"type": "image", "url": MOTION_IMAGE}, {"type": "video", "url": url}],
        "settings": {"character_orientation": "video"},
    }
    motion = create(api, MOTION30, body)["id"]
    backend.advance(3600)
    (task,) = query(api, task_ids=motion)
    assert task["status"] == "succeeded" and probe(api.get(task["outputs"][0]["url"]).content)[
        0
    ] == pytest.approx(8, abs=0.05)


# -- refusals --------------------------------------------------------------------------------------

T2V30, I2V30 = "/text-to-video/kling-3.0", "/image-to-video/kling-3.0"
OMNI, O1 = "/omni-video/kling-3.0-omni", "/omni-video/kling-o1"
MOTION30 = "/motion-control/kling-3.0"
FIRST, LAST = {"type": "first_frame", "url": IMAGE}, {"type": "last_frame", "url": IMAGE}
FEATURE, BASE = {"type": "feature_video", "url": VIDEO}, {"type": "base_video", "url": VIDEO}


def element(ident: str, name: str) -> dict[str, str]:
    return {"type": "element", "element_id": ident, "id": name}


REFUSALS: list[tuple[str, str, dict[str, Any], str]] = [
    ("no prompt", T2V30, {"settings": {}}, "prompt is required"),
    (
        "a video item naming a picture",
        OMNI,
        {"prompt": "a", "contents": [{"type": "feature_video", "url": "https://example.com/v.png"}]},
        "contents[0].url: .png files are not supported",
    ),
    ("empty prompt", T2V30, {"prompt": ""}, "prompt must not be empty"),
    ("prompt too long", "/text-to-video/kling-2.6", {"prompt": "x" * 2501}, "prompt must be at most 2500"),
    (
        "duration out of range",
        T2V30,
        {"prompt": "a", "settings": {"duration": 16}},
        "settings.duration must be <= 15",
    ),
    (
        "duration between 5 and 10",
        "/text-to-video/kling-2.6",
        {"prompt": "a", "settings": {"duration": 7}},
        "settings.duration must be one of 5, 10",
    ),
    (
        "duration as a string",
        T2V30,
        {"prompt": "a", "settings": {"duration": "5"}},
        "settings.duration must be an integer",
    ),
    (
        "audio on",
        T2V30,
        {"prompt": "a", "settings": {"audio": "on"}},
        "settings.audio must be one of: native, off",
    ),
    (
        "4k on turbo",
        "/text-to-video/kling-3.0-turbo",
        {"prompt": "a", "settings": {"resolution": "4k"}},
        "settings.resolution",
    ),
    (
        "2.6 native audio at 720p",
        "/text-to-video/kling-2.6",
        {"prompt": "a", "settings": {"audio": "native"}},
        "1080p only",
    ),
    (
        "callback not http",
        T2V30,
        {"prompt": "a", "options": {"callback_url": "ftp://x/cb"}},
        "options.callback_url",
    ),
    ("no contents", I2V30, {"settings": {}}, "contents is required"),
    ("empty contents", I2V30, {"contents": []}, "contents must have at least 1 items"),
    (
        "unknown item type",
        I2V30,
        {"contents": [{"type": "end_frame", "url": IMAGE}]},
        "contents[0].type must be one of",
    ),
    ("no first frame", I2V30, {"contents": [prompt()]}, "a first_frame item is required"),
    ("last frame alone", I2V30, {"contents": [LAST]}, "a last_frame needs a first_frame"),
    ("two first frames", I2V30, {"contents": [FIRST, FIRST]}, "at most 1 first_frame"),
    ("frame without url", I2V30, {"contents": [{"type": "first_frame"}]}, "contents[0].url is required"),
    (
        "frame not an image",
        I2V30,
        {"contents": [{"type": "first_frame", "url": "bm90IGFuIGltYWdl"}]},
        "contents[0].url: not a valid",
    ),
    (
        "small frame",
        I2V30,
        {"contents": [{"type": "first_frame", "url": image_b64(200, 200)}]},
        "at least 300px",
    ),
    (
        "last frame on turbo",
        "/image-to-video/kling-3.0-turbo",
        {"contents": [FIRST, LAST]},
        "contents[1].type must be one of",
    ),
    (
        "2.6 frames at 720p",
        "/image-to-video/kling-2.6",
        {"contents": [FIRST, LAST]},
        "first and last frames at 1080p",
    ),
    (
        "2.5 turbo frames at 720p",
        "/image-to-video/kling-2.5-turbo",
        {"contents": [FIRST, LAST]},
        "1080p only",
    ),
    (
        "voice with audio off",
        "/image-to-video/kling-2.6",
        {"contents": [FIRST, {"type": "voice", "voice_id": "genshin_vindi2", "id": "v"}]},
        "settings.audio must not be off",
    ),
    (
        "unknown voice",
        "/image-to-video/kling-2.6",
        {
            "contents": [FIRST, {"type": "voice", "voice_id": "nobody", "id": "v"}],
            "settings": {"audio": "native", "resolution": "1080p"},
        },
        "contents[1].voice_id: voice nobody does not exist",
    ),
    (
        "element without id",
        I2V30,
        {"contents": [FIRST, {"type": "element", "element_id": "162"}]},
        "contents[1].id is required",
    ),
    (
        "unknown element",
        I2V30,
        {"contents": [FIRST, element("404", "e")]},
        "contents[1].element_id: element 404 does not exist",
    ),
    (
        "four elements",
        I2V30,
        {"contents": [FIRST, *(element("162", f"e{i}") for i in range(4))]},
        "at most 3 element",
    ),
    (
        "repeated item id",
        I2V30,
        {"contents": [FIRST, element("162", "e"), element("163", "e")]},
        "contents[2].id: e is already",
    ),
    ("omni without prompt", OMNI, {"contents": [FIRST]}, "a prompt item is required"),
    ("two reference videos", OMNI, {"contents": [prompt(), FEATURE, BASE]}, "at most one reference video"),
    (
        "video by Base64",
        OMNI,
        {"contents": [prompt(), {"type": "feature_video", "url": "AAAA"}]},
        "must be an http(s) URL",
    ),
    ("base video with a frame", OMNI, {"contents": [prompt(), FIRST, BASE]}, "takes no first or last frame"),
    (
        "base video multi-shot",
        OMNI,
        {"contents": [prompt(), BASE], "settings": {"multi_shot": True}},
        "multi_shot must be false",
    ),
    (
        "base video native audio",
        OMNI,
        {"contents": [prompt(), BASE], "settings": {"audio": "native"}},
        "must not be native",
    ),
    (
        "feature video with audio",
        OMNI,
        {"contents": [prompt(), FEATURE], "settings": {"audio": "original"}},
        "must be off",
    ),
    (
        "feature video single shot",
        OMNI,
        {"contents": [prompt(), FEATURE], "settings": {"multi_shot": False}},
        "must be true",
    ),
    (
        "four elements with a first frame",
        OMNI,
        {"contents": [prompt(), FIRST, *(element(e, f"e{e}") for e in ("162", "163", "164", "165"))]},
        "at most 3 elements with a first frame",
    ),
    (
        "three images and two elements with a video",
        OMNI,
        {
            "contents": [
                prompt(),
                FEATURE,
                *({"type": "refer_image", "url": IMAGE} for _ in range(3)),
                element("162", "a"),
                element("163", "b"),
            ]
        },
        "elements may number 4 at most",
    ),
    (
        "eight refer images",
        OMNI,
        {"contents": [prompt(), *({"type": "refer_image", "url": IMAGE} for _ in range(8))]},
        "at most 7 refer_image",
    ),
    (
        "five images and elements with a video",
        OMNI,
        {"contents": [prompt(), FEATURE, *({"type": "refer_image", "url": IMAGE} for _ in range(5))]},
        "4 at most",
    ),
    (
        "O1 first frame 7s",
        O1,
        {"contents": [prompt(), FIRST], "settings": {"duration": 7}},
        "must be 5 or 10",
    ),
    (
        "O1 frames and refer image",
        O1,
        {"contents": [prompt(), FIRST, LAST, {"type": "refer_image", "url": IMAGE}]},
        "no refer_image",
    ),
    (
        "O1 feature video and last frame",
        O1,
        {"contents": [prompt(), FIRST, LAST, FEATURE]},
        "not a last frame",
    ),
    (
        "O1 11 seconds",
        O1,
        {"contents": [prompt()], "settings": {"duration": 11}},
        "settings.duration must be <= 10",
    ),
    (
        "motion without orientation",
        MOTION30,
        {"contents": [{"type": "video", "url": VIDEO}]},
        "settings is required",
    ),
    (
        "motion orientation missing",
        MOTION30,
        {"contents": [{"type": "video", "url": VIDEO}], "settings": {"resolution": "720p"}},
        "settings.character_orientation is required",
    ),
    (
        "motion without video",
        MOTION30,
        {"contents": [{"type": "image", "url": IMAGE}], "settings": {"character_orientation": "image"}},
        "a video item",
    ),
    (
        "motion without appearance",
        MOTION30,
        {"contents": [{"type": "video", "url": VIDEO}], "settings": {"character_orientation": "image"}},
        "an image item",
    ),
    (
        "motion 4k",
        MOTION30,
        {
            "contents": [{"type": "image", "url": IMAGE}, {"type": "video", "url": VIDEO}],
            "settings": {"character_orientation": "video", "resolution": "4k"},
        },
        "settings.resolution must be one of: 720p, 1080p",
    ),
    (
        "motion 2.6 element",
        "/motion-control/kling-2.6",
        {
            "contents": [{"type": "video", "url": VIDEO}, element("162", "e")],
            "settings": {"character_orientation": "video"},
        },
        "contents[1].type must be one of",
    ),
]


@pytest.mark.parametrize(("path", "body", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_field(
    backend: Backend, api: httpx.Client, path: str, body: dict[str, Any], words: str
) -> None:
    before = len(backend.tasks)
    response = api.post(path, json=body)
    assert response.status_code == 400, response.text
    envelope = response.json()
    assert envelope["code"] == 1201 and words in envelope["message"], envelope
    assert set(envelope) == {"code", "message", "request_id"}  # this design's errors carry no data
    assert len(backend.tasks) == before


def test_an_unknown_model_in_the_path_is_404_1203(api: httpx.Client) -> None:
    response = api.post("/text-to-video/kling-9", json={"prompt": "a cat"})
    assert response.status_code == 404
    envelope = response.json()
    assert (
        envelope["code"] == 1203
        and "kling-9" in envelope["message"]
        and "kling-3.0-turbo" in envelope["message"]
    )
    assert "data" not in envelope
    # An operation the catalogue does not serve for that model, or a path under it, is just unknown.
    assert api.post("/omni-video/kling-2.6", json={}).json()["code"] == 1203
    assert api.post("/video-to-video/kling-3.0", json={}).json()["code"] == 1202
    assert api.get("/text-to-video/kling-3.0").status_code == 405


@pytest.mark.parametrize(
    ("path", "design"),
    [
        ("/text-to-video", "model-in-path"),
        ("/text-to-video/", "model-in-path"),
        ("/tasks/x", "model-in-path"),
        ("/tasksXYZ", "legacy"),
        ("/text-to-videoX/kling-3.0", "legacy"),
    ],
)
def test_an_unknown_path_answers_in_the_envelope_of_the_design_it_is_under(
    api: httpx.Client, path: str, design: str
) -> None:
    """The model-in-path design owns whole first segments; any other path is legacy's (``data``)."""
    answer = api.post(path, json={"prompt": "a"})
    assert (answer.status_code, answer.json()["code"]) == (404, 1202)
    assert ("data" in answer.json()) == (design == "legacy")


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "Request body is empty"), (b"[1]", "must be a JSON object"), (b"{", "not valid JSON")],
)
def test_a_body_that_is_not_a_json_object_is_1200(api: httpx.Client, content: bytes, words: str) -> None:
    response = api.post(T2V30, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == 1200 and words in response.json()["message"]


def test_external_task_ids_are_unique_in_the_account(backend: Backend, api: httpx.Client) -> None:
    body = {"prompt": "a", "options": {"external_task_id": "job-1"}}
    created = create(api, T2V30, body)
    assert created["external_id"] == "job-1"
    response = api.post("/text-to-video/kling-2.6", json=body)
    assert response.status_code == 400 and "options.external_task_id" in response.json()["message"]
    # One store: a legacy task's external_task_id is taken too.
    legacy = api.post("/v1/videos/text2video", json={"prompt": "a", "external_task_id": "job-1"})
    assert legacy.json()["code"] == 1201
    assert [t.task_id for t in backend.tasks if t.action in catalogue.MODEL_ROUTES] == [created["id"]]


@pytest.mark.parametrize("external", ["order,42", " padded", "padded ", "shop/order-7"])
def test_an_external_id_that_could_never_be_queried_is_refused(
    backend: Backend, api: httpx.Client, external: str
) -> None:
    """A "," splits the /tasks list, spaces are trimmed from it, a "/" cannot be a path segment:
    such an id is refused at create on both designs, naming the field, and nothing is stored."""
    new = api.post(T2V30, json={"prompt": "a", "options": {"external_task_id": external}}).json()
    legacy = api.post("/v1/videos/text2video", json={"prompt": "a", "external_task_id": external}).json()
    assert (new["code"], legacy["code"]) == (1201, 1201)
    assert new["message"].startswith("options.external_task_id must not hold")
    assert legacy["message"].startswith("external_task_id must not hold")
    assert [t for t in backend.tasks if t.action != catalogue.CUSTOM_ELEMENTS] == []


def test_an_external_id_is_found_as_it_was_given(api: httpx.Client) -> None:
    for external in ("order 42", "ORDER-42", "order.42:x"):
        created = create(api, T2V30, {"prompt": "a", "options": {"external_task_id": external}})
        assert [t["id"] for t in query(api, external_task_ids=external)] == [created["id"]]
        legacy = api.post("/v1/videos/text2video", json={"prompt": "a", "external_task_id": external + "!"})
        task_id = legacy.json()["data"]["task_id"]
        found = api.get(f"/v1/videos/text2video/{external}!")
        assert found.json()["data"]["task_id"] == task_id


# -- auth ------------------------------------------------------------------------------------------


def jwt_header() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", T2V30, {"prompt": "a"}), ("GET", "/tasks?task_ids=1", None), ("POST", "/tasks", {"limit": 2})],
)
def test_only_api_keys_open_the_new_routes(api: httpx.Client, method: str, path: str, body: Any) -> None:
    def answer(headers: dict[str, str]) -> tuple[int, int, str]:
        response = api.request(method, path, json=body, headers=headers)
        data = response.json()
        assert "data" not in data
        return response.status_code, data["code"], data["message"]

    assert answer({"Authorization": ""}) == (401, 1001, "Authorization is empty")
    assert answer(jwt_header()) == (401, 1002, AK_SK_REFUSED)
    assert answer({"Authorization": f"Bearer {DEFAULT_ACCESS_KEY}|{DEFAULT_SECRET_KEY}"}) == (
        401,
        1002,
        AK_SK_REFUSED,
    )
    assert answer({"Authorization": "Bearer api-key-kling-BOGUS"}) == (401, 1002, "api key not found")
    assert answer({"Authorization": DEFAULT_API_KEY})[:2] == (401, 1002)  # no Bearer
    assert api.request(method, path, json=body).status_code == 200


def test_the_api_key_also_opens_the_legacy_routes(api: httpx.Client) -> None:
    response = api.post("/v1/videos/text2video", json={"prompt": "a cat"})
    assert response.status_code == 200 and response.json()["data"]["task_status"] == "submitted"


# -- GET /tasks ------------------------------------------------------------------------------------


def test_several_ids_in_one_query(backend: Backend, api: httpx.Client) -> None:
    first = create(api, T2V30, {"prompt": "one", "options": {"external_task_id": "ext-1"}})
    second = create(
        api, "/text-to-video/kling-2.6", {"prompt": "two", "options": {"external_task_id": "ext-2"}}
    )
    legacy = api.post("/v1/videos/text2video", json={"prompt": "legacy"}).json()["data"]["task_id"]
    backend.add_account("other-ak", "other-sk", ["other-key"])
    with client_for(backend, "other-key") as other:
        theirs = create(other, T2V30, {"prompt": "x"})

    ids = f"{second['id']},nope, {first['id']},{legacy},{theirs['id']},{second['id']}"
    found = query(api, task_ids=ids)
    assert [t["id"] for t in found] == [second["id"], first["id"]]  # asked order, once each, only its own
    by_external = query(api, external_task_ids="ext-2,ext-1,ext-unknown")
    assert [(t["id"], t["external_id"]) for t in by_external] == [
        (second["id"], "ext-2"),
        (first["id"], "ext-1"),
    ]
    assert query(api, task_ids="123456789012345678") == []
    assert query(api, external_task_ids="landxi-probe-none") == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "task_ids or external_task_ids is required"),
        ({"ids": "1"}, "task_ids or external_task_ids is required"),
        ({"task_ids": ""}, "task_ids or external_task_ids is required"),
        ({"task_ids": " , "}, "task_ids or external_task_ids is required"),
        ({"task_ids": "1", "external_task_ids": "2"}, "cannot be used together"),
    ],
)
def test_tasks_needs_exactly_one_id_parameter(api: httpx.Client, params: dict[str, str], words: str) -> None:
    response = api.get("/tasks", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == 1201 and words in response.json()["message"]


def test_a_new_design_task_is_not_on_the_legacy_query_paths(api: httpx.Client) -> None:
    """As live: /tasks answers new-design tasks, /v1/... legacy ones (a client polling the
    legacy path for a new task has a bug the mock must show)."""
    created = create(api, T2V30, {"prompt": "a"})
    response = api.get(f"/v1/videos/text2video/{created['id']}")
    assert (response.status_code, response.json()["code"]) == (404, 1203)
    legacy = api.post("/v1/videos/text2video", json={"prompt": "a"}).json()["data"]["task_id"]
    assert query(api, task_ids=legacy) == []


# -- POST /tasks -----------------------------------------------------------------------------------


def listing(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/tasks", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def test_a_list_walked_by_its_cursor(backend: Backend, api: httpx.Client) -> None:
    made = []
    for i in range(8):  # pairs share a millisecond: the order is by time, then id
        made.append(create(api, T2V30 if i % 2 else "/text-to-video/kling-2.6", {"prompt": f"task {i}"}))
        if i % 2:
            backend.advance(0.5)
    expected = [t["id"] for t in sorted(made, key=lambda t: (t["create_time"], t["id"]), reverse=True)]

    pages, cursor = [], ""
    while True:
        data = listing(api, {"limit": 3, "cursor": cursor})
        pages.append([t["id"] for t in data["result"]])
        assert data["count"] == len(data["result"])
        if not data["has_more"]:
            assert data["next_cursor"] == ""
            break
        cursor = data["next_cursor"]
        assert cursor
        create(api, T2V30, {"prompt": "arrives while the list is walked"})  # newer: never on a later page
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == expected


def test_list_windows_filters_and_limits(backend: Backend, api: httpx.Client) -> None:
    early = create(api, T2V30, {"prompt": "early"})
    backend.advance(10)  # early has succeeded
    late = create(api, T2V30, {"prompt": "late"})  # submitted
    now = backend.now_ms()
    everything = listing(api, {})
    assert [t["id"] for t in everything["result"]] == [late["id"], early["id"]]
    assert everything["result"][1]["outputs"][0]["type"] == "video"

    def ids(body: dict[str, Any]) -> list[str]:
        return [t["id"] for t in listing(api, body).get("result", [])]

    assert ids({"start_time": str(now - 1000), "end_time": str(now)}) == [
        late["id"]
    ]  # strings, as most pages
    assert ids({"start_time": early["create_time"], "end_time": now - 1000}) == [
        early["id"]
    ]  # numbers, as Turbo's
    assert ids({"filters": [{"key": "status", "values": ["succeeded"]}]}) == [early["id"]]
    assert ids({"filters": [{"key": "status", "values": ["succeeded", "submitted"]}]}) == [
        late["id"],
        early["id"],
    ]
    assert ids(
        {
            "filters": [
                {"key": "product_type", "values": ["video"]},
                {"key": "status", "values": ["submitted"]},
            ]
        }
    ) == [late["id"]]
    assert ids({"filters": [{"key": "product_type", "values": ["image", "try_on"]}]}) == []
    assert ids({"limit": 1}) == [late["id"]]
    assert ids({"filters": [{"key": "status", "values": []}]}) == [late["id"], early["id"]]


def test_an_empty_page_has_only_count_and_has_more(api: httpx.Client) -> None:
    assert listing(api, {"limit": 2}) == {"count": 0, "has_more": False}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"limit": 0}, "limit must be >= 1"),
        ({"limit": 501}, "limit must be <= 500"),
        ({"start_time": "2000", "end_time": "1000"}, "start_time must be earlier than end_time"),
        ({"start_time": "soon"}, "start_time"),
        ({"cursor": "not-a-cursor"}, "cursor is not a next_cursor"),
        ({"filters": [{"key": "colour", "values": ["red"]}]}, "filters[0].key must be one of"),
        ({"filters": [{"key": "status", "values": ["succeed"]}]}, "filters[0].values[0] must be one of"),
        ({"filters": [{"key": "status", "values": ["video"]}]}, "is not a status"),
        ({"filters": [{"key": "product_type", "values": ["failed"]}]}, "is not a product_type"),
    ],
)
def test_list_refusals(api: httpx.Client, body: dict[str, Any], words: str) -> None:
    response = api.post("/tasks", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 1201 and words in response.json()["message"], response.json()


def test_other_accounts_tasks_are_not_listed(backend: Backend, api: httpx.Client) -> None:
    backend.add_account("other-ak", "other-sk", ["other-key"])
    create(api, T2V30, {"prompt": "mine"})
    response = api.post("/tasks", json={}, headers={"Authorization": "Bearer other-key"})
    assert response.json()["data"] == {"count": 0, "has_more": False}


def test_configured_without_the_default_account(backend: Backend) -> None:
    """Accounts given their API keys in the config: each key acts for its own account."""
    config = (
        Config()
        .merge({"accounts": [{"access_key": "ak-a", "secret_key": "sk-a", "api_keys": ["api-key-kling-a"]}]})
        .with_defaults()
    )
    other = Backend(config)
    with client_for(other, "api-key-kling-a") as client:
        assert client.post(T2V30, json={"prompt": "a"}).status_code == 200
        default = client.post(T2V30, json={"prompt": "a"}, headers=API_KEY)
        assert (default.status_code, default.json()["message"]) == (401, "api key not found")
    assert [t.account for t in other.tasks] == ["ak-a"]
