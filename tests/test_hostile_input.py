"""The catalogue of hostile input: every bad request below gets its exact answer, in the envelope of
the surface it was sent to, on every operation of that surface it applies to.

Official surface: ``{code: <business code>, message, request_id, data: null}``.
Gateway surfaces: ``{code: "<string>", message, data: null}``.
The operations come from openapi.yaml (by security scheme), so a new create or list endpoint is
covered as soon as it is documented. Nothing refused is stored.
"""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest
from PIL import Image

from mockkling import DEFAULT_API_KEY, Backend, Config, ConfigError, create_app
from mockkling.cli import _parser, build_config
from mockkling.jsonio import MAX_DEPTH
from mockkling.server import LiveServer
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

SPEC = default_spec()
KEY = {"Authorization": DEFAULT_API_KEY}
JSON = {"Content-Type": "application/json"}
URL = "https://example.com/cat.jpg"
VIDEO_URL = "https://example.com/v.mp4"
SURFACES = Path(__file__).resolve().parent.parent / "docs" / "surfaces.md"


def _seed_served(op: dict[str, Any]) -> bool:
    """Served by the default server: not a gateway operation of another profile only."""
    tags = op.get("tags", [])
    return "gateway-seed" in tags or not any(tag.startswith("gateway-") for tag in tags)


def _operations(method: str, scheme: str, *, with_id: bool = False) -> list[str]:
    """The documented paths of one surface (by security scheme) for one method, as the default
    server (gateway profile seed) serves them."""
    return [
        path
        for path, m, op in SPEC.operations()
        if m == method
        and op.get("security") == [{scheme: []}]
        and ("{task_id}" in path) == with_id
        and _seed_served(op)
    ]


OFFICIAL_CREATES = _operations("post", "klingAuth")
OFFICIAL_LISTS = _operations("get", "klingAuth")
OFFICIAL_QUERIES = _operations("get", "klingAuth", with_id=True)
GATEWAY_CREATES = _operations("post", "gatewayKey")
GATEWAY_QUERIES = _operations("get", "gatewayKey", with_id=True)
# The gateway's body ``code`` for each status, as the seed document spells them.
GATEWAY_CODES = {400: "invalid_request", 404: "not_found", 413: "request_too_large"}


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """In memory; tests parametrized with ``config="sqlite"`` keep tasks in a state file."""
    if getattr(request, "param", "memory") == "sqlite":
        return Config(seed=1234, state_file=str(tmp_path / "state.db"))
    return Config(seed=1234)


@pytest.fixture
def backend(config: Config) -> Iterator[Backend]:
    backend = Backend(config)
    backend.use_manual_clock()
    yield backend
    backend.close()


STORES = pytest.mark.parametrize("config", ["memory", "sqlite"], indirect=True)


def test_the_catalogue_covers_both_surfaces() -> None:
    from mockkling.routes.official import CALLS
    from mockkling.validation import ACTIONS

    posts = [call for call in CALLS if call.method == "POST"]
    assert len(OFFICIAL_CREATES) == len(ACTIONS) + len(posts) and "/v1/videos/text2video" in OFFICIAL_CREATES
    assert "/account/costs" in OFFICIAL_LISTS and len(OFFICIAL_QUERIES) == len(ACTIONS)
    assert GATEWAY_CREATES == [
        "/v1/video/generations",
        "/kling/v1/videos/text2video",
        "/kling/v1/videos/image2video",
    ]
    assert len(GATEWAY_QUERIES) == 3


def official(response: httpx.Response, status: int, code: int, message: str) -> None:
    """The exact official answer (the request id is fresh each time, so only its shape is fixed)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    request_id = body.get("request_id")
    assert isinstance(request_id, str) and len(request_id) == 22, body
    assert body == {"code": code, "message": message, "request_id": request_id, "data": None}


def gateway(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": code, "message": message, "data": None}


def answer(surface: str, response: httpx.Response, status: int, message: str, code: int = 1200) -> None:
    """The exact answer on ``surface``: official business ``code``, or the gateway's string."""
    if surface == "official":
        official(response, status, code, message)
    else:
        gateway(response, status, GATEWAY_CODES[status], message)


def creates() -> Iterator[tuple[str, str, dict[str, str]]]:
    for path in OFFICIAL_CREATES:
        yield "official", path, {}
    for path in GATEWAY_CREATES:
        yield "gateway", path, KEY


# -- bodies that are not a JSON object -------------------------------------------------------------

NOT_JSON = "Request body is not valid JSON: "


def _nested(depth: int) -> bytes:
    """An object whose unknown field nests ``depth`` levels in all (the body itself is level 1)."""
    return b'{"prompt": "x", "extra": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


