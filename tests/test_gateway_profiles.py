"""The gateway profiles ppwapi and new-api, field for field against the gateways' own source.

Each test names the file and function of the repository it holds the mock to:
pipiwei123/ppwapi (the seed's gateway) and QuantumNous/new-api (mainline), read as
docs/gateway-profiles.md lists. The seed profile (the default) is tests/test_gateway.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockkling import DEFAULT_API_KEY, Backend, Config, FailRule, Timing, create_app, gateway_profiles
from mockkling.cli import _parser, build_config
from mockkling.config import ConfigError
from mockkling.gateway_profiles import (
    NEW_API,
    PPWAPI,
    PROFILES,
    Body,
    Refusal,
    new_api_create,
    ppwapi_create,
)
from mockkling.gojson import parse
from mockkling.transport import SyncASGITransport

KEY = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
IMAGE = "https://example.com/person.jpg"
GEN = "/v1/video/generations"
RID = "20260101000000000000000abcdefgh"


def mock(gateway: str, **config: Any) -> tuple[Backend, httpx.Client]:
    backend = Backend(Config(seed=7, gateway=gateway, fail_rules=[FailRule("forbidden")], **config))
    backend.use_manual_clock()
    client = httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")
    return backend, client


@pytest.fixture
def ppwapi() -> Iterator[tuple[Backend, httpx.Client]]:
    backend, client = mock(PPWAPI)
    with client:
        yield backend, client


@pytest.fixture
def newapi() -> Iterator[tuple[Backend, httpx.Client]]:
    backend, client = mock(NEW_API)
    with client:
        yield backend, client


def task_error(response: httpx.Response, status: int, code: str) -> str:
    """dto.TaskError as the relay answers it: ``{"code", "message", "data": null}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "data"} and body["data"] is None, body
    assert body["code"] == code, body
    message: str = body["message"]
    return message


