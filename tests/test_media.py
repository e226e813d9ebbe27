"""Result files clients really download: MP4s a real demuxer and decoder (PyAV) accept with the
duration the task claims, PNGs Pillow decodes, served with the right type and length, HEAD,
byte ranges, expiry after ``media_ttl_seconds``, and nothing but the mock's own files."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from mockkling import Backend, Config, create_app
from mockkling.media import stretch_mp4, video_file
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"
EXTEND = "/v1/videos/video-extend"
IMAGES = "/v1/images/generations"


def _create(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> str:
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["task_id"]
    return task_id


def _result(client: httpx.Client, auth: dict[str, str], path: str, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"{path}/{task_id}", headers=auth).json()["data"]
    assert data["task_status"] == "succeed", data
    result: dict[str, Any] = data["task_result"]
    return result


def _probe_mp4(content: bytes) -> tuple[float, int, str, tuple[int, int]]:
    """(duration in s, decoded frames, codec, size) as FFmpeg's demuxer and decoder see them."""
    with av.open(io.BytesIO(content), format="mp4") as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert container.duration is not None
        return (
            container.duration / av.time_base,
            frames,
            stream.codec_context.name,
            (stream.width, stream.height),
        )


# -- what the files are --------------------------------------------------------------------------


def test_videos_are_h264_mp4s_of_the_claimed_duration(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = _create(client, auth, T2V, {"prompt": "a", "duration": "10"})
    backend.advance(5)
    video = _result(client, auth, T2V, task_id)["videos"][0]
    extended = _create(client, auth, EXTEND, {"video_id": video["id"]})
    backend.advance(5)
    longer = _result(client, auth, EXTEND, extended)["videos"][0]
    assert (video["duration"], longer["duration"]) == ("10", "15")
    for item in (video, longer):
        response = client.get(item["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        assert int(response.headers["content-length"]) == len(response.content)
        seconds, frames, codec, size = _probe_mp4(response.content)
        assert seconds == pytest.approx(float(item["duration"]), abs=0.05)
        # kling-v1 (the default model) makes 720p in both modes; every clip has the same 120 frames.
        assert (frames, codec, size) == (120, "h264", (1280, 720))


@pytest.mark.parametrize(
    ("path", "body", "size"),
    [
        (T2V, {"model_name": "kling-v1-6", "mode": "pro", "aspect_ratio": "9:16"}, (1080, 1920)),
        (T2V, {"model_name": "kling-v1-6", "mode": "std", "aspect_ratio": "1:1"}, (720, 720)),
        (T2V, {"model_name": "kling-v1", "mode": "pro", "aspect_ratio": "9:16"}, (720, 1280)),  # 720p only
        # image2video has no aspect_ratio: the result takes the start frame's shape (1:2 -> 9:16).
        (
            "/v1/videos/image2video",
            {"model_name": "kling-v1-6", "mode": "pro", "image": "tall"},
            (1080, 1920),
        ),
    ],
    ids=["t2v-9:16-pro", "t2v-1:1-std", "t2v-720p-model", "i2v-frame-shape"],
)
def test_a_video_has_the_requested_shape_and_resolution(
    backend: Backend,
    client: httpx.Client,
    auth: dict[str, str],
    make_image: Any,
    path: str,
    body: dict[str, Any],
    size: tuple[int, int],
) -> None:
    if body.get("image") == "tall":
        body = {**body, "image": make_image(300, 600)}
    task_id = _create(client, auth, path, {"prompt": "a", **body})
    backend.advance(5)
    video = _result(client, auth, path, task_id)["videos"][0]
    extended = _create(client, auth, EXTEND, {"video_id": video["id"]})
    backend.advance(5)
    longer = _result(client, auth, EXTEND, extended)["videos"][0]
    for item, seconds in ((video, 5), (longer, 10)):  # an extension keeps its source's shape
        duration, _frames, _codec, got = _probe_mp4(client.get(item["url"]).content)
        assert (duration, got) == (pytest.approx(seconds, abs=0.05), size)


@pytest.mark.parametrize("seconds", [1, 3, 7, 20, 180])
def test_stretched_timelines_play_for_exactly_that_long(seconds: int) -> None:
    source = video_file("5").read_bytes()
    stretched = stretch_mp4(source, seconds)
    assert len(stretched) == len(source)  # only values change; every box keeps its place
    duration, frames, codec, _size = _probe_mp4(stretched)
    assert duration == pytest.approx(seconds, abs=0.01)
    assert (frames, codec) == (120, "h264")
    assert video_file(str(seconds)).read_bytes() == stretched


def test_every_shape_and_resolution_class_is_a_real_clip() -> None:
    for ratio, (w, h) in {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}.items():
        for resolution, short in {"720p": 720, "1080p": 1080, "4k": 2160}.items():
            _duration, frames, codec, size = _probe_mp4(video_file("5", ratio, resolution).read_bytes())
            assert (frames, codec, size) == (120, "h264", (short * w // min(w, h), short * h // min(w, h)))


def test_images_are_pngs_pillow_decodes(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    task_id = _create(client, auth, IMAGES, {"prompt": "a", "n": 3, "aspect_ratio": "4:3"})
    backend.advance(5)
    bodies = []
    for image in _result(client, auth, IMAGES, task_id)["images"]:
        response = client.get(image["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert int(response.headers["content-length"]) == len(response.content) < 4096
        with Image.open(io.BytesIO(response.content)) as img:
            assert (img.format, img.size) == ("PNG", (320, 240))
            img.load()  # decodes every pixel
        bodies.append(response.content)
    assert len(set(bodies)) == 3  # the images of one task differ


# -- HTTP: HEAD, ranges --------------------------------------------------------------------------


@pytest.fixture
def urls(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> dict[str, str]:
    video = _create(client, auth, T2V, {"prompt": "a"})
    image = _create(client, auth, IMAGES, {"prompt": "a"})
    backend.advance(5)
    return {
        "video": _result(client, auth, T2V, video)["videos"][0]["url"],
        "image": _result(client, auth, IMAGES, image)["images"][0]["url"],
    }


@pytest.mark.parametrize("kind", ["video", "image"])
def test_head_gives_the_headers_without_the_body(
    client: httpx.Client, urls: dict[str, str], kind: str
) -> None:
    full = client.get(urls[kind])
    head = client.head(urls[kind])
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "accept-ranges", "etag", "last-modified"):
        assert head.headers[name] == full.headers[name]
    assert head.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("kind", ["video", "image"])
def test_byte_ranges(client: httpx.Client, urls: dict[str, str], kind: str) -> None:
    full = client.get(urls[kind]).content
    size = len(full)
    part = client.get(urls[kind], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.content == full[:100]
    tail = client.get(urls[kind], headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, full[-10:])
    # A resumed download: from an offset to the end.
    rest = client.get(urls[kind], headers={"Range": f"bytes={size - 50}-"})
    assert rest.content == full[-50:]
    beyond = client.get(urls[kind], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    # A unit other than bytes is ignored (RFC 9110 14.2); a malformed bytes range is a 400.
    other_unit = client.get(urls[kind], headers={"Range": "pages=1-2"})
    assert (other_unit.status_code, other_unit.content) == (200, full)
    assert client.get(urls[kind], headers={"Range": "bytes=x-y"}).status_code == 400


def test_a_resumed_download_reassembles_a_valid_video(client: httpx.Client, urls: dict[str, str]) -> None:
    first = client.get(urls["video"], headers={"Range": "bytes=0-1023"}).content
    rest = client.get(urls["video"], headers={"Range": f"bytes={len(first)}-"}).content
    assert _probe_mp4(first + rest)[0] == pytest.approx(5, abs=0.05)


# -- when there is no file -----------------------------------------------------------------------


def _assert_cdn_404(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "404 Not Found"


def test_results_appear_only_when_the_task_succeeds(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = _create(client, auth, T2V, {"prompt": "a"})
    _assert_cdn_404(client.get(f"/media/videos/{task_id}.mp4"))
    backend.advance(1)
    _assert_cdn_404(client.get(f"/media/videos/{task_id}.mp4"))
    backend.advance(4)
    assert client.get(f"/media/videos/{task_id}.mp4").status_code == 200


def test_wrong_kind_index_and_unknown_ids_are_404(client: httpx.Client, urls: dict[str, str]) -> None:
    video_task = urls["video"].rsplit("/", 1)[1].removesuffix(".mp4")
    image_task = urls["image"].rsplit("/", 2)[1]
    for path in (
        f"/media/images/{video_task}/0.png",  # a video task has no images
        f"/media/videos/{image_task}.mp4",  # an image task has no video
        f"/media/images/{image_task}/1.png",  # n = 1
        f"/media/images/{image_task}/-1.png",
        f"/media/images/{image_task}/%D9%A0.png",  # an Arabic-Indic zero is not an index
        "/media/videos/no-such-task.mp4",
        "/media/nothing-here",
    ):
        _assert_cdn_404(client.get(path))


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/media/videos/..%2F..%2Fpyproject.toml.mp4",
        b"/media/videos/%2e%2e%2f%2e%2e%2fmockkling%2fassets%2fvideo-5s.mp4",
        b"/media/images/..%2F..%2F..%2Fetc%2Fpasswd/0.png",
        b"/media/videos/../../pyproject.toml",
        b"/media/images/x/..%2f..%2fopenapi.yaml",
    ],
)
def test_no_path_reaches_a_file_outside_the_results(client: httpx.Client, raw_path: bytes) -> None:
    request = client.build_request("GET", "http://mock/")
    request.url = request.url.copy_with(raw_path=raw_path)
    response = client.send(request)
    assert response.status_code == 404
    assert b"[project]" not in response.content and b"openapi" not in response.content


def test_media_errors_are_plain_text_not_the_api_envelope(client: httpx.Client) -> None:
    response = client.post("/media/videos/x.mp4")
    assert response.status_code == 405
    assert response.text == "405 Method Not Allowed"
    assert "GET" in response.headers["allow"]


# -- expiry --------------------------------------------------------------------------------------


@pytest.fixture
def expiring(auth: dict[str, str]) -> Iterator[tuple[Backend, httpx.Client]]:
    backend = Backend(Config(media_ttl_seconds=3600))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        yield backend, client


def test_links_expire_media_ttl_seconds_after_the_task_ends(
    expiring: tuple[Backend, httpx.Client], auth: dict[str, str]
) -> None:
    backend, client = expiring
    video = _create(client, auth, T2V, {"prompt": "a"})
    image = _create(client, auth, IMAGES, {"prompt": "a", "n": 2})
    backend.advance(5)  # both end now
    video_url = _result(client, auth, T2V, video)["videos"][0]["url"]
    image_urls = [i["url"] for i in _result(client, auth, IMAGES, image)["images"]]
    backend.advance(3599.999)
    for url in (video_url, *image_urls):
        assert client.get(url).status_code == 200
        assert client.head(url).status_code == 200
    backend.advance(0.001)
    for url in (video_url, *image_urls):
        _assert_cdn_404(client.get(url))
        _assert_cdn_404(client.get(url, headers={"Range": "bytes=0-9"}))
        assert client.head(url).status_code == 404
    # The task itself is still there, with the URLs it had.
    assert _result(client, auth, T2V, video)["videos"][0]["url"] == video_url


def test_links_never_expire_by_default(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    task_id = _create(client, auth, T2V, {"prompt": "a"})
    backend.advance(5 + 365 * 24 * 3600)
    assert client.get(f"/media/videos/{task_id}.mp4").status_code == 200