BODIES = [
    (
        "malformed",
        b"{not json",
        NOT_JSON + "unexpected character, expected a string key: line 1 column 2 (char 1)",
    ),
    (
        "single-quotes",
        b"{'prompt': 'x'}",
        NOT_JSON + "unexpected character, expected a string key: line 1 column 2 (char 1)",
    ),
    (
        "trailing-comma",
        b'{"prompt": "x",}',
        NOT_JSON + "trailing comma is not allowed: line 1 column 15 (char 14)",
    ),
    ("truncated", b'{"prompt": "x"', NOT_JSON + "unexpected end of data: line 1 column 15 (char 14)"),
    (
        "two-documents",
        b'{"prompt": "x"} {}',
        NOT_JSON + "unexpected content after document: line 1 column 17 (char 16)",
    ),
    (
        "nan",
        b'{"prompt": NaN}',
        NOT_JSON + "unexpected character, expected a JSON value: line 1 column 12 (char 11)",
    ),
    (
        "infinite-number",
        b'{"prompt": "x", "cfg_scale": 1e400}',
        NOT_JSON + "number is infinity when parsed as double: line 1 column 30 (char 29)",
    ),
    ("empty", b"", "Request body is empty: send a JSON object"),
    ("whitespace", b" \r\n\t ", "Request body is empty: send a JSON object"),
    ("array", b'[{"prompt": "x"}]', "Request body must be a JSON object, not an array"),
    ("string", b'"prompt"', "Request body must be a JSON object, not a string"),
    ("number", b"42", "Request body must be a JSON object, not a number"),
    ("boolean", b"true", "Request body must be a JSON object, not a boolean"),
    ("null", b"null", "Request body must be a JSON object, not null"),
    ("invalid-utf8", b'{"prompt": "\xc3\x28"}', "Request body is not valid UTF-8 (byte 0xc3 at offset 12)"),
    ("latin-1", b'{"prompt": "caf\xe9"}', "Request body is not valid UTF-8 (byte 0xe9 at offset 15)"),
    ("utf-16", '{"prompt": "x"}'.encode("utf-16"), "Request body is not valid UTF-8 (byte 0xff at offset 0)"),
    (
        "lone-surrogate",
        b'{"prompt": "\\ud800"}',
        NOT_JSON + "no low surrogate in string: line 1 column 13 (char 12)",
    ),
    (
        "raw-nul-in-string",
        b'{"prompt": "a\x00b"}',
        NOT_JSON + "unexpected control character in string: line 1 column 14 (char 13)",
    ),
    (
        "nul-after-body",
        b'{"prompt": "x"}\x00',
        NOT_JSON + "unexpected content after document: line 1 column 16 (char 15)",
    ),
    ("nested-33-levels", _nested(MAX_DEPTH + 1), f"Request body is nested more than {MAX_DEPTH} levels deep"),
    ("nested-1000-levels", _nested(1000), f"Request body is nested more than {MAX_DEPTH} levels deep"),
    (
        "nested-5000-levels",
        b"[" * 5000 + b"]" * 5000,
        NOT_JSON + "depth limit exceeded: line 1 column 1026 (char 1025)",
    ),
]


@pytest.mark.parametrize(("content", "message"), [row[1:] for row in BODIES], ids=[row[0] for row in BODIES])
def test_bodies_that_are_not_a_json_object(
    backend: Backend, client: httpx.Client, auth: dict[str, str], content: bytes, message: str
) -> None:
    for surface, path, headers in creates():
        response = client.post(path, content=content, headers=(headers or auth) | JSON)
        answer(surface, response, 400, message)
    assert len(backend.tasks) == 0


