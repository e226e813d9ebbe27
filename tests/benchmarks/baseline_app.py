"""The baseline the benchmark compares the mock against: a bare Starlette endpoint returning a
JSON body of a given size (and, for a POST, parsing the request's JSON body first, as any API
does), on the HTTP parser and event loop the mock runs on in that measure.

Run as ``python baseline_app.py PORT BODY_BYTES [HTTP LOOP]`` (default: httptools, uvloop).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(body_bytes: int) -> Starlette:
    skeleton = {"code": 0, "message": "SUCCEED", "request_id": "", "data": {"pad": ""}}
    overhead = len(JSONResponse(skeleton).body)
    payload = {**skeleton, "data": {"pad": "x" * max(0, body_bytes - overhead)}}

    async def endpoint(request: Request) -> JSONResponse:
        if request.method == "POST":
            await request.json()
        return JSONResponse(payload)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])


if __name__ == "__main__":
    port, size = int(sys.argv[1]), int(sys.argv[2])
    http, loop = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else ("httptools", "uvloop")
    uvicorn.run(
        make_app(size),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=http,
        loop=loop,
    )
