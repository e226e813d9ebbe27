"""The transport ``mockkling serve`` gives uvicorn's protocol (connections._Coalesced): an
answer's head and small body leave in one write, nothing is held past the event loop's turn,
and the rest of a transport's interface reaches the real one."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from mockkling.connections import _Coalesced


class _Recorder(asyncio.Transport):
    """A transport that records what is asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", (bytes(data),)))

    def is_closing(self) -> bool:
        return self.closing

    def __getattribute__(self, name: str) -> Any:
        # Any other method of the interface: recorded, with what it was given.
        if name.startswith("_") or name in {"calls", "closing", "write", "is_closing"}:
            return super().__getattribute__(name)
        calls = super().__getattribute__("calls")
        return lambda *args: calls.append((name, args)) or _RESULTS.get(name)


_RESULTS: dict[str, Any] = {"get_write_buffer_size": 0, "get_write_buffer_limits": (1, 2)}


def _writes(recorder: _Recorder) -> list[bytes]:
    return [args[0] for name, args in recorder.calls if name == "write"]


def test_a_head_and_a_small_body_leave_in_one_write() -> None:
    async def main() -> list[bytes]:
        inner = _Recorder()
        outer = _Coalesced(inner, asyncio.get_running_loop())
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        outer.write(b'{"code": 0}')
        await asyncio.sleep(0)
        return _writes(inner)

    assert asyncio.run(main()) == [b'HTTP/1.1 200 OK\r\n\r\n{"code": 0}']


def test_a_head_alone_leaves_at_the_end_of_the_loop_turn() -> None:
    async def main() -> tuple[list[bytes], list[bytes]]:
        inner = _Recorder()
        outer = _Coalesced(inner, asyncio.get_running_loop())
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        before = _writes(inner)
        await asyncio.sleep(0)
        return before, _writes(inner)

    before, after = asyncio.run(main())
    assert before == []
    assert after == [b"HTTP/1.1 200 OK\r\n\r\n"]


def test_a_held_head_leaves_before_the_connection_closes() -> None:
    async def main() -> list[str]:
        inner = _Recorder()
        outer = _Coalesced(inner, asyncio.get_running_loop())
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        outer.close()
        return [name for name, _args in inner.calls]

    assert asyncio.run(main()) == ["write", "close"]


# Every public method of asyncio.Transport, with arguments to call it with.
_ARGS: dict[str, tuple[Any, ...]] = {
    "get_extra_info": ("peername", None),
    "set_protocol": (asyncio.Protocol(),),
    "set_write_buffer_limits": (10, 5),
    "writelines": ([b"a" * 2000],),
}
_METHODS = sorted(
    name
    for name, member in inspect.getmembers(asyncio.Transport, inspect.isfunction)
    if not name.startswith("_") and name not in {"write", "is_closing"}
)


@pytest.mark.parametrize("method", _METHODS)
def test_every_other_transport_method_reaches_the_transport(method: str) -> None:
    """uvicorn (and whatever protocol runs on it) may call any of them."""

    async def main() -> list[str]:
        inner = _Recorder()
        outer = _Coalesced(inner, asyncio.get_running_loop())
        getattr(outer, method)(*_ARGS.get(method, ()))
        return [name for name, _args in inner.calls]

    names = asyncio.run(main())
    expected = "write" if method == "writelines" else method
    assert expected in names
