"""JSON over HTTP: a fast response class and a request-body reader that refuses clearly.

Two speed tricks live here (their worth in docs/benchmarks.md): ``json_answer`` gives what
``JSONResponse`` sends without building it, and ``read_body`` reads the body from the request's
``receive`` itself rather than through Starlette's stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .errors import KlingError

# A body larger than this is parsed in a worker thread; below it, parsing costs less than the
# hop to the thread (docs/benchmarks.md, thresholds).
PARSE_OFF_LOOP_BYTES: Final = 64 * 1024
# A body larger than this is checked (its images decoded) and made a task in a worker thread:
# any body with a Base64 picture in it. What a smaller body can hold decodes quickly: deflate
# packs at most ~1032:1, so 1 KB of Base64 is a 1-bit PNG of ~6 megapixels at most, where the
# byte count alone would let a 6 KB body carry a 36-megapixel picture (docs/benchmarks.md).
CHECK_OFF_LOOP_BYTES: Final = 1024
T = TypeVar("T")
# Where read_body leaves the size of the body it read, in the request's scope.
_BODY_SIZE: Final = "mockkling.body_size"
# No Kling request nests deeper than 5 levels (dynamic_masks[].trajectories[].x). A deeper body
# is refused before validation: a validator walks it recursively and would run out of stack.
MAX_DEPTH: Final = 32
# Python type of a parsed JSON value -> its name in JSON.
_JSON_TYPES: Final = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


_CONTENT_TYPE: Final = (b"content-type", b"application/json")


class JSONResponse(Response):
    """Starlette's JSONResponse, encoded with orjson (the same bytes, several times faster)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_answer(content: Any) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers ``JSONResponse(content)`` sends, without building the object: for
    an answer the request layer sends itself (the shortcut's; its worth in docs/benchmarks.md)."""
    body = orjson.dumps(content)
    return body, [(b"content-length", str(len(body)).encode("latin-1")), _CONTENT_TYPE]


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body; 413 as soon as it is known to exceed ``max_bytes``, without reading the rest.

    Read from the request's ``receive`` itself, its size kept in the scope: Starlette's
    ``request.stream()`` (an async generator) and ``request.state`` cost a create 7 µs in
    process and 12 µs of server CPU over HTTP (docs/benchmarks.md). Starlette does not know the
    body was read, so it is read once: a second read is refused here rather than left waiting
    for a client that has nothing more to send."""
    if _BODY_SIZE in request.scope:
        raise RuntimeError("the request body was read already")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:  # not "²"
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()  # gone before its body came
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
        more = message.get("more_body", False)
    request.scope[_BODY_SIZE] = size  # what off_loop decides by
    return b"".join(chunks)


def too_large(max_bytes: int) -> KlingError:
    """The official 413 / 1200 for a body over ``max_bytes``."""
    return KlingError(1200, f"Request body is larger than {max_bytes} bytes", http_status=413)


def check_content_type(content_type: str | None) -> None:
    """The official 400 / 1200 for a body declared as anything but JSON (none is taken as JSON)."""
    if content_type is not None and not _is_json_type(content_type):
        raise KlingError(1200, f"Content-Type must be application/json, not {content_type[:100]!r}")


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or the official 400 / 1200 saying what is wrong. A
    large body is parsed and checked in a worker thread (see :func:`off_loop`)."""
    check_content_type(request.headers.get("content-type"))
    raw = await read_body(request, max_bytes)
    if len(raw) > PARSE_OFF_LOOP_BYTES:
        return await anyio.to_thread.run_sync(json_object, raw)
    return json_object(raw)


async def off_loop(request: Request, call: Callable[[], T]) -> T:
    """``call()`` (checking a body, creating its task) here when the request's body was small,
    in a worker thread otherwise: decoding a body's images takes long enough that every other
    client would wait for it on the event loop."""
    if request.scope.get(_BODY_SIZE, 0) > CHECK_OFF_LOOP_BYTES:
        return await anyio.to_thread.run_sync(call)
    return call()


def json_object(raw: bytes) -> dict[str, Any]:
    """A body read whole, as a JSON object; the official 400 / 1200 saying what is wrong."""
    if not raw.strip():
        raise KlingError(1200, "Request body is empty: send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise KlingError(1200, _parse_error(raw, exc)) from None
    if not isinstance(body, dict):
        raise KlingError(1200, f"Request body must be a JSON object, not {_JSON_TYPES[type(body)]}")
    if too_deep(body):
        raise KlingError(1200, f"Request body is nested more than {MAX_DEPTH} levels deep")
    return body


def _parse_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    """Why a body is not JSON; bytes that are not UTF-8 are named as such (orjson's message for
    them speaks of surrogates)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"Request body is not valid UTF-8 (byte 0x{raw[bad.start]:02x} at offset {bad.start})"
    return f"Request body is not valid JSON: {str(exc)[:200]}"


def too_deep(body: dict[str, Any]) -> bool:
    """Whether any value sits more than MAX_DEPTH containers deep (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, dict | list):
                if depth >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False