def middleware_error(response: httpx.Response, status: int, *, with_code: bool) -> dict[str, Any]:
    """middleware/utils.go abortWithOpenAiMessage: OpenAI-style, the message ending in the
    request id (common.MessageWithRequestId; middleware/request-id.go)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(response.json()) == {"error"}
    assert set(error) == ({"message", "type", "code"} if with_code else {"message", "type"})
    assert error["type"] == "new_api_error"
    rid = response.headers["X-Oneapi-Request-Id"]
    assert re.fullmatch(r"\d{14}\d+[0-9a-f]{8}", rid), rid
    assert error["message"].endswith(f" (request id: {rid})")
    return error


# -- choosing a profile ----------------------------------------------------------------------------


def test_the_profile_comes_from_the_flag_the_file_and_the_environment(tmp_path: Any) -> None:
    assert Config().gateway == "seed"
    assert build_config(_parser().parse_args(["serve", "--gateway", "ppwapi"]), {}).gateway == "ppwapi"
    path = tmp_path / "mockkling.toml"
    path.write_text('gateway = "new-api"\n')
    assert Config.from_file(path).gateway == "new-api"
    assert Config().merge_env({"MOCKKLING_GATEWAY": "ppwapi"}).gateway == "ppwapi"
    # The flag wins over the environment, which wins over the file.
    args = _parser().parse_args(["serve", "--config", str(path), "--gateway", "seed"])
    assert build_config(args, {"MOCKKLING_GATEWAY": "ppwapi"}).gateway == "seed"
    with pytest.raises(ConfigError, match="gateway must be one of seed, ppwapi, new-api"):
        Config().merge({"gateway": "one-api"})
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--gateway", "one-api"])


@pytest.mark.kling_mock(gateway="new-api")
def test_the_marker_picks_the_profile(kling_mock: Any) -> None:
    created = kling_mock.client.post(
        "/v1/videos",
        json={"model": "kling-v1", "prompt": "a cat"},
        headers={"Authorization": kling_mock.api_key},
    )
    assert created.status_code == 200 and created.json()["object"] == "video"


@pytest.mark.parametrize("gateway", ["seed", PPWAPI, NEW_API])
def test_the_official_surface_is_the_same_under_every_profile(gateway: str, auth: dict[str, str]) -> None:
    backend, client = mock(gateway)
    with client:
        created = client.post("/v1/videos/text2video", json={"prompt": "a cat"}, headers=auth)
        assert created.status_code == 200 and created.json()["code"] == 0
        task_id = created.json()["data"]["task_id"]
        backend.advance(5)
        listed = client.get("/v1/videos/text2video", headers=auth).json()
        assert [t["task_id"] for t in listed["data"]] == [task_id]
        one = client.get(f"/v1/videos/text2video/{task_id}", headers=auth).json()
        assert one["data"]["task_status"] == "succeed"
        # An unknown official path keeps the official envelope, even beside new-api's /v1/videos.
        missing = client.get("/v1/videos/text2video/nope", headers=auth)
        assert missing.status_code == 404 and missing.json()["code"] == 1203


# -- ppwapi: creating --------------------------------------------------------------------------------


def ppwapi_upstream(body: Any, *, passthrough: bool = False) -> gateway_profiles.Upstream:
    return ppwapi_create(PROFILES[PPWAPI], Body(json=body), passthrough=passthrough, rid=RID)


def test_ppwapi_sends_kling_the_payload_its_adaptor_builds() -> None:
    """relay/channel/task/kling/adaptor.go convertToRequestPayload: mode std, duration "5",
    aspect ratio from size, model_name (aliases mapped, kling-v1 by default), cfg_scale 0.5; of
    metadata only cfg_scale, mode and aspect_ratio. width, height, fps, seed, n, response_format,
    negative_prompt, callback_url and external_task_id are dropped (SubmitReq has no field)."""
    upstream = ppwapi_upstream(
        {
            "model": "kling_video",
            "prompt": "a kitten",
            "image": IMAGE,
            "size": "720x1280",
            "width": 1920,
            "height": 1080,
            "fps": 24,
            "seed": 3,
            "n": 1,
            "metadata": {
                "negative_prompt": "blurry",
                "callback_url": "https://example.com/cb",
                "external_task_id": "mine",
                "cfg_scale": 0.7,
            },
        }
    )
    assert upstream.body == {
        "prompt": "a kitten",
        "image": IMAGE,
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "9:16",
        "model_name": "kling-v1-6",
        "cfg_scale": 0.7,
    }
    # adaptor.go ValidateRequestAndSetAction: the generic create is always "generate", which
    # BuildRequestURL sends to image2video.
    assert (upstream.action, upstream.task_action, upstream.model) == (
        "image2video",
        "generate",
        "kling_video",
    )
    defaults = ppwapi_upstream({"model": "kling-v1", "prompt": "x", "image": IMAGE, "duration": 10})
    assert defaults.body == {
        "prompt": "x",
        "image": IMAGE,
        "mode": "std",
        "duration": "10",
        "aspect_ratio": "1:1",
        "model_name": "kling-v1",
        "cfg_scale": 0.5,
    }
    metadata = {"mode": "pro", "aspect_ratio": "16:9", "cfg_scale": 1}
    over = ppwapi_upstream({"model": "kling-v1", "prompt": "x", "metadata": metadata})
    assert (over.body["mode"], over.body["aspect_ratio"], over.body["cfg_scale"]) == ("pro", "16:9", 1.0)


@pytest.mark.parametrize(
    ("field", "value", "go"),
    [
        ("duration", 5.0, "number 5.0 into Go struct field SubmitReq.duration of type int"),
        ("duration", "5", "string into Go struct field SubmitReq.duration of type int"),
        ("prompt", 7, "number into Go struct field SubmitReq.prompt of type string"),
        ("metadata", [], "array into Go struct field SubmitReq.metadata of type map[string]interface {}"),
    ],
)
def test_ppwapi_refuses_a_field_of_another_type_with_gos_error(
    ppwapi: tuple[Backend, httpx.Client], field: str, value: Any, go: str
) -> None:
    """SubmitReq.Duration is an int: the seed's own example ("duration": 5.0) is refused by the
    seed's gateway (adaptor.go ValidateRequestAndSetAction, TaskErrorWrapperLocal)."""
    backend, client = ppwapi
    body = {"model": "kling-v1", "prompt": "a cat", "image": IMAGE} | {field: value}
    message = task_error(client.post(GEN, json=body, headers=KEY), 400, "invalid_request")
    assert message == f"json: cannot unmarshal {go}"
    assert len(backend.tasks) == 0


def test_ppwapi_sends_text_requests_to_image2video_and_kling_refuses_them(
    ppwapi: tuple[Backend, httpx.Client],
) -> None:
    """The known bug: the generic create has no text path (adaptor.go BuildRequestURL). Kling's
    refusal comes back with its status and its whole answer as the message (relay_task.go
    RelayTaskSubmit: fail_to_fetch_task)."""
    backend, client = ppwapi
    response = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat", "duration": 5}, headers=KEY)
    kling = task_error(response, 400, "fail_to_fetch_task")
    assert '"code":1201' in kling and '"message":"image can not be null"' in kling
    assert len(backend.tasks) == 0


def test_ppwapi_answers_a_create_with_the_task_id_alone(ppwapi: tuple[Backend, httpx.Client]) -> None:
    """adaptor.go DoResponse: ``{"task_id": <Kling's id>}``; the task is an ordinary Kling task."""
    backend, client = ppwapi
    response = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat", "image": IMAGE}, headers=KEY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"  # gin's c.JSON
    (task,) = backend.tasks
    assert response.json() == {"task_id": task.task_id}
    assert (task.action, task.model, task.mode, task.duration) == ("image2video", "kling-v1", "std", "5")


