"""The transport ``mockkling serve`` gives uvicorn's protocol (connections._Coalesced): an
answer's head and small body leave in one write, nothing is held past the event loop's turn,
nothing is written to a connection the client has reset, and the rest of a transport's
interface reaches the real one."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from mockkling.connections import _Coalesced

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n"
BODY = b'{"code": 0}'


class _Recorder(asyncio.Transport):
    """A transport that records what is asked of it, with what, and answers each method with
    a value of its own. Like uvloop's, it raises on a write once it is closing."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write after the reset" if self.closing else "write", (bytes(data),)))
        if self.closing:
            raise RuntimeError("unable to perform operation: the handler is closed")

    def is_closing(self) -> bool:
        return self.closing

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name in {"calls", "closing", "write", "is_closing"}:
            return super().__getattribute__(name)
        calls = super().__getattribute__("calls")

        def method(*args: Any) -> Any:
            calls.append((name, args))
            return _answer(name)

        return method


def _answer(method: str) -> Any:
    return {"get_write_buffer_size": 7, "get_write_buffer_limits": (1, 2)}.get(method, f"{method} answer")


def _run(steps: Callable[[_Coalesced, _Recorder], Any]) -> tuple[Any, _Recorder]:
    """Run ``steps`` on a wrapper around a recorder inside an event loop, then let the loop
    finish its turn; what ``steps`` gave and the recorder."""

    async def main() -> tuple[Any, _Recorder]:
        inner = _Recorder()
        outer = _Coalesced(inner, asyncio.get_running_loop())
        result = steps(outer, inner)
        await asyncio.sleep(0)
        return result, inner

    return asyncio.run(main())


def _writes(recorder: _Recorder) -> list[bytes]:
    return [args[0] for name, args in recorder.calls if name == "write"]


def test_a_head_and_a_small_body_leave_in_one_write() -> None:
    _, inner = _run(lambda outer, _inner: (outer.write(HEAD), outer.write(BODY)))
    assert _writes(inner) == [HEAD + BODY]


def test_a_large_body_is_not_copied_onto_the_head() -> None:
    body = b"x" * (_Coalesced.JOIN_BYTES + 1)
    _, inner = _run(lambda outer, _inner: (outer.write(HEAD), outer.write(body)))
    assert _writes(inner) == [HEAD, body]


def test_a_head_alone_leaves_at_the_end_of_the_loop_turn() -> None:
    before, inner = _run(lambda outer, inner: (outer.write(HEAD), list(inner.calls))[1])
    assert before == []
    assert _writes(inner) == [HEAD]


def test_writelines_keeps_the_order_after_a_held_head() -> None:
    _, inner = _run(lambda outer, _inner: (outer.write(HEAD), outer.writelines([BODY, b"!"])))
    assert b"".join(_writes(inner)) == HEAD + BODY + b"!"


def test_a_held_head_leaves_before_the_connection_closes_or_ends() -> None:
    _, inner = _run(lambda outer, _inner: (outer.write(HEAD), outer.close()))
    assert inner.calls == [("write", (HEAD,)), ("close", ())]
    _, inner = _run(lambda outer, _inner: (outer.write(HEAD), outer.write_eof()))
    assert inner.calls == [("write", (HEAD,)), ("write_eof", ())]


def test_an_abort_drops_what_is_held() -> None:
    _, inner = _run(lambda outer, _inner: (outer.write(HEAD), outer.abort()))
    assert inner.calls == [("abort", ())]


def test_the_held_head_counts_as_buffered() -> None:
    size, _ = _run(lambda outer, _inner: (outer.write(HEAD), outer.get_write_buffer_size())[1])
    assert size == 7 + len(HEAD)


def _reset(outer: _Coalesced, inner: _Recorder) -> None:
    outer.write(HEAD)
    inner.closing = True  # the client resets the connection
    outer.write(BODY)
    outer.write(b"more")


def test_nothing_is_written_once_the_client_has_reset_the_connection() -> None:
    # uvloop raises on such a write, and uvicorn logs it as the app's error.
    _, inner = _run(_reset)
    assert inner.calls == []


def test_a_held_head_is_dropped_when_the_client_resets_before_the_turn_ends() -> None:
    def steps(outer: _Coalesced, inner: _Recorder) -> None:
        outer.write(HEAD)
        inner.closing = True

    _, inner = _run(steps)
    assert inner.calls == []


# Every other method of asyncio.Transport, with arguments to call it with.
_ARGS: dict[str, tuple[Any, ...]] = {
    "get_extra_info": ("peername", "no peer"),
    "set_protocol": (asyncio.Protocol(),),
    "set_write_buffer_limits": (10, 5),
}
_METHODS = sorted(
    name
    for name, _ in inspect.getmembers(asyncio.Transport, inspect.isfunction)
    if not name.startswith("_") and name not in {"write", "writelines", "is_closing"}
)


@pytest.mark.parametrize("method", _METHODS)
def test_every_other_transport_method_reaches_the_transport(method: str) -> None:
    """uvicorn (and whatever protocol runs on it) may call any of them; each reaches the real
    transport with what it was given, and gives back its answer."""
    args = _ARGS.get(method, ())
    result, inner = _run(lambda outer, _inner: getattr(outer, method)(*args))
    assert inner.calls == [(method, args)]
    if not method.startswith(("set_", "pause_", "resume_")) and method not in {"close", "abort", "write_eof"}:
        assert result == _answer(method)


def test_is_closing_is_the_transports() -> None:
    result, _ = _run(lambda outer, inner: (setattr(inner, "closing", True), outer.is_closing())[1])
    assert result is True
    result, _ = _run(lambda outer, _inner: outer.is_closing())
    assert result is False