def test_deep_nesting_up_to_the_limit_is_fine(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post("/v1/videos/text2video", content=_nested(MAX_DEPTH), headers=auth | JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_by_content_type(
    client: httpx.Client, auth: dict[str, str], content_type: str
) -> None:
    for surface, path, headers in creates():
        response = client.post(
            path, content=b'{"prompt": "x"}', headers=(headers or auth) | {"Content-Type": content_type}
        )
        answer(surface, response, 400, f"Content-Type must be application/json, not {content_type!r}")


# -- fields: wrong types, unknown enums, long strings, NUL, images -------------------------------------

LONG = "y" * 100_000
PNG_TEXT = "aGVsbG8gd29ybGQ="  # valid Base64 of "hello world": not an image


class Field(NamedTuple):
    surface: str
    path: str
    body: dict[str, Any]
    message: str


FIELDS = {
    # wrong types
    "official-prompt-number": Field(
        "official", "/v1/videos/text2video", {"prompt": 5}, "prompt must be of type string"
    ),
    "official-cfg-string": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "cfg_scale": "0.5"},
        "cfg_scale must be of type number",
    ),
    "official-duration-number": Field(
        "official", "/v1/videos/text2video", {"prompt": "x", "duration": 5}, "duration must be of type string"
    ),
    "official-camera-array": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "camera_control": []},
        "camera_control must be of type object",
    ),
    "official-n-float": Field(
        "official", "/v1/images/generations", {"prompt": "x", "n": 1.5}, "n must be of type integer"
    ),
    "official-input-string": Field(
        "official", "/v1/videos/lip-sync", {"input": "video"}, "input must be of type object"
    ),
    "gateway-prompt-array": Field(
        "gateway", "/v1/video/generations", {"prompt": ["x"], "duration": 5}, "prompt must be of type string"
    ),
    "gateway-duration-string": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": "5"},
        "duration must be of type number",
    ),
    "gateway-metadata-array": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "metadata": []},
        "metadata must be of type object",
    ),
    "passthrough-duration-number": Field(
        "gateway",
        "/kling/v1/videos/text2video",
        {"prompt": "x", "duration": 5},
        "duration must be of type string",
    ),
    # unknown enum values
    "official-mode": Field(
        "official", "/v1/videos/text2video", {"prompt": "x", "mode": "turbo"}, "mode must be one of: std, pro"
    ),
    "official-aspect-ratio": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "aspect_ratio": "4:3"},
        "aspect_ratio must be one of: 16:9, 9:16, 1:1",
    ),
    "official-sound": Field(
        "official", "/v1/videos/text2video", {"prompt": "x", "sound": "loud"}, "sound must be one of: on, off"
    ),
    "official-lip-sync-mode": Field(
        "official",
        "/v1/videos/lip-sync",
        {"input": {"mode": "sing", "video_url": URL}},
        "input.mode must be one of: text2video, audio2video",
    ),
    "gateway-response-format": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "response_format": "b64_json"},
        "response_format must be one of: url",
    ),
    "gateway-metadata-mode": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "metadata": {"mode": "turbo"}},
        "metadata.mode must be one of: std, pro",
    ),
    "passthrough-duration": Field(
        "gateway",
        "/kling/v1/videos/text2video",
        {"prompt": "x", "duration": "11"},
        "duration must be one of: 3, 4, 5, 6, 7, 8, 9, 10",
    ),
    # very long strings: refused by their limit, never echoed back
    "official-long-prompt": Field(
        "official", "/v1/videos/text2video", {"prompt": LONG}, "prompt must be at most 2500 characters"
    ),
    "official-long-negative": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "negative_prompt": LONG},
        "negative_prompt must be at most 2500 characters",
    ),
    "official-long-external-id": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "external_task_id": LONG},
        "external_task_id must be at most 256 characters",
    ),
    "official-long-callback": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "callback_url": "https://x/" + LONG},
        "callback_url must be at most 2048 characters",
    ),
    "official-long-model": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "model_name": LONG},
        "model_name must be one of: kling-v1, kling-v1-6, kling-v2-master, kling-v2-1-master, "
        "kling-v2-5-turbo, kling-v2-6, kling-v3",
    ),
    "gateway-long-prompt": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": LONG, "duration": 5},
        "prompt must be at most 2500 characters",
    ),
    "gateway-long-style": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "metadata": {"style": LONG}},
        "metadata.style must be at most 64 characters",
    ),
    "passthrough-long-prompt": Field(
        "gateway",
        "/kling/v1/videos/image2video",
        {"image": URL, "prompt": LONG},
        "prompt must be at most 2500 characters",
    ),
    # invalid Base64 images, and a data: prefix where raw Base64 is required
    "official-image-not-base64": Field(
        "official",
        "/v1/videos/image2video",
        {"image": "!!!not base64!!!"},
        "image: not a URL and not valid Base64",
    ),
    "official-image-not-an-image": Field(
        "official", "/v1/videos/image2video", {"image": PNG_TEXT}, "image: not a valid JPEG or PNG image"
    ),
    "official-image-truncated-padding": Field(
        "official",
        "/v1/videos/image2video",
        {"image": "aGVsbG8gd29ybGQ"},
        "image: not a URL and not valid Base64",
    ),
    "official-image-data-url": Field(
        "official",
        "/v1/videos/image2video",
        {"image": "data:image/png;base64,iVBORw0KGgo="},
        "image: send raw Base64 without the 'data:' prefix",
    ),
    "official-tail-data-url": Field(
        "official",
        "/v1/videos/image2video",
        {"model_name": "kling-v1-6", "mode": "pro", "image_tail": "DATA:image/jpeg;base64,/9j/"},
        "image_tail: send raw Base64 without the 'data:' prefix",
    ),
    "official-try-on-not-base64": Field(
        "official",
        "/v1/images/kolors-virtual-try-on",
        {"human_image": "%%%", "cloth_image": URL},
        "human_image: not a URL and not valid Base64",
    ),
    "official-expand-data-url": Field(
        "official",
        "/v1/images/editing/expand",
        {
            "image": "data:image/png;base64,AAAA",
            "up_expansion_ratio": 0.1,
            "down_expansion_ratio": 0.1,
            "left_expansion_ratio": 0.1,
            "right_expansion_ratio": 0.1,
        },
        "image: send raw Base64 without the 'data:' prefix",
    ),
    "official-audio-data-url": Field(
        "official",
        "/v1/videos/lip-sync",
        {
            "input": {
                "mode": "audio2video",
                "video_url": VIDEO_URL,
                "audio_type": "file",
                "audio_file": "data:audio/mp3;base64,AAAA",
            }
        },
        "input.audio_file: send raw Base64 without the 'data:' prefix",
    ),
    "official-audio-not-base64": Field(
        "official",
        "/v1/videos/lip-sync",
        {
            "input": {
                "mode": "audio2video",
                "video_url": VIDEO_URL,
                "audio_type": "file",
                "audio_file": "not*base64",
            }
        },
        "input.audio_file: not valid Base64 of an audio file",
    ),
    "gateway-image-not-base64": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "image": "!!!"},
        "image: not a URL and not valid Base64",
    ),
    "gateway-image-data-url": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "image": "data:image/png;base64,AAAA"},
        "image: send raw Base64 without the 'data:' prefix",
    ),
    "passthrough-image-not-an-image": Field(
        "gateway", "/kling/v1/videos/image2video", {"image": PNG_TEXT}, "image: not a valid JPEG or PNG image"
    ),
    "passthrough-tail-data-url": Field(
        "gateway",
        "/kling/v1/videos/image2video",
        {"image": URL, "image_tail": "data:,x"},
        "image_tail: send raw Base64 without the 'data:' prefix",
    ),
    # a callback URL whose host cannot even be decoded (an empty IDNA label)
    "official-callback-bad-idna": Field(
        "official",
        "/v1/videos/text2video",
        {"prompt": "x", "callback_url": "http://xn--/hook"},
        "callback_url must be an http or https URL",
    ),
    "gateway-callback-bad-idna": Field(
        "gateway",
        "/v1/video/generations",
        {"prompt": "x", "duration": 5, "metadata": {"callback_url": "https://xn--zz/"}},
        "callback_url must be an http or https URL",
    ),
    "passthrough-callback-bad-idna": Field(
        "gateway",
        "/kling/v1/videos/text2video",
        {"prompt": "x", "callback_url": "http://xn--/"},
        "callback_url must be an http or https URL",
    ),
}