def test_ppwapi_passthrough_keeps_only_what_its_adaptor_reads() -> None:
    """middleware/kling_adapter.go KlingRequestConvert wraps the body as
    {"model": model_name or model or "kling_video", "prompt", "metadata": body}: the adaptor
    then reads no duration, image, negative_prompt, camera_control, callback_url or
    external_task_id from it; no image makes it "textGenerate" (text2video)."""
    body = {
        "prompt": "a kitten under the moon",
        "negative_prompt": "dark",
        "cfg_scale": 0.8,
        "mode": "pro",
        "aspect_ratio": "16:9",
        "duration": "10",
        "camera_control": {"type": "simple", "config": {"horizontal": 2.5}},
        "callback_url": "https://example.com/cb",
        "external_task_id": "mine",
    }
    upstream = ppwapi_upstream(body, passthrough=True)
    assert upstream.body == {
        "prompt": "a kitten under the moon",
        "mode": "pro",
        "duration": "5",
        "aspect_ratio": "16:9",
        "model_name": "kling-v1-6",  # kling_video, the middleware's default, mapped
        "cfg_scale": 0.8,
    }
    assert (upstream.action, upstream.task_action, upstream.model) == (
        "text2video",
        "textGenerate",
        "kling_video",
    )
    named = ppwapi_upstream({"prompt": "x", "model_name": "kling-v2-master"}, passthrough=True)
    assert named.body["model_name"] == "kling-v2-master"


def test_ppwapi_passthrough_loses_the_image_so_kling_refuses_image2video(
    ppwapi: tuple[Backend, httpx.Client],
) -> None:
    """The image stays in metadata, which the adaptor never reads it from (SubmitReq.Image is
    empty), while the action says image2video: Kling answers "image can not be null"."""
    backend, client = ppwapi
    body = {"model_name": "kling-v1", "prompt": "move", "image": IMAGE}
    kling = task_error(
        client.post("/kling/v1/videos/image2video", json=body, headers=KEY), 400, "fail_to_fetch_task"
    )
    assert "image can not be null" in kling
    text = client.post("/kling/v1/videos/text2video", json={"prompt": "a cat"}, headers=KEY)
    assert text.status_code == 200 and set(text.json()) == {"task_id"}
    (task,) = backend.tasks
    assert (task.action, task.model) == ("text2video", "kling-v1-6")


def test_ppwapi_serves_no_passthrough_query(ppwapi: tuple[Backend, httpx.Client]) -> None:
    """router/video-router.go SetVideoRouter has no GET under /kling/v1: gin's 404
    (controller/relay.go RelayNotFound), as for any unknown method."""
    _backend, client = ppwapi
    for method, path in [
        ("GET", "/kling/v1/videos/text2video/abc"),
        ("DELETE", GEN),
        ("GET", "/v1/videos/x"),
    ]:
        response = client.request(method, path, headers=KEY)
        if path.startswith("/v1/videos/"):  # no /v1/videos API in the fork: the official 404
            assert response.status_code == 404 and response.json()["code"] == 1202
            continue
        assert response.status_code == 404, (method, path)
        assert response.json() == {
            "error": {
                "message": f"Invalid URL ({method} {path})",
                "type": "invalid_request_error",
                "param": "",
                "code": "",
            }
        }


def test_ppwapi_middleware_refusals(ppwapi: tuple[Backend, httpx.Client]) -> None:
    """middleware/auth.go TokenAuth (model/token.go ValidateUserToken's words) and
    middleware/distributor.go Distribute (getModelRequest, CacheGetRandomSatisfiedChannel)."""
    _backend, client = ppwapi
    body = {"model": "kling-v1", "prompt": "a cat", "image": IMAGE}
    missing = middleware_error(client.post(GEN, json=body), 401, with_code=False)
    assert missing["message"].startswith("未提供令牌 (request id: ")
    wrong = middleware_error(
        client.post(GEN, json=body, headers={"Authorization": "sk-wrong"}), 401, with_code=False
    )
    assert wrong["message"].startswith("无效的令牌 (request id: ")
    bad_json = client.post(GEN, content=b"{not json", headers=KEY | {"Content-Type": "application/json"})
    error = middleware_error(bad_json, 400, with_code=False)
    assert error["message"].startswith(
        "Invalid request, 无效的请求, invalid character 'n' looking for beginning"
    )
    typed = middleware_error(
        client.post(GEN, json={"model": 1, "prompt": "x"}, headers=KEY), 400, with_code=False
    )
    assert typed["message"].startswith(
        "Invalid request, 无效的请求, json: cannot unmarshal number into Go struct field ModelRequest.model"
    )
    for model in ("kling-v2-6", ""):  # not among the channel's models (adaptor.go GetModelList)
        response = client.post(GEN, json={"model": model, "prompt": "x", "image": IMAGE}, headers=KEY)
        error = middleware_error(response, 503, with_code=False)
        assert error["message"].startswith(f"当前分组 default 下对于模型 {model} 无可用渠道 (request id: ")
    # A form body is not read at all (UnmarshalBodyReusable reads JSON only): no model, no channel.
    form = client.post(GEN, data={"model": "kling-v1", "prompt": "x"}, headers=KEY)
    assert middleware_error(form, 503, with_code=False)["message"].startswith(
        "当前分组 default 下对于模型  无"
    )


