"""A corpus of broken images, sent in every image field of every create operation that
openapi.yaml declares: each is refused 400 naming the field, in the surface's envelope, never a
500 and never accepted. The image fields are read from the document, so a new endpoint's images
are covered as soon as it has a base body here (a test fails until it does)."""

from __future__ import annotations

import base64
import copy
import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    create_app,
    make_jwt,
)
from mockkling.errors import KlingError
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

URL = "https://example.com/a.png"
VIDEO_URL = "https://example.com/a.mp4"
SPEC = default_spec()
Path = tuple[str | int, ...]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _corpus() -> dict[str, bytes]:
    header = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 640, 360, 8, 2, 0, 0, 0))
    jpeg = io.BytesIO()
    Image.new("RGB", (640, 360), (9, 9, 9)).save(jpeg, "JPEG")
    raw = jpeg.getvalue()
    return {
        "png-without-idat": header + _chunk(b"IEND", b""),  # 45 bytes: Pillow's verify() let it by
        "png-idat-not-zlib": header + _chunk(b"IDAT", b"not zlib data") + _chunk(b"IEND", b""),
        "jpeg-without-scan": raw[: raw.index(b"\xff\xda")] + b"\xff\xd9",
        "jpeg-cut-short": raw[: len(raw) // 2],
        # valid zlib, one row of 360: Pillow decodes it without a word, leaving the rest blank
        "png-one-row": header
        + _chunk(b"IDAT", zlib.compress(b"\x00" + b"\x10" * 640 * 3))
        + _chunk(b"IEND", b""),
    }


CORPUS = {name: base64.b64encode(raw).decode() for name, raw in _corpus().items()}

# Valid bodies per create operation, holding every image field the operation has (a URL each);
# several where fields exclude each other.
BASES: dict[str, list[dict[str, Any]]] = {
    "createImage2Video": [
        {"model_name": "kling-v1-6", "mode": "pro", "image": URL, "image_tail": URL},
        {
            "model_name": "kling-v1",
            "image": URL,
            "static_mask": URL,
            "dynamic_masks": [{"mask": URL, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}],
        },
    ],
    "createMultiImage2Video": [{"prompt": "a", "image_list": [{"image": URL}, {"image": URL}]}],
    "createVideoEffects": [
        {"effect_scene": "bloombloom", "input": {"image": URL, "duration": "5"}},
        {"effect_scene": "hug_pro", "input": {"images": [URL, URL], "duration": "5"}},
    ],
    "createImageGeneration": [{"model_name": "kling-v1", "prompt": "a", "image": URL}],
    "createVirtualTryOn": [{"human_image": URL, "cloth_image": URL}],
    "createImageExpand": [
        {
            "image": URL,
            "up_expansion_ratio": 0.1,
            "down_expansion_ratio": 0.1,
            "left_expansion_ratio": 0.1,
            "right_expansion_ratio": 0.1,
        }
    ],
    "createVideoGeneration": [
        {"model": "kling-v1", "prompt": "a", "image": URL, "duration": 5, "metadata": {"image_tail": URL}}
    ],
    "createOmniVideo": [{"prompt": "a walk", "aspect_ratio": "16:9", "image_list": [{"image_url": URL}]}],
    "createMotionControl": [
        {"image_url": URL, "video_url": VIDEO_URL, "character_orientation": "image", "mode": "std"}
    ],
    "createAvatarImage2Video": [{"image": URL, "sound_file": "https://example.com/a.mp3"}],
    # A multi-element edit needs a selection session: made by init-selection when the test runs.
    "createMultiElements": [
        {
            "session_id": "<session>",
            "edit_mode": "addition",
            "image_list": [{"image": URL}],
            "prompt": "Using the context of <<<video_1>>>, seamlessly add a hat from <<<image_1>>>",
        }
    ],
    "imageRecognize": [{"image": URL}],
    "createOmniImage": [{"prompt": "<<<image_1>>> in a garden", "image_list": [{"image": URL}]}],
    "createMultiImage2Image": [
        {"subject_image_list": [{"subject_image": URL}], "scene_image": URL, "style_image": URL}
    ],
    "createAiMultiShot": [{"element_frontal_image": URL}],
    "createCustomElement": [
        {
            "element_name": "cat",
            "element_description": "a cat",
            "element_frontal_image": URL,
            "element_refer_list": [{"image_url": URL}],
        }
    ],
    "createGatewayImage2Video": [
        {"image": URL, "image_tail": URL},
        {
            "image": URL,
            "static_mask": URL,
            "dynamic_masks": [{"mask": URL, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}],
        },
    ],
}


def _image_paths(schema: Any, path: Path = ()) -> Iterator[Path]:
    """Where a schema (references inlined) takes an image: ``Image`` is the only string schema
    whose description starts 'An http(s) URL (not fetched) or raw Base64'."""
    if not isinstance(schema, dict):
        return
    if schema.get("description", "").startswith("An http(s) URL (not fetched) or raw Base64"):
        yield path
        return
    for name, sub in schema.get("properties", {}).items():
        yield from _image_paths(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from _image_paths(schema["items"], (*path, 0))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            yield from _image_paths(sub, path)


def _operations() -> Iterator[tuple[str, str, Path]]:
    for route, method, op in SPEC.operations():
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if method != "post" or schema is None:
            continue
        for path in dict.fromkeys(_image_paths(SPEC.inline(schema))):
            yield op["operationId"], route, path


CASES = list(_operations())


def _has(body: Any, path: Path) -> bool:
    for step in path:
        if isinstance(step, int):
            if not isinstance(body, list) or len(body) <= step:
                return False
        elif not isinstance(body, dict) or step not in body:
            return False
        body = body[step]
    return True


def _put(body: Any, path: Path, value: str) -> None:
    for step in path[:-1]:
        body = body[step]
    body[path[-1]] = value


def _name(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def test_every_create_with_images_has_a_base_body() -> None:
    missing = {
        (op, _name(path)) for op, _route, path in CASES if not any(_has(b, path) for b in BASES.get(op, []))
    }
    assert not missing, f"add a base body with these image fields to BASES: {sorted(missing)}"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    backend = Backend(Config(seed=11))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        yield client


@pytest.mark.parametrize("broken", CORPUS, ids=CORPUS)
@pytest.mark.parametrize(("operation", "route", "path"), CASES, ids=[f"{c[0]}:{_name(c[2])}" for c in CASES])
def test_a_broken_image_is_refused_naming_its_field(
    client: httpx.Client, operation: str, route: str, path: Path, broken: str
) -> None:
    base = next(b for b in BASES[operation] if _has(b, path))
    body = copy.deepcopy(base)
    _put(body, path, CORPUS[broken])
    gateway = route.startswith(("/v1/video/", "/kling/"))
    token = DEFAULT_API_KEY if gateway else f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"
    if body.get("session_id") == "<session>":
        init = client.post(
            "/v1/videos/multi-elements/init-selection",
            json={"video_url": VIDEO_URL},
            headers={"Authorization": token},
        )
        body["session_id"] = init.json()["data"]["session_id"]
    answer = client.post(route, json=body, headers={"Authorization": token})
    assert answer.status_code == 400, answer.text
    refusal = answer.json()
    assert refusal["code"] == ("invalid_request" if gateway else 1201)
    assert _name(path) in refusal["message"] or path[-1] in refusal["message"], refusal


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_whole_pngs_of_every_kind_are_taken(mode: str) -> None:
    """The row count check knows every PNG colour type and bit depth Pillow writes."""
    from mockkling.media import check_image

    out = io.BytesIO()
    Image.new(mode, (640, 360)).save(out, "PNG")
    assert check_image("image", base64.b64encode(out.getvalue()).decode()) == (640, 360)


def test_an_interlaced_png_is_judged_by_its_seven_passes() -> None:
    """Adam7: each pass has rows of its own width; the whole stream is taken, one short is not."""
    from mockkling.media import check_image

    width, height = 641, 361  # sizes that leave partial blocks in every pass
    passes = (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    )
    size = sum(
        -(-(height - row) // rstep) * (1 + 3 * -(-(width - col) // cstep))
        for col, row, cstep, rstep in passes
    )
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1))

    def png(data: bytes) -> str:
        return base64.b64encode(head + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")).decode()

    assert check_image("image", png(bytes(size))) == (width, height)
    with pytest.raises(KlingError, match="not a valid JPEG or PNG image"):
        check_image("image", png(bytes(size - 1)))