@pytest.mark.parametrize("case", FIELDS.values(), ids=FIELDS.keys())
def test_bad_fields(backend: Backend, client: httpx.Client, auth: dict[str, str], case: Field) -> None:
    headers = auth if case.surface == "official" else KEY
    response = client.post(case.path, json=case.body, headers=headers)
    answer(case.surface, response, 400, case.message, code=1201)
    assert len(backend.tasks) == 0


def _jpeg_with_damaged_exif() -> str:
    """A real 400x300 JPEG whose EXIF names a tag stored past the end of the data."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, 40, 100)  # "Make", 40 chars at 100
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (1, 2, 3)).save(buffer, format="JPEG", exif=exif)
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_image_with_damaged_metadata_is_judged_by_its_pixels(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """Pillow warns about the EXIF; with warnings as errors (as this suite runs) that was a 500."""
    image = _jpeg_with_damaged_exif()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Image.open(io.BytesIO(base64.b64decode(image))).close()
    assert any(issubclass(w.category, UserWarning) for w in caught)  # Pillow does warn on it
    assert client.post("/v1/videos/image2video", json={"image": image}, headers=auth).status_code == 200
    generic = client.post(
        "/v1/video/generations", json={"prompt": "x", "duration": 5, "image": image}, headers=KEY
    )
    assert generic.status_code == 200, generic.text


def _png_declaring(width: int, height: int) -> str:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode()


def test_an_image_declaring_too_many_pixels_is_refused_as_such(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    image = _png_declaring(20_000, 20_000)  # 400 M pixels in a file of about 60 bytes
    answer = client.post("/v1/videos/image2video", json={"image": image}, headers=auth)
    assert answer.status_code == 400 and answer.json()["code"] == 1201
    assert "too many to decode" in answer.json()["message"]


@STORES
@pytest.mark.parametrize("value", ["a\u0000b", "\u0000", "nul at the end\u0000"])
def test_nul_characters_in_strings_are_data(
    backend: Backend, client: httpx.Client, auth: dict[str, str], value: str
) -> None:
    """Escaped NULs are legal JSON: they are stored and given back unchanged on both surfaces."""
    created = client.post(
        "/v1/videos/text2video", json={"prompt": value, "external_task_id": value}, headers=auth
    )
    assert created.status_code == 200, created.text
    task_id = created.json()["data"]["task_id"]
    found = client.get(f"/v1/videos/text2video/{task_id}", headers=auth).json()["data"]
    assert found["task_info"] == {"external_task_id": value}
    by_external = client.get("/v1/videos/text2video/" + value.replace("\u0000", "%00"), headers=auth)
    assert by_external.json()["data"]["task_id"] == task_id
    # The sk- key acts for the same account, whose external ids are unique: another one here.
    metadata = {"external_task_id": "gw" + value}
    generic = client.post(
        "/v1/video/generations", json={"prompt": value, "duration": 5, "metadata": metadata}, headers=KEY
    )
    assert generic.status_code == 200, generic.text
    assert backend.tasks.get(generic.json()["task_id"]).external_task_id == "gw" + value  # type: ignore[union-attr]


# -- query strings and paths ------------------------------------------------------------------------


PAGES = [
    ("pageSize", "-1", "pageSize must be >= 1"),
    ("pageSize", "0", "pageSize must be >= 1"),
    ("pageSize", "501", "pageSize must be <= 500"),
    ("pageSize", "9" * 40, "pageSize must be <= 500"),
    ("pageSize", "9" * 5000, "pageSize must be <= 500"),
    ("pageSize", "-" + "9" * 5000, "pageSize must be >= 1"),
    ("pageNum", "-9223372036854775809", "pageNum must be >= 1"),
    ("pageNum", "1001", "pageNum must be <= 1000"),
    ("pageSize", "", "pageSize must be an integer"),
    ("pageSize", "5.0", "pageSize must be an integer"),
    ("pageSize", "1e3", "pageSize must be an integer"),
    ("pageSize", "1_0", "pageSize must be an integer"),
    ("pageSize", " 5", "pageSize must be an integer"),
    ("pageSize", "+5", "pageSize must be an integer"),
    ("pageSize", "\u0665", "pageSize must be an integer"),  # an Arabic-Indic five
    ("pageNum", "0x10", "pageNum must be an integer"),
    ("pageNum", "\u0000", "pageNum must be an integer"),
]


@pytest.mark.parametrize(("name", "value", "message"), PAGES, ids=[f"{n}={v[:12]!r}" for n, v, _ in PAGES])
def test_bad_page_parameters(
    client: httpx.Client, auth: dict[str, str], name: str, value: str, message: str
) -> None:
    from mockkling.routes.official import CALLS
    from mockkling.validation import ACTIONS

    lists = [path for path in OFFICIAL_LISTS if path != "/account/costs"]
    # A list per task action, and the library lists (presets, custom elements), paged alike.
    assert len(lists) == len(ACTIONS) + len([call for call in CALLS if call.method == "GET"])
    for path in lists:
        official(client.get(path, params={name: value}, headers=auth), 400, 1201, message)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_time": "-1", "end_time": "5"}, "start_time must be >= 0"),
        ({"start_time": "x", "end_time": "5"}, "start_time must be an integer"),
        ({"start_time": "0", "end_time": "9" * 5000}, None),
        ({"start_time": "5", "end_time": "4"}, "end_time must not be earlier than start_time"),
        ({"end_time": "5"}, "start_time is required"),
    ],
)
def test_bad_cost_windows(
    client: httpx.Client, auth: dict[str, str], params: dict[str, str], message: str | None
) -> None:
    response = client.get("/account/costs", params=params, headers=auth)
    if message is None:  # a huge but well-formed window is simply everything
        assert response.status_code == 200, response.text
    else:
        official(response, 400, 1201, message)


@pytest.mark.parametrize(
    ("task_id", "shown"),
    [("x" * 10_000, "x" * 64), ("%00", "\u0000"), ("%FF%FE", "\ufffd\ufffd"), ("%20", " ")],
    ids=["10k-chars", "nul", "bad-utf8", "space"],
)
def test_hostile_task_ids(client: httpx.Client, auth: dict[str, str], task_id: str, shown: str) -> None:
    """An unknown id is 'does not exist' on every query route, echoed at most 64 characters long."""
    for path in OFFICIAL_QUERIES:
        response = client.get(path.replace("{task_id}", task_id), headers=auth)
        official(response, 404, 1203, f"task {shown} does not exist")
    for path in GATEWAY_QUERIES:
        response = client.get(path.replace("{task_id}", task_id), headers=KEY)
        gateway(response, 400, "task_not_exist", f"task {shown} does not exist")


# -- the body size limit -------------------------------------------------------------------------


LIMIT = 1000


class Streamed(NamedTuple):
    status: int
    body: dict[str, Any]
    consumed: int


def post_streamed(app: Any, path: str, headers: dict[str, str], chunks: Iterator[bytes]) -> Streamed:
    """POST straight into the ASGI app, the body pulled chunk by chunk: ``consumed`` is how many
    bytes the app asked for before it answered."""
    consumed = 0
    status = 0
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("mock", 80),
    }
    asyncio.run(app(scope, receive, send))
    return Streamed(status, orjson.loads(b"".join(parts)), consumed)


def endless(chunk: int = 256) -> Iterator[bytes]:
    """A JSON body that never ends, ``chunk`` bytes at a time."""
    yield b'{"prompt": "'
    while True:
        yield b"x" * chunk


@pytest.fixture
def limited(auth: dict[str, str]) -> tuple[Backend, Any]:
    backend = Backend(Config(max_body_bytes=LIMIT))
    return backend, create_app(backend)


def too_large(surface: str, result: Streamed, limit: int = LIMIT) -> None:
    message = f"Request body is larger than {limit} bytes"
    assert result.status == 413
    if surface == "official":
        assert result.body == {
            "code": 1200,
            "message": message,
            "request_id": result.body["request_id"],
            "data": None,
        }
    else:
        assert result.body == {"code": "request_too_large", "message": message, "data": None}


def test_a_streamed_body_over_the_limit_is_refused_without_reading_the_rest(
    limited: tuple[Backend, Any], auth: dict[str, str]
) -> None:
    backend, app = limited
    chunked = {"Transfer-Encoding": "chunked"}  # no length: only reading tells how long it is
    for surface, path, headers in creates():
        result = post_streamed(app, path, (headers or auth) | JSON | chunked, endless())
        too_large(surface, result)
        # It stopped within one chunk of the limit, of a body that never ends.
        assert LIMIT < result.consumed <= LIMIT + 256 + 12, (path, result.consumed)
    assert len(backend.tasks) == 0


def test_a_declared_length_over_the_limit_is_refused_before_any_byte(
    limited: tuple[Backend, Any], auth: dict[str, str]
) -> None:
    _backend, app = limited
    for surface, path, headers in creates():
        result = post_streamed(
            app, path, (headers or auth) | JSON | {"Content-Length": str(10**12)}, endless()
        )
        too_large(surface, result)
        assert result.consumed == 0, path


def test_a_declared_length_that_is_not_an_ascii_number_is_not_taken_for_one(auth: dict[str, str]) -> None:
    """ "²" is a digit to Python, not to HTTP: a server refuses such a header, and in process the
    body is read as if no length had been declared (it was a crash, answered 500)."""
    for length in ("²", "1²"):
        headers = auth | JSON | {"Content-Length": length}
        result = post_streamed(
            create_app(Backend()), "/v1/videos/text2video", headers, iter([b'{"prompt": "x"}'])
        )
        assert result.status == 200, (length, result.body)


def test_a_body_of_exactly_the_limit_is_read(limited: tuple[Backend, Any], auth: dict[str, str]) -> None:
    backend, app = limited
    bodies = {
        "/v1/videos/text2video": b'{"prompt": "x"}',
        "/v1/video/generations": b'{"prompt": "x", "duration": 5}',
    }
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://mock") as client:
        for surface, path, headers in creates():
            if path not in bodies:
                continue
            padded = bodies[path].ljust(LIMIT)  # trailing whitespace is valid JSON
            assert client.post(path, content=padded, headers=(headers or auth) | JSON).status_code == 200
            response = client.post(path, content=padded + b" ", headers=(headers or auth) | JSON)
            answer(surface, response, 413, f"Request body is larger than {LIMIT} bytes")
    assert len(backend.tasks) == 2


def test_the_default_limit_is_the_documented_32_mib(auth: dict[str, str]) -> None:
    assert Config().max_body_bytes == 32 * 1024 * 1024
    assert "`max_body_bytes` (default 32 MiB)" in SURFACES.read_text()
    result = post_streamed(
        create_app(Backend()),
        "/v1/videos/text2video",
        auth | JSON | {"Content-Length": str(32 * 1024 * 1024 + 1)},
        endless(),
    )
    too_large("official", result, 32 * 1024 * 1024)
    assert result.consumed == 0


def test_the_limit_is_configurable(tmp_path: Path) -> None:
    env = {"MOCKKLING_MAX_BODY_BYTES": "2048"}
    assert build_config(_parser().parse_args(["serve"]), env).max_body_bytes == 2048
    toml = tmp_path / "mock.toml"
    toml.write_text("max_body_bytes = 4096\n")
    assert build_config(_parser().parse_args(["serve", "--config", str(toml)]), {}).max_body_bytes == 4096
    toml.write_text('max_body_bytes = "big"\n')
    with pytest.raises(ConfigError, match="max_body_bytes"):
        build_config(_parser().parse_args(["serve", "--config", str(toml)]), {})


@pytest.mark.slow
def test_over_a_real_socket_the_413_comes_before_the_body(auth: dict[str, str]) -> None:
    """A client that announces 10 GB and sends none of it gets its 413 at once."""
    with (
        LiveServer(create_app(Backend(Config(max_body_bytes=LIMIT)))) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        head = (
            "POST /v1/video/generations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {DEFAULT_API_KEY}\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000000\r\n\r\n"
        )
        sock.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    body = orjson.loads(rest.partition(b"\r\n\r\n")[2])
    assert body == {
        "code": "request_too_large",
        "message": f"Request body is larger than {LIMIT} bytes",
        "data": None,
    }


# -- a sweep: hostile values in every field of every create body ---------------------------------

HOSTILE_STRINGS = [
    "", " ", "\u0000", "a\u0000b", "%00", "..", "../../etc/passwd", "..%2f..%2fpyproject.toml", "/etc/passwd",
    "C:\\Windows\\win.ini", "\u202e", "\ufeff", "\u0665", "\U0001f600" * 100, "x" * 3000,
    "data:image/png;base64,iVBORw0KGgo=", "DATA:,x", "aGVsbG8gd29ybGQ=", "!!!", "====", "-0", "0x10", "NaN",
    "http://xn--/", "https://xn--zz/", "http://[::1", "http://[fe80::1%25eth0]/", "http://127.0.0.1@evil.example/",
    "http://2130706433/", "http://a b/", "http://x:99999/", "//127.0.0.1/x", "ftp://127.0.0.1/", "mailto:x",
    "https://" + "a" * 70 + ".example/", "{{7*7}}", "${jndi:ldap://127.0.0.1/x}", "' OR 1=1 --", "<script>",
]  # fmt: skip
HOSTILE_NUMBERS: list[Any] = [
    -1,
    0,
    1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    0.5,
    1e-300,
    5e-324,
    1e308,
    -1e308,
]
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/v1/videos/text2video": {"prompt": "x"},
    "/v1/videos/image2video": {"image": URL},
    "/v1/videos/multi-image2video": {"prompt": "x", "image_list": [{"image": URL}, {"image": URL}]},
    "/v1/videos/video-extend": {"video_id": "{video}"},
    "/v1/videos/lip-sync": {
        "input": {"video_url": VIDEO_URL, "mode": "text2video", "text": "hi", "voice_id": "v"}
    },
    "/v1/videos/effects": {"effect_scene": "hug", "input": {"images": [URL, URL], "duration": "5"}},
    "/v1/images/generations": {"prompt": "x"},
    "/v1/images/kolors-virtual-try-on": {"human_image": URL, "cloth_image": URL},
    "/v1/images/editing/expand": {
        "image": URL,
        "up_expansion_ratio": 0.1,
        "down_expansion_ratio": 0.1,
        "left_expansion_ratio": 0.1,
        "right_expansion_ratio": 0.1,
    },
    "/v1/images/omni-image": {"prompt": "x", "aspect_ratio": "1:1"},
    "/v1/images/multi-image2image": {"subject_image_list": [{"subject_image": URL}]},
    "/v1/audio/text-to-audio": {"prompt": "x", "duration": 5},
    "/v1/audio/video-to-audio": {"video_url": VIDEO_URL},
    "/v1/audio/tts": {"text": "x", "voice_id": "genshin_vindi2"},
    "/v1/general/custom-voices": {"voice_name": "x", "voice_url": VIDEO_URL},
    "/v1/general/delete-voices": {"voice_id": "x"},
    "/v1/general/custom-elements": {
        "element_name": "x",
        "element_description": "y",
        "element_frontal_image": URL,
        "element_refer_list": [{"image_url": URL}],
    },
    "/v1/general/delete-elements": {"element_id": "1"},
    "/v1/general/ai-multi-shot": {"element_frontal_image": URL},
    "/v1/video/generations": {"prompt": "x", "duration": 5},
    "/kling/v1/videos/text2video": {"prompt": "x"},
    "/kling/v1/videos/image2video": {"image": URL},
    # 2026 video endpoints (the sessions named do not exist: their fields are still checked first)
    "/v1/videos/omni-video": {"prompt": "x", "aspect_ratio": "16:9"},
    "/v1/videos/motion-control": {
        "image_url": URL,
        "video_url": VIDEO_URL,
        "character_orientation": "image",
        "mode": "std",
    },
    "/v1/videos/avatar/image2video": {"image": URL, "sound_file": "https://example.com/a.mp3"},
    "/v1/videos/identify-face": {"video_id": "{video}"},
    "/v1/videos/advanced-lip-sync": {
        "session_id": "s",
        "face_choose": [
            {
                "face_id": "0",
                "audio_id": "a",
                "sound_start_time": 0,
                "sound_end_time": 2000,
                "sound_insert_time": 0,
            }
        ],
    },
    "/v1/videos/multi-elements": {"session_id": "s", "edit_mode": "removal", "prompt": "x"},
    "/v1/videos/multi-elements/init-selection": {"video_id": "{video}"},
    "/v1/videos/multi-elements/add-selection": {
        "session_id": "s",
        "frame_index": 0,
        "points": [{"x": 0, "y": 0}],
    },
    "/v1/videos/multi-elements/delete-selection": {
        "session_id": "s",
        "frame_index": 0,
        "points": [{"x": 0, "y": 0}],
    },
    "/v1/videos/multi-elements/clear-selection": {"session_id": "s"},
    "/v1/videos/multi-elements/preview-selection": {"session_id": "s"},
    "/v1/videos/image-recognize": {"image": URL},
}


def _leaves(schema: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, JSON type) of every string, integer and number a request body schema describes."""
    if not isinstance(schema, dict):
        return
    for part in [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        yield from _leaves(part, path)
    kind = schema.get("type")
    if kind in ("string", "integer", "number"):
        yield path, kind
    for name, child in schema.get("properties", {}).items():
        yield from _leaves(child, (*path, name))
    if "items" in schema:
        yield from _leaves(schema["items"], (*path, 0))


def _with(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of ``body`` with ``value`` at ``path``, creating the objects and lists on the way."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) and body else [{}]
        items[0] = _with(items[0], rest, value)
        return items
    out = dict(body) if isinstance(body, dict) else {}
    out[head] = _with(out.get(head), rest, value)
    return out


@STORES
@pytest.mark.slow  # a sweep of thousands of requests
def test_hostile_values_in_every_field_never_break_a_surface(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """Every string, integer and number field of every create body, one at a time, set to each
    hostile value: the answer is a task or a refusal in the surface's envelope, never a 500,
    with tasks in memory or in a state file."""
    video = client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=auth).json()["data"]["task_id"]
    backend.advance(60)
    assert set(VALID_BODIES) == {path for _s, path, _h in creates()}, "a new create needs a valid body here"
    sent = 0
    for surface, path, headers in creates():
        valid = orjson.loads(orjson.dumps(VALID_BODIES[path]).replace(b"{video}", f"{video}-0".encode()))
        operation = next(op for p, m, op in SPEC.operations() if p == path and m == "post")
        schema = SPEC.inline(operation["requestBody"]["content"]["application/json"]["schema"])
        for field, kind in _leaves(schema):
            for value in HOSTILE_STRINGS if kind == "string" else HOSTILE_NUMBERS:
                response = client.post(path, json=_with(valid, field, value), headers=headers or auth)
                sent += 1
                where = (path, field, value if len(str(value)) < 80 else str(value)[:80])
                body = response.json()
                if surface == "official":
                    assert set(body) == {"code", "message", "request_id", "data"}, where
                    ok = (response.status_code, body["code"]) == (200, 0)
                    assert ok or (response.status_code, body["code"]) in ((400, 1200), (400, 1201)), where
                elif response.status_code == 200:
                    assert "task_id" in body or body["data"]["task_id"], where
                else:
                    assert response.status_code == 400 and body["code"] == "invalid_request", (where, body)
                    assert set(body) == {"code", "message", "data"} and body["data"] is None, where
    assert sent > 5000


def test_a_body_read_twice_is_refused_at_once_not_left_waiting() -> None:
    """read_body takes the body from the request's receive itself, which Starlette does not
    know about: a second read would wait for a client with nothing more to send."""
    from starlette.requests import Request

    from mockkling.jsonio import read_body

    messages = [{"type": "http.request", "body": b'{"a": 1}', "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # a client with nothing more to send
        return {"type": "http.disconnect"}

    async def twice() -> None:
        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        assert await read_body(request, 100) == b'{"a": 1}'
        with pytest.raises(RuntimeError, match="read already"):
            await asyncio.wait_for(read_body(request, 100), timeout=5)

    asyncio.run(twice())