def test_an_upstream_refusal_is_worded_as_each_gateway_words_it() -> None:
    """service/error.go TaskErrorWrapper: ppwapi replaces a message naming post, dial or http;
    controller/relay.go RelayTask: a 429 says the group's upstream is saturated (both)."""
    kling = {"code": 1201, "message": "image: http://x is unreachable", "request_id": "r", "data": None}
    fork = gateway_profiles.upstream_refusal(PROFILES[PPWAPI], 400, kling)
    assert (fork.status, fork.body) == (
        400,
        {"code": "fail_to_fetch_task", "message": "请求上游地址失败", "data": None},
    )
    mainline = gateway_profiles.upstream_refusal(PROFILES[NEW_API], 400, kling)
    assert mainline.body["message"] == (
        '{"code":1201,"message":"image: http://x is unreachable","request_id":"r","data":null}'
    )
    busy = gateway_profiles.upstream_refusal(PROFILES[NEW_API], 429, kling | {"code": 1303})
    assert (busy.status, busy.body["message"]) == (429, "当前分组上游负载已饱和\uff0c请稍后再试")


def test_kling_limits_come_back_as_the_saturated_upstream(ppwapi: tuple[Backend, httpx.Client]) -> None:
    backend, client = ppwapi
    backend.limits.set(concurrency=1)
    body = {"model": "kling-v1", "prompt": "a cat", "image": IMAGE}
    assert client.post(GEN, json=body, headers=KEY).status_code == 200
    message = task_error(client.post(GEN, json=body, headers=KEY), 429, "fail_to_fetch_task")
    # controller/relay.go, RelayTask's error path (respondTaskError in later versions): a 429
    # from upstream is answered with this message in place of Kling's.
    assert message == "当前分组上游负载已饱和\uff0c请稍后再试"


# -- ppwapi: querying ------------------------------------------------------------------------------------


def ppwapi_query(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.get(f"{GEN}/{task_id}", headers=KEY)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # relay_task.go videoFetchByIDRespBodyBuilder: dto.TaskResponse{Code: "success", Data: TaskDto}
    assert set(body) == {"code", "message", "data"} and (body["code"], body["message"]) == ("success", "")
    data: dict[str, Any] = body["data"]
    assert list(data) == [
        "task_id",
        "action",
        "status",
        "fail_reason",
        "submit_time",
        "start_time",
        "finish_time",
        "progress",
        "data",
    ]  # dto/suno.go TaskDto, in order
    return data


def test_ppwapi_query_is_the_pollers_record() -> None:
    """model.InitTask: NOT_START, "0%", data = Kling's submit answer, until the poller's first
    run 15 s later (controller/task.go UpdateTaskBulk); each run copies Kling's status
    (adaptor.go ParseTaskResult) and sets the progress, start_time when it first sees
    IN_PROGRESS and finish_time at the end (controller/task_video.go updateVideoSingleTask)."""
    backend, client = mock(PPWAPI, timing=Timing(20, 20))
    with client:
        task_id = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat", "image": IMAGE}, headers=KEY)
        task_id = task_id.json()["task_id"]
        t0 = backend.now_ms() // 1000
        record = ppwapi_query(client, task_id)
        assert {k: v for k, v in record.items() if k != "data"} == {
            "task_id": task_id,
            "action": "generate",
            "status": "NOT_START",
            "fail_reason": "",
            "submit_time": t0,
            "start_time": 0,
            "finish_time": 0,
            "progress": "0%",
        }
        assert record["data"]["data"]["task_status"] == "submitted"  # the submit answer, kept
        assert "task_status_msg" not in record["data"]["data"]
        backend.advance(14.999)
        assert ppwapi_query(client, task_id)["status"] == "NOT_START"  # Kling says submitted by now
        backend.advance(0.001)
        record = ppwapi_query(client, task_id)
        assert (record["status"], record["progress"], record["start_time"]) == ("SUBMITTED", "10%", 0)
        backend.advance(15)  # 30 s: Kling processing since 20 s
        record = ppwapi_query(client, task_id)
        assert (record["status"], record["progress"], record["start_time"]) == ("IN_PROGRESS", "30%", t0 + 30)
        assert record["data"]["data"]["task_status"] == "processing"
        backend.advance(15)  # 45 s: Kling finished at 40 s
        record = ppwapi_query(client, task_id)
        assert (record["status"], record["progress"]) == ("SUCCESS", "100%")
        assert (record["start_time"], record["finish_time"]) == (t0 + 30, t0 + 45)
        # The fork stores the video URL in fail_reason (updateVideoSingleTask).
        assert record["fail_reason"] == f"http://mock/media/videos/{task_id}.mp4"
        assert record["data"]["data"]["task_result"]["videos"][0]["url"] == record["fail_reason"]
        assert client.get(record["fail_reason"]).headers["content-type"] == "video/mp4"


def test_ppwapi_reads_a_failure_reason_where_kling_says_succeed() -> None:
    """adaptor.go ParseTaskResult takes the reason from the top-level message, which Kling keeps
    "SUCCEED" for a failed task; a task that went from submitted to failed between two polls
    never had a start_time."""
    backend, client = mock(PPWAPI)
    with client:
        body = {"model": "kling-v1", "prompt": "something forbidden", "image": IMAGE}
        task_id = client.post(GEN, json=body, headers=KEY).json()["task_id"]
        backend.advance(15)
        record = ppwapi_query(client, task_id)
        assert (record["status"], record["progress"], record["fail_reason"]) == ("FAILURE", "100%", "SUCCEED")
        assert record["start_time"] == 0
        assert record["data"]["data"]["task_status_msg"] == "Failure to pass the risk control system"


def test_ppwapi_fails_a_task_processing_for_more_than_20_minutes() -> None:
    """controller/task.go UpdateTaskBulk: an IN_PROGRESS task submitted more than
    TaskTimeoutDuration (20 min, common/constants.go) ago is set FAILURE, "任务执行超时"."""
    backend, client = mock(PPWAPI, timing=Timing(0, 3600))
    with client:
        task_id = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat", "image": IMAGE}, headers=KEY)
        task_id = task_id.json()["task_id"]
        t0 = backend.now_ms() // 1000
        backend.advance(1200)
        assert ppwapi_query(client, task_id)["status"] == "IN_PROGRESS"
        backend.advance(15)
        record = ppwapi_query(client, task_id)
        assert (record["status"], record["fail_reason"], record["finish_time"]) == (
            "FAILURE",
            "任务执行超时",
            t0 + 1215,
        )
        backend.advance(3600)  # Kling finishes later: the gateway no longer polls the task
        assert ppwapi_query(client, task_id)["status"] == "FAILURE"


def test_a_gateway_sees_only_its_own_tasks(
    ppwapi: tuple[Backend, httpx.Client], auth: dict[str, str]
) -> None:
    """relay_task.go videoFetchByIDRespBodyBuilder: model.GetByTaskId(userId, taskId), else 400
    task_not_exist (TaskErrorWrapperLocal(errors.New("task_not_exist"), "task_not_exist"))."""
    backend, client = ppwapi
    official = client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=auth).json()["data"][
        "task_id"
    ]
    backend.add_api_key("sk-other")
    mine = client.post(GEN, json={"model": "kling-v1", "prompt": "x", "image": IMAGE}, headers=KEY).json()[
        "task_id"
    ]
    for task_id, headers in [(official, KEY), ("nope", KEY), (mine, {"Authorization": "Bearer sk-other"})]:
        response = client.get(f"{GEN}/{task_id}", headers=headers)
        assert task_error(response, 400, "task_not_exist") == "task_not_exist"


