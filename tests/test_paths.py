"""Paths: no media URL reads anything but the mock's own result files, whatever its path holds,
in process and over a real socket; callbacks go only to allowed hosts, however the URL is
dressed up, and are never redirected or proxied elsewhere.

The media routes come from openapi.yaml (every path under /media/), so a new one is attacked
as soon as it is documented. Every hostile path is sent byte for byte as written here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from mockkling import Backend, Config, Timing, create_app, media
from mockkling.callbacks import host_allowed, parse_callback_url
from mockkling.config import DEFAULT_CALLBACK_HOSTS, CallbackSettings
from mockkling.limits import Limits
from mockkling.routes import media as media_routes
from mockkling.server import LiveServer
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

ROOT = Path(__file__).resolve().parent.parent
MEDIA_ROUTES = [path for path, method, _op in default_spec().operations() if path.startswith("/media/")]
# What each file outside the results would show if it leaked.
OUTSIDE = (b"[project]", b"openapi:", b"root:", b"[fonts]", b"mockkling")

# One path parameter's value, as sent on the wire.
SEGMENTS = [
    "..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "..%2F..%2Fpyproject.toml",
    "%2e%2e%2f%2e%2e%2fopenapi.yaml",
    "..%2f..%2fmockkling%2fassets%2fvideo-5s",
    "%252e%252e%252fpyproject.toml",  # encoded twice
    "..%5c..%5cpyproject.toml",  # backslashes
    "%c0%ae%c0%ae%c0%afpyproject.toml",  # overlong UTF-8 dots and slash
    "%2Fetc%2Fpasswd",  # absolute
    "%2F",
    "C:%5CWindows%5Cwin.ini",
    "%00",
    "..%00",
    "{task}%00",
    "{task}%00.txt",
    "%2e%2e%2f{task}",
    "{task}%2f..%2f{task}",
]
# Whole paths, as sent on the wire ({video} and {image} are real finished tasks).
PATHS = [
    "/media/../pyproject.toml",
    "/media/videos/../../pyproject.toml",
    "/media/videos/..%2f..%2fpyproject.toml",
    "/media/videos/%2e%2e/%2e%2e/openapi.yaml",
    "/media//etc/passwd",
    "/media/videos//etc/passwd.mp4",
    "/media/videos/{video}.mp4/../../../pyproject.toml",
    "/media/videos/{video}.mp4%00.txt",
    "/media/images/{image}/../../../etc/passwd",
    "/media/images/{image}/0.png/..",
    "/media/images/{image}/..%2f0.png",
    "/media/images/{image}/0.png%2f..%2f..%2fpyproject.toml",
    "/media/images/{image}/%2e%2e%2f0.png",
    "/media/images/{video}/0.png",  # a video task has no images
    "/media/videos/{image}.mp4",  # an image task has no video
    "/media/images/{image}/-0.png",
    "/media/images/{image}/0x0.png",
    "/media/images/{image}/%EF%BC%90.png",  # a full-width zero
]


def _hostile_paths(
    video: str, image: str, audio: str, face: str = "", selection: str = "", mask: str = ""
) -> list[str]:
    """Every segment in every parameter of every media route, the others valid; then PATHS."""
    valid = {
        "/media/videos/{task_id}.mp4": {"task_id": video},
        "/media/images/{task_id}/{index}.png": {"task_id": image, "index": "0"},
        # records of the endpoints that answer at once (mockkling/sessions.py)
        "/media/faces/{session_id}/{face_id}.png": {"session_id": face, "face_id": "0"},
        "/media/selections/{session_id}/{name}": {"session_id": selection, "name": "cover.png"},
        "/media/segmentations/{record_id}/{kind}.png": {"record_id": mask, "kind": "face_seg"},
        "/media/audios/{task_id}/{index}.mp3": {"task_id": audio, "index": "0"},
        "/media/audios/{task_id}/{index}.wav": {"task_id": audio, "index": "0"},
        "/media/voices/{voice_id}.mp3": {"voice_id": "genshin_vindi2"},
        "/media/elements/{element_id}/{index}.png": {"element_id": "829836802793406551", "index": "0"},
    }
    assert set(valid) == set(MEDIA_ROUTES), "a new media route needs its valid parameters here"
    out = []
    for route in MEDIA_ROUTES:
        ident = next(iter(valid[route].values()))  # the task, record, voice or element served
        for name in valid[route]:
            for segment in SEGMENTS:
                params = valid[route] | {name: segment.replace("{task}", ident)}
                out.append(route.format(**params))
    out += [path.format(video=video, image=image) for path in PATHS]
    return out


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file a media route hands to its file response."""
    files: list[Path] = []
    real = media_routes.MediaFile

    def spy(path: str | Path, *args: Any, **kwargs: Any) -> FileResponse:
        files.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(media_routes, "MediaFile", spy)
    return files