# -- new-api: creating -----------------------------------------------------------------------------


def newapi_upstream(body: Any, *, passthrough: bool = False) -> gateway_profiles.Upstream:
    return new_api_create(PROFILES[NEW_API], Body(json=body), passthrough=passthrough, rid=RID)


def test_new_api_decodes_metadata_over_the_upstream_body() -> None:
    """relay/channel/task/kling/adaptor.go convertToRequestPayload: defaults, then metadata
    json.Unmarshal-ed over requestPayload: every official field it has passes typed, keys it has
    no field for vanish, omitempty drops zeros (a camera axis of 0 included); model goes out as
    model_name and model; no image and no image_tail make it text2video (BuildRequestBody)."""
    upstream = newapi_upstream(
        {
            "model": "kling-v1-6",
            "prompt": "a kitten",
            "size": "1920x1080",
            "duration": 10,
            "metadata": {
                "negative_prompt": "blurry",
                "cfg_scale": 0.7,
                "mode": "pro",
                "camera_control": {"type": "simple", "config": {"horizontal": 0, "zoom": 5}},
                "callback_url": "https://example.com/cb",
                "external_task_id": "mine",
                "sound": "on",
                "element_list": [{"element_id": 1}],
                "try_on": True,
            },
        }
    )
    assert upstream.body == {
        "prompt": "a kitten",
        "negative_prompt": "blurry",
        "sound": "on",
        "mode": "pro",
        "duration": "10",
        "aspect_ratio": "16:9",
        "model_name": "kling-v1-6",
        "model": "kling-v1-6",
        "cfg_scale": 0.7,
        "camera_control": {"type": "simple", "config": {"zoom": 5.0}},
        "callback_url": "https://example.com/cb",
        "external_task_id": "mine",
    }
    assert (upstream.action, upstream.task_action) == ("text2video", "textGenerate")
    tail = newapi_upstream({"model": "kling-v1-6", "prompt": "x", "metadata": {"image_tail": IMAGE}})
    assert (tail.action, tail.task_action, tail.body["image_tail"]) == ("image2video", "generate", IMAGE)


@pytest.mark.parametrize(
    ("duration", "sent"),
    [(10, "10"), ("10", "10"), (5.0, "5"), (10.0, "5"), ("ten", "5"), (None, "5"), (True, "5")],
)
def test_new_api_takes_a_duration_as_an_int_or_a_numeric_string(duration: Any, sent: str) -> None:
    """relay/common/relay_info.go TaskSubmitReq.UnmarshalJSON: an int, else a string Atoi
    takes; anything else leaves 0, which convertToRequestPayload makes 5 (so 10.0 is 5 s)."""
    upstream = newapi_upstream({"model": "kling-v1", "prompt": "x", "duration": duration})
    assert upstream.body["duration"] == sent


def test_new_api_refuses_a_metadata_field_of_another_type(newapi: tuple[Backend, httpx.Client]) -> None:
    """convertToRequestPayload: errors.Wrap(err, "unmarshal metadata failed"); BuildRequestBody
    fails as build_request_failed, 500 (relay_task.go RelayTaskSubmit)."""
    backend, client = newapi
    body = {"model": "kling-v1", "prompt": "x", "metadata": {"duration": 10}}
    message = task_error(client.post(GEN, json=body, headers=KEY), 500, "build_request_failed")
    assert message == (
        "unmarshal metadata failed: json: cannot unmarshal number into Go struct field "
        "requestPayload.duration of type string"
    )
    assert len(backend.tasks) == 0
    # metadata may be a JSON string holding the object (TaskSubmitReq.UnmarshalJSON).
    as_string = newapi_upstream({"model": "kling-v1", "prompt": "x", "metadata": '{"mode": "pro"}'})
    assert as_string.body["mode"] == "pro"


def test_new_api_answers_a_create_with_an_openai_video(newapi: tuple[Backend, httpx.Client]) -> None:
    """adaptor.go DoResponse, dto/openai_video.go NewOpenAIVideo: id and task_id are the
    gateway's public id, task_ plus 32 characters (model/task.go GenerateTaskID), never Kling's;
    status queued, progress 0, created_at in seconds, model as requested."""
    backend, client = newapi
    response = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat"}, headers=KEY)
    assert response.status_code == 200
    (task,) = backend.tasks
    video = response.json()
    assert re.fullmatch(r"task_[0-9a-f]{32}", video["id"]) and task.task_id not in video["id"]
    assert video == {
        "id": video["id"],
        "task_id": video["id"],
        "object": "video",
        "model": "kling-v1",
        "status": "queued",
        "progress": 0,
        "created_at": backend.now_ms() // 1000,
    }
    # Mainline has a text path: the same request the fork sends to image2video works here.
    assert (task.action, task.model) == ("text2video", "kling-v1")


def test_new_api_takes_the_openai_sdks_multipart_form(newapi: tuple[Backend, httpx.Client]) -> None:
    """relay_utils.go validateMultipartTaskRequest: "seconds" is the duration (a form's
    "duration" is read nowhere), other values go into metadata as ints, floats or strings."""
    backend, client = newapi
    form = {
        "model": "kling-v1-6",
        "prompt": "a cat",
        "seconds": "10",
        "size": "720x1280",
        "duration": "7",
        "cfg_scale": "0.25",
        "negative_prompt": "dark",
    }
    response = client.post(
        "/v1/videos", data=form, files={"input_reference": ("ref.png", b"png")}, headers=KEY
    )
    assert response.status_code == 200, response.text
    (task,) = backend.tasks
    assert (task.action, task.duration, task.model) == ("text2video", "10", "kling-v1-6")
    official = client.get(f"/v1/videos/text2video/{task.task_id}", headers=KEY).json()["data"]
    assert official["task_id"] == task.task_id


def test_new_api_form_values_are_typed_as_its_controller_types_them(
    newapi: tuple[Backend, httpx.Client],
) -> None:
    """relay_utils.go validateMultipartTaskRequest: strconv.Atoi, else ParseFloat (which takes
    "nan", a value json.Marshal then refuses: convertToRequestPayload's "metadata marshal"
    error), else the string; a string metadata field given a number is refused as in JSON."""
    backend, client = newapi
    base = {"model": "kling-v1", "prompt": "a cat"}
    nan = client.post("/v1/videos", data=base | {"cfg_scale": "nan"}, files={"f": ("f", b"")}, headers=KEY)
    message = task_error(nan, 500, "build_request_failed")
    assert message == "metadata marshal metadata failed: json: unsupported value: NaN"
    number = client.post(
        "/v1/videos", data=base | {"negative_prompt": "12"}, files={"f": ("f", b"")}, headers=KEY
    )
    assert "into Go struct field requestPayload.negative_prompt of type string" in task_error(
        number, 500, "build_request_failed"
    )
    ok = client.post(
        "/v1/videos",
        data=base | {"aspect_ratio": "9:16", "mode": "pro"},
        files={"f": ("f", b"")},
        headers=KEY,
    )
    assert ok.status_code == 200, ok.text
    (task,) = backend.tasks
    assert (task.mode, task.extra["aspect_ratio"]) == ("pro", "9:16")


def test_new_api_passthrough_sends_the_whole_body_on() -> None:
    """middleware/kling_adapter.go KlingRequestConvert makes the whole body metadata, so every
    official field the upstream struct has passes: the image too (unlike the fork)."""
    body = {"model_name": "kling-v1-6", "prompt": "move", "image": IMAGE, "duration": "10", "cfg_scale": 0.6}
    upstream = newapi_upstream(body, passthrough=True)
    assert upstream.body == {
        "prompt": "move",
        "image": IMAGE,
        "mode": "std",
        "duration": "10",
        "aspect_ratio": "1:1",
        "model_name": "kling-v1-6",
        "model": "kling-v1-6",
        "cfg_scale": 0.6,
    }
    assert (upstream.action, upstream.task_action) == ("image2video", "generate")