@pytest.fixture
def finished(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> tuple[str, ...]:
    """(video, image and audio task ids), all finished, then the ids of a face session, a
    selection session and an image segmentation."""
    ids = []
    for path, extra in (
        ("/v1/videos/text2video", {}),
        ("/v1/images/generations", {}),
        ("/v1/audio/text-to-audio", {"duration": 3}),
    ):
        response = client.post(path, json={"prompt": "a", **extra}, headers=auth)
        ids.append(response.json()["data"]["task_id"])
    backend.advance(60)
    video = {"video_url": "https://example.com/v.mp4"}
    for path in ("/v1/videos/identify-face", "/v1/videos/multi-elements/init-selection"):
        ids.append(client.post(path, json=video, headers=auth).json()["data"]["session_id"])
    images = client.post(
        "/v1/videos/image-recognize", json={"image": "https://example.com/a.png"}, headers=auth
    )
    ids.append(images.json()["data"]["task_result"]["images"][0]["url"].split("/")[-2])
    return tuple(ids)


def _inside_results(path: Path) -> bool:
    resolved = path.resolve()
    roots = (Path(media.__file__).resolve().parent / "assets", media._cache_dir().resolve())
    return any(resolved.is_relative_to(root) for root in roots)


def _asgi_get(app: Any, raw_path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET straight into the ASGI app with the path as a server delivers it (percent-decoded,
    nothing normalised: an HTTP client would resolve the dot segments first)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"mock")],
        "client": ("127.0.0.1", 50000),
        "server": ("mock", 80),
    }
    start: dict[str, Any] = {}
    body = b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal body
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return start["status"], dict(start["headers"]), body


def test_no_media_path_reads_outside_the_results(
    backend: Backend, finished: tuple[str, ...], served: list[Path]
) -> None:
    app = create_app(backend)
    paths = _hostile_paths(*finished)
    assert len(paths) > 60
    for path in paths:
        status, headers, body = _asgi_get(app, path)
        assert (status, body) == (404, b"404 Not Found"), path
        assert headers[b"content-type"].startswith(b"text/plain")
    assert served == []  # not one file was opened


def test_real_downloads_serve_only_result_files(
    client: httpx.Client, finished: tuple[str, ...], served: list[Path]
) -> None:
    """The control case: the same routes with valid parameters (and a query string that tries
    to name another file) serve the task's own file, which lives among the results."""
    video, image, *_ = finished
    for path in (f"/media/videos/{video}.mp4", f"/media/images/{image}/0.png"):
        for query in ("", "?file=../../pyproject.toml", "?path=%2Fetc%2Fpasswd"):
            response = client.get(path + query)
            assert response.status_code == 200, path + query
            assert not any(marker in response.content for marker in OUTSIDE)
    assert len(served) == 6 and all(_inside_results(path) for path in served)