def test_new_api_middleware_refusals(newapi: tuple[Backend, httpx.Client]) -> None:
    """middleware/distributor.go (getModelFromJSONBody; Distribute) with i18n/locales/en.yaml's
    words, middleware/utils.go abortWithOpenAiMessage adding "code"."""
    _backend, client = newapi
    bad = client.post(GEN, content=b"{", headers=KEY | {"Content-Type": "application/json"})
    error = middleware_error(bad, 400, with_code=True)
    assert error["message"].startswith("Invalid request: invalid JSON request body (request id:")
    typed = middleware_error(
        client.post(GEN, json={"model": 5, "prompt": "x"}, headers=KEY), 400, with_code=True
    )
    assert typed["message"].startswith("Invalid request: field model must be a string")
    none = middleware_error(
        client.post("/kling/v1/videos/text2video", json={"prompt": "x"}, headers=KEY), 400, with_code=True
    )
    assert none["message"].startswith("Model name not specified, model name cannot be empty")
    alias = client.post(GEN, json={"model": "kling_video", "prompt": "x"}, headers=KEY)  # no aliases
    error = middleware_error(alias, 503, with_code=True)
    assert error["code"] == "model_not_found"
    assert error["message"].startswith(
        "No available channel for model kling_video under group default (distributor)"
    )
    missing = middleware_error(client.get("/v1/videos/task_x"), 401, with_code=True)
    assert missing["message"].startswith("Token not provided (request id: ")
    wrong = middleware_error(
        client.get("/v1/videos/task_x", headers={"Authorization": "sk-x"}), 401, with_code=True
    )
    assert wrong["message"].startswith("Invalid token (request id: ")
    prompt = task_error(
        client.post(GEN, json={"model": "kling-v1", "prompt": " "}, headers=KEY), 400, "invalid_request"
    )
    assert prompt == "prompt is required"  # relay_utils.go validatePrompt


# -- new-api: querying -------------------------------------------------------------------------------


def test_new_api_video_object_follows_the_pollers_record() -> None:
    """adaptor.go ConvertToOpenAIVideo: status from the record (model/task.go ToVideoStatus:
    "unknown" before the first poll), progress from its "N%", created_at and completed_at from
    Kling's kept answer (milliseconds), seconds and metadata.url once there is a video; the
    model is left empty."""
    backend, client = mock(NEW_API, timing=Timing(20, 20))
    with client:
        video_id = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat"}, headers=KEY).json()["id"]
        created_ms = backend.now_ms()

        def video() -> dict[str, Any]:
            response = client.get(f"/v1/videos/{video_id}", headers=KEY)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        assert video() == {
            "id": video_id,
            "object": "video",
            "model": "",
            "status": "unknown",
            "progress": 0,
            "created_at": created_ms,
            "completed_at": created_ms,
        }
        seen = []
        for _ in range(3):
            backend.advance(15)
            seen.append((video()["status"], video()["progress"]))
        assert seen == [("queued", 10), ("in_progress", 30), ("completed", 100)]
        (task,) = backend.tasks
        assert video() == {
            "id": video_id,
            "object": "video",
            "model": "",
            "status": "completed",
            "progress": 100,
            "created_at": created_ms,
            "completed_at": created_ms + 40_000,
            "seconds": "5",
            "metadata": {"url": f"http://mock/media/videos/{task.task_id}.mp4"},
        }


def test_new_api_task_record_via_the_generic_and_passthrough_queries() -> None:
    """relay_task.go videoFetchByIDRespBodyBuilder/TaskModel2Dto: any path but /v1/videos/ gets
    the TaskDto; result_url is the video once it succeeded, fail_reason Kling's task_status_msg
    (adaptor.go ParseTaskResult) and, through Task.GetResultURL, result_url too."""
    backend, client = mock(NEW_API)
    with client:
        ok = client.post(
            "/kling/v1/videos/text2video", json={"model_name": "kling-v1", "prompt": "a cat"}, headers=KEY
        )
        bad = client.post(GEN, json={"model": "kling-v1", "prompt": "forbidden"}, headers=KEY)
        ok_id, bad_id = ok.json()["id"], bad.json()["id"]
        t0 = backend.now_ms() // 1000
        record = client.get(f"{GEN}/{ok_id}", headers=KEY).json()
        assert (record["code"], record["message"]) == ("success", "")
        data = record["data"]
        assert list(data) == [
            "id",
            "created_at",
            "updated_at",
            "task_id",
            "platform",
            "user_id",
            "group",
            "channel_id",
            "quota",
            "action",
            "status",
            "fail_reason",
            "submit_time",
            "start_time",
            "finish_time",
            "progress",
            "properties",
            "data",
        ]
        assert (data["task_id"], data["platform"], data["status"], data["progress"]) == (
            ok_id,
            "50",
            "NOT_START",
            "0%",
        )
        assert data["properties"] == {
            "input": "",
            "upstream_model_name": "kling-v1",
            "origin_model_name": "kling-v1",
        }
        backend.advance(15)
        for path in (
            f"{GEN}/{ok_id}",
            f"/kling/v1/videos/text2video/{ok_id}",
            f"/kling/v1/videos/image2video/{ok_id}",
        ):
            data = client.get(path, headers=KEY).json()["data"]
            (task,) = [t for t in backend.tasks if t.status_msg == ""]
            assert (data["status"], data["fail_reason"], data["finish_time"]) == ("SUCCESS", "", t0 + 15)
            assert data["result_url"] == f"http://mock/media/videos/{task.task_id}.mp4"
            assert data["updated_at"] == t0 + 15 and data["action"] == "textGenerate"
        failed = client.get(f"{GEN}/{bad_id}", headers=KEY).json()["data"]
        reason = "Failure to pass the risk control system"
        assert (failed["status"], failed["fail_reason"], failed["result_url"]) == ("FAILURE", reason, reason)
        video = client.get(f"/v1/videos/{bad_id}", headers=KEY).json()
        assert video["status"] == "failed" and "error" not in video  # ConvertToOpenAIVideo sets none
        assert task_error(client.get(f"{GEN}/task_0", headers=KEY), 400, "task_not_exist") == "task_not_exist"
        assert (
            task_error(client.get("/v1/videos/task_0", headers=KEY), 400, "task_not_exist")
            == "task_not_exist"
        )


def test_new_api_content_proxies_the_finished_video(newapi: tuple[Backend, httpx.Client]) -> None:
    """controller/video_proxy.go VideoProxy: 404 "Task not found", 400 until SUCCESS (naming
    the record's status), then Kling's video passed on, ranges too, cached a day."""
    backend, client = newapi
    video_id = client.post(GEN, json={"model": "kling-v1", "prompt": "a cat"}, headers=KEY).json()["id"]
    early = client.get(f"/v1/videos/{video_id}/content", headers=KEY)
    assert early.status_code == 400
    assert early.json() == {
        "error": {
            "message": "Task is not completed yet, current status: NOT_START",
            "type": "invalid_request_error",
        }
    }
    unknown = client.get("/v1/videos/task_00/content", headers=KEY)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"message": "Task not found", "type": "invalid_request_error"}}
    backend.advance(15)
    content = client.get(f"/v1/videos/{video_id}/content", params={"variant": "video"}, headers=KEY)
    assert content.status_code == 200
    assert (content.headers["content-type"], content.headers["cache-control"]) == (
        "video/mp4",
        "public, max-age=86400",
    )
    assert content.content[4:8] == b"ftyp"
    part = client.get(f"/v1/videos/{video_id}/content", headers=KEY | {"Range": "bytes=0-7"})
    assert (part.status_code, part.content) == (206, content.content[:8])


def test_new_api_videos_sit_beside_the_official_paths(newapi: tuple[Backend, httpx.Client]) -> None:
    """/v1/videos/<action> stays Kling's (official envelope, official list); any other
    /v1/videos path is the gateway's, with its own refusals (gin: 404 for a method it lacks)."""
    _backend, client = newapi
    official = client.get("/v1/videos/text2video", headers=KEY)
    assert official.status_code == 200 and official.json()["code"] == 0
    wrong_method = client.delete("/v1/videos/task_00", headers=KEY)
    assert wrong_method.status_code == 404
    assert wrong_method.json()["error"]["message"] == "Invalid URL (DELETE /v1/videos/task_00)"
    assert client.put("/v1/videos", headers=KEY).json()["error"]["type"] == "invalid_request_error"
    assert client.delete("/v1/videos/text2video", headers=KEY).json()["code"] == 1202  # official 405


def test_a_refusal_is_never_a_crash() -> None:
    """Odd bodies on every create of both gateways: a task, or one of the gateway's own answers
    (a 500 only where the gateway gives one: a metadata field of the wrong type)."""
    model = {"model": "kling-v1", "model_name": "kling-v1"}
    odd: list[Any] = [None, [], "x", 5, {}, {"prompt": {"a": 1}}, {"model": None}]
    odd += [model | body for body in ({"prompt": {"a": 1}}, {"prompt": "x", "metadata": "not json"})]
    odd += [
        model
        | {"prompt": "x", "metadata": {"camera_control": "pan", "dynamic_masks": [{"trajectories": [1]}]}}
    ]
    odd += [
        model
        | {"prompt": "x", "image": IMAGE, "metadata": {"dynamic_masks": [{"trajectories": [{"x": 1.5}]}]}}
    ]
    for name in (PPWAPI, NEW_API):
        _backend, client = mock(name)
        with client:
            for path in (GEN, "/kling/v1/videos/text2video", "/kling/v1/videos/image2video"):
                for body in odd:
                    response = client.post(path, json=body, headers=KEY)
                    assert response.status_code in (200, 400, 500, 503), (name, path, body, response.text)
                    if response.status_code == 500:
                        assert response.json()["code"] == "build_request_failed", response.text
    with pytest.raises(Refusal):
        ppwapi_create(PROFILES[PPWAPI], Body(json=parse(b"[1, 2")), passthrough=False, rid=RID)