def _raw_http(port: int, raw_path: str) -> tuple[bytes, bytes]:
    """GET ``raw_path`` exactly as written, over a socket: (status line, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


@pytest.mark.slow
def test_over_a_real_socket_too(backend: Backend, finished: tuple[str, ...], served: list[Path]) -> None:
    """uvicorn parses and decodes the path itself: the same answers, byte for byte on the wire."""
    with LiveServer(create_app(backend)) as server:
        for path in _hostile_paths(*finished):
            status, body = _raw_http(server.port, path)
            assert (status, body) == (b"HTTP/1.1 404 Not Found", b"404 Not Found"), path
        ok, video = _raw_http(server.port, f"/media/videos/{finished[0]}.mp4")
    assert ok == b"HTTP/1.1 200 OK" and video == media.video_file("5").read_bytes()
    assert len(served) == 1


def test_result_files_are_not_api_calls_for_the_rate_limit(auth: dict[str, str]) -> None:
    """Clients that send their credentials to every URL download result files at any rate:
    a CDN link is not an API call (the fuzz runner found a 429, undocumented there)."""
    backend = Backend(Config(seed=3, timing=Timing(0, 0), limits=Limits(rate=1, per_seconds=60)))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        created = client.post("/v1/videos/text2video", json={"prompt": "a"}, headers=auth)  # the token
        video = f"/media/videos/{created.json()['data']['task_id']}.mp4"
        assert [client.get(video, headers=auth).status_code for _ in range(3)] == [200] * 3
        assert client.get("/openapi.yaml", headers=auth).status_code == 200
        refused = client.get("/v1/videos/text2video", headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (429, 1302)  # the API is still limited


# -- callbacks: only allowed hosts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1@evil.example/hook",  # userinfo: the host is after the @
        "http://127.0.0.1:80@evil.example/hook",
        "http://localhost%2f@evil.example/hook",
        "http://evil.example#@127.0.0.1/hook",  # a fragment is not the host
        "http://evil.example?@127.0.0.1/hook",  # nor a query
        "http://127.0.0.1.evil.example/hook",
        "http://localhost.evil.example/hook",
        "http://evil-localhost/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one number: a resolver would take it, the check does not
        "http://0x7f000001/hook",
        "http://127.1/hook",
        "http://[::ffff:7f00:1]/hook",  # 127.0.0.1 as IPv4-mapped IPv6: not ::1
        "http://[::ffff:169.254.169.254]/latest",
        "http://lo\u0441alhost/hook",  # a Cyrillic "es" where the "c" is
        "http://localhost%00.evil.example/hook",
    ],
)
def test_disguised_hosts_are_not_allowed(url: str) -> None:
    """The host is read with the parser the sender uses (httpx), so what is checked is where a
    request would go; none of these is an allowed host by default."""
    host = parse_callback_url(url).host
    assert not host_allowed(host, DEFAULT_CALLBACK_HOSTS), (url, host)


def test_backslash_userinfo_is_read_as_the_sender_reads_it() -> None:
    """Parsers disagree on "evil\\@127.0.0.1": what counts is that the check and the request read
    the same host, since both use httpx."""
    url = "http://evil.example\\@127.0.0.1:9/hook"
    assert parse_callback_url(url).host == httpx.URL(url).host == "127.0.0.1"


class Recorder:
    """A loopback HTTP server that records paths; ``/hop`` redirects to ``target``."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.target = ""
        self._lock = threading.Lock()

    async def endpoint(self, request: Request) -> Response:
        with self._lock:
            self.paths.append(request.url.path)
        if request.url.path == "/hop":
            return Response(status_code=307, headers={"Location": self.target})
        return Response(status_code=200)


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, str, Recorder, str]]:
    """Two recorders: the first reached as localhost (allowed), the second as 127.0.0.1 (not)."""
    first, second = Recorder(), Recorder()
    servers = [
        LiveServer(Starlette(routes=[Route("/{p:path}", r.endpoint, methods=["POST", "GET"])]))
        for r in (first, second)
    ]
    with servers[0], servers[1]:
        yield first, f"http://localhost:{servers[0].port}", second, f"http://127.0.0.1:{servers[1].port}"


def _callback_backend() -> Backend:
    settings = CallbackSettings(
        allowed_hosts=("localhost",), attempts=2, backoff_seconds=0.01, timeout_seconds=5
    )
    backend = Backend(Config(seed=3, callbacks=settings))
    backend.use_manual_clock()
    return backend


def _run_lifecycle(backend: Backend, callback_url: str) -> str:
    try:
        task = backend.create_task("acct", "text2video", {"prompt": "x", "callback_url": callback_url})
        backend.advance(60)
        assert backend.callbacks.flush(10.0)
    finally:
        backend.close()
    return task.task_id


@pytest.mark.slow
def test_a_redirect_to_another_host_is_not_followed(recorders: tuple[Recorder, str, Recorder, str]) -> None:
    allowed, allowed_url, other, other_url = recorders
    allowed.target = f"{other_url}/stolen"
    backend = _callback_backend()
    task_id = _run_lifecycle(backend, f"{allowed_url}/hop")
    assert allowed.paths == ["/hop"] * 6  # three statuses, two attempts each: a 307 is no answer
    assert other.paths == []
    assert {d.http_status for d in backend.callbacks.deliveries(task_id)} == {307}


@pytest.mark.slow
def test_proxy_settings_in_the_environment_are_ignored(
    recorders: tuple[Recorder, str, Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would be a host nobody allowed: callbacks connect to the URL's host directly."""
    allowed, allowed_url, proxy, proxy_url = recorders
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    _run_lifecycle(_callback_backend(), f"{allowed_url}/direct")
    assert allowed.paths == ["/direct"] * 3
    assert proxy.paths == []
