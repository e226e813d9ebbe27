"""The gateway surfaces: the generic /v1/video/generations and the /kling passthrough, on the
same Backend as the official surface, with sk- keys and the gateway's own error body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    FailRule,
    KlingError,
    Task,
    catalogue,
    create_app,
    gateway,
    make_jwt,
    tasks,
)
from mockkling.cli import _parser, build_config
from mockkling.routes import gateway as gateway_routes
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

GEN = "/v1/video/generations"
PT = "/kling/v1/videos"
KEY = {"Authorization": DEFAULT_API_KEY}
URL = "https://example.com/person.jpg"
OTHER_KEY = "sk-another-tenant"


@pytest.fixture
def config() -> Config:
    return Config(seed=1234, fail_rules=[FailRule("forbidden")])


def gateway_error(response: httpx.Response, status: int, code: str) -> str:
    """Assert the gateway's error body; return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "data"}
    assert body["code"] == code and body["data"] is None
    assert "Traceback" not in response.text
    message: str = body["message"]
    return message


def generate(client: httpx.Client, headers: dict[str, str] = KEY, **fields: Any) -> str:
    response = client.post(GEN, json={"prompt": "a kitten", "duration": 5} | fields, headers=headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"task_id"}
    task_id: str = response.json()["task_id"]
    return task_id


def passthrough(client: httpx.Client, action: str, headers: dict[str, str] = KEY, **fields: Any) -> str:
    body = {"prompt": "a kitten"} | ({"image": URL} if action == "image2video" else {}) | fields
    response = client.post(f"{PT}/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["code"], payload["message"]) == (0, "success")
    task_id: str = payload["data"]["task_id"]
    return task_id


def generation(client: httpx.Client, task_id: str, headers: dict[str, str] = KEY) -> dict[str, Any]:
    response = client.get(f"{GEN}/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def passthrough_task(
    client: httpx.Client, task_id: str, action: str = "text2video", headers: dict[str, str] = KEY
) -> dict[str, Any]:
    response = client.get(f"{PT}/{action}/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["message"]) == (0, "success") and body["request_id"]
    data: dict[str, Any] = body["data"]
    return data


def stored(backend: Backend, task_id: str) -> Task:
    task = backend.tasks.get(task_id)
    assert task is not None
    return task


# -- create, per surface -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "action"),
    [
        ({}, "text2video"),
        ({"image": URL}, "image2video"),
        ({"metadata": {"image_tail": URL}}, "image2video"),
    ],
    ids=["text", "image", "end-frame"],
)
def test_generic_create_picks_the_endpoint(
    backend: Backend, client: httpx.Client, fields: dict[str, Any], action: str
) -> None:
    task = stored(backend, generate(client, **fields))
    assert task.action == action
    assert (task.model, task.mode, task.duration) == ("kling-v1", "std", "5")
    assert generation(client, task.task_id) == {"task_id": task.task_id, "status": "submitted"}


def test_generic_create_takes_every_field_of_the_seed(backend: Backend, client: httpx.Client) -> None:
    task_id = generate(
        client,
        model="kling-v2-master",
        prompt="a kitten playing in a garden",
        image=URL,
        duration=10.0,
        width=1920,
        height=1080,
        fps=24,
        seed=7,
        n=1,
        response_format="url",
        metadata={
            "negative_prompt": "blurry",
            "cfg_scale": 0.7,
            "mode": "pro",
            "aspect_ratio": "16:9",
            "callback_url": "https://example.com/callback",
            "external_task_id": "my-task-001",
        },
    )
    task = stored(backend, task_id)
    assert (task.action, task.model, task.mode, task.duration) == (
        "image2video",
        "kling-v2-master",
        "pro",
        "10",
    )
    assert task.external_task_id == "my-task-001"
    assert task.extra is not None and task.extra["callback_url"] == "https://example.com/callback"
    backend.advance(60)
    assert generation(client, task_id)["metadata"] == {
        "duration": 10.0,
        "fps": 24,
        "width": 1920,
        "height": 1080,
        "seed": 7,
    }


@pytest.mark.parametrize("action", ["text2video", "image2video"])
def test_passthrough_create(backend: Backend, client: httpx.Client, action: str) -> None:
    task = stored(backend, passthrough(client, action, model_name="kling-v1-6", mode="pro", duration="10"))
    assert (task.action, task.model, task.mode, task.duration) == (action, "kling-v1-6", "pro", "10")


# -- lifecycle on the controlled clock ----------------------------------------------------------


def test_generic_lifecycle(backend: Backend, client: httpx.Client) -> None:
    task_id = generate(client)
    assert generation(client, task_id)["status"] == "submitted"
    backend.advance(1)
    assert generation(client, task_id) == {"task_id": task_id, "status": "processing"}
    backend.advance(3.999)
    assert generation(client, task_id)["status"] == "processing"
    backend.advance(0.001)
    done = generation(client, task_id)
    assert done["status"] == "succeeded"
    assert (done["format"], done["url"]) == ("mp4", f"http://mock/media/videos/{task_id}.mp4")
    assert set(done["metadata"]) == {"duration", "fps", "width", "height", "seed"}
    assert "error" not in done
    video = client.get(done["url"])
    assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")


@pytest.mark.parametrize("action", ["text2video", "image2video"])
def test_passthrough_lifecycle(backend: Backend, client: httpx.Client, action: str) -> None:
    task_id = passthrough(client, action)
    t0 = backend.now_ms()
    data = passthrough_task(client, task_id, action)
    assert (data["task_status"], data["created_at"], data["updated_at"]) == ("submitted", t0, t0)
    backend.advance(1)
    assert passthrough_task(client, task_id, action)["task_status"] == "processing"
    backend.advance(4)
    data = passthrough_task(client, task_id, action)
    # The passthrough shows the official task object: Kling's own spelling.
    assert (data["task_status"], data["updated_at"]) == ("succeed", t0 + 5000)
    assert data["task_result"]["videos"][0]["url"] == f"http://mock/media/videos/{task_id}.mp4"


def test_statuses_use_the_gateway_spelling() -> None:
    schema = default_spec().document["components"]["schemas"]["GatewayStatus"]
    assert schema["enum"] == list(tasks.SPELLINGS["gateway"].values())
    assert "succeeded" in schema["enum"] and "succeed" not in schema["enum"]


# -- failures ------------------------------------------------------------------------------------


def test_generic_failure_carries_the_error_object(backend: Backend, client: httpx.Client) -> None:
    task_id = generate(client, prompt="something forbidden")
    backend.advance(4.9)
    assert generation(client, task_id)["status"] == "processing"
    backend.advance(0.1)
    assert generation(client, task_id) == {
        "task_id": task_id,
        "status": "failed",
        "error": {
            "code": 4001,
            "message": "video generation failed: the prompt contains inappropriate content",
        },
    }
    assert client.get(f"/media/videos/{task_id}.mp4").status_code == 404


def test_a_rules_own_message_is_kept(client: httpx.Client, backend: Backend) -> None:
    backend.config.fail_rules.append(FailRule("spiders", message="Failure: spiders are not allowed"))
    task_id = generate(client, prompt="spiders")
    backend.advance(60)
    assert generation(client, task_id)["error"] == {
        "code": 4001,
        "message": "video generation failed: Failure: spiders are not allowed",
    }


def test_passthrough_failure_is_the_official_task(backend: Backend, client: httpx.Client) -> None:
    task_id = passthrough(client, "text2video", prompt="forbidden things")
    backend.advance(60)
    data = passthrough_task(client, task_id)
    assert (data["task_status"], data["task_status_msg"]) == (
        "failed",
        "Failure to pass the risk control system",
    )
    assert "task_result" not in data


# -- mappings, table-driven from the seed ---------------------------------------------------------

# The seed's "size to aspect ratio" table, row by row, and some of "anything else".
SIZE_TABLE = [
    ("1024x1024", "1:1"),
    ("512x512", "1:1"),
    ("1280x720", "16:9"),
    ("1920x1080", "16:9"),
    ("720x1280", "9:16"),
    ("1080x1920", "9:16"),
]
OTHER_SIZES = [("1280x960", "1:1"), ("720x720", "1:1"), ("1080x1080", "1:1"), ("100x100", "1:1")]


def test_the_size_table_is_the_seeds() -> None:
    assert dict(SIZE_TABLE) == gateway.SIZE_ASPECT_RATIOS
    assert gateway.DEFAULT_ASPECT_RATIO == "1:1"


@pytest.mark.parametrize(("size", "ratio"), SIZE_TABLE + OTHER_SIZES)
def test_width_and_height_give_the_aspect_ratio(
    backend: Backend, client: httpx.Client, size: str, ratio: str
) -> None:
    width, height = (int(side) for side in size.split("x"))
    by_sides = stored(backend, generate(client, width=width, height=height))
    by_string = stored(backend, generate(client, size=size))
    for task in (by_sides, by_string):
        assert gateway.details(task) is not None
        assert gateway.details(task)["aspect_ratio"] == ratio  # type: ignore[index]
    backend.advance(60)
    metadata = generation(client, by_string.task_id)["metadata"]
    assert (metadata["width"], metadata["height"]) == (width, height)


@pytest.mark.parametrize("fields", [{}, {"width": 1280}, {"height": 720}], ids=["none", "width", "height"])
def test_no_size_is_one_to_one(backend: Backend, client: httpx.Client, fields: dict[str, int]) -> None:
    task = stored(backend, generate(client, **fields))
    assert gateway.details(task)["aspect_ratio"] == "1:1"  # type: ignore[index]


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "1:1"])
def test_metadata_aspect_ratio_overrides_the_size(backend: Backend, client: httpx.Client, ratio: str) -> None:
    task = stored(backend, generate(client, width=1280, height=720, metadata={"aspect_ratio": ratio}))
    assert gateway.details(task)["aspect_ratio"] == ratio  # type: ignore[index]


@pytest.mark.parametrize(
    ("ratio", "width", "height"), [("16:9", 1280, 720), ("9:16", 720, 1280), ("1:1", 1024, 1024)]
)
def test_unsent_metadata_is_filled_in(
    backend: Backend, client: httpx.Client, ratio: str, width: int, height: int
) -> None:
    task_id = generate(client, metadata={"aspect_ratio": ratio})
    backend.advance(60)
    metadata = generation(client, task_id)["metadata"]
    assert (metadata["width"], metadata["height"], metadata["fps"], metadata["duration"]) == (
        width,
        height,
        30,
        5,
    )
    # A seed was picked, and it stays the same between queries.
    assert isinstance(metadata["seed"], int)
    assert generation(client, task_id)["metadata"]["seed"] == metadata["seed"]


# The product aliases, mapped as the seed's gateway maps them.
ALIASES = [
    ("kling_video", "kling-v1-6"),
    ("kling_image", "kling-v1-6"),
    ("kling_extend", "kling-v2-master"),
    ("kling_effects", "kling-v2-master"),
    ("kling_lip_sync", "kling-v2-master"),
    ("kling_virtual_try_on", "kling-v2-master"),
    ("kling_image_expand", "kling-v2-master"),
]


def test_the_alias_table_is_the_seeds() -> None:
    assert dict(ALIASES) == gateway.MODEL_ALIASES


@pytest.mark.parametrize(("alias", "model"), ALIASES)
def test_aliases_map_to_models(backend: Backend, client: httpx.Client, alias: str, model: str) -> None:
    assert stored(backend, generate(client, model=alias)).model == model
    assert stored(backend, passthrough(client, "text2video", model_name=alias)).model == model
    assert stored(backend, passthrough(client, "image2video", model_name=alias)).model == model


@pytest.mark.parametrize("model", catalogue.models_for("image2video"))
def test_model_names_pass_unchanged(backend: Backend, client: httpx.Client, model: str) -> None:
    assert stored(backend, generate(client, model=model, image=URL)).model == model


def test_model_enums_match_the_catalogue_and_aliases() -> None:
    schemas = default_spec().document["components"]["schemas"]
    aliases = set(gateway.MODEL_ALIASES)
    assert set(schemas["GatewayModel"]["enum"]) == set(catalogue.models_for("image2video")) | aliases
    assert set(schemas["GatewayText2VideoModel"]["enum"]) == set(catalogue.models_for("text2video")) | aliases
    props = schemas["GatewayVideoGenerationRequest"]["properties"]
    assert props["model"] == {"$ref": "#/components/schemas/GatewayModel"}


def test_a_text_request_needs_a_text_model(client: httpx.Client) -> None:
    response = client.post(GEN, json={"prompt": "x", "duration": 5, "model": "kling-v1-5"}, headers=KEY)
    assert "kling-v1-5" in gateway_error(response, 400, "invalid_request")


# -- virtual try-on ------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["passthrough", "generic"])
def test_try_on_makes_a_video(backend: Backend, client: httpx.Client, surface: str) -> None:
    try_on = {"try_on": True, "style": "fashion", "quality": "high"}
    prompt = "this person wears a red dress"
    if surface == "passthrough":
        task_id = passthrough(client, "image2video", prompt=prompt, metadata=try_on, duration="3")
    else:
        task_id = generate(client, prompt=prompt, image=URL, duration=3, metadata=try_on)
    task = stored(backend, task_id)
    assert task.action == "image2video"
    assert gateway.details(task)["try_on"] == {"style": "fashion", "quality": "high"}  # type: ignore[index]
    backend.advance(60)
    done = generation(client, task_id)
    assert done["status"] == "succeeded" and done["metadata"]["duration"] == 3
    video = client.get(done["url"])
    assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")


def test_a_plain_image2video_is_not_a_try_on(backend: Backend, client: httpx.Client) -> None:
    for metadata in ({}, {"try_on": False, "style": "fashion"}):
        task = stored(backend, passthrough(client, "image2video", metadata=metadata))
        assert "try_on" not in gateway.details(task)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{PT}/image2video", {"prompt": "a red dress", "metadata": {"try_on": True}}),
        (f"{PT}/image2video", {"image_tail": URL, "metadata": {"try_on": True, "style": "fashion"}}),
        (GEN, {"prompt": "a red dress", "duration": 5, "metadata": {"try_on": True}}),
    ],
    ids=["passthrough", "end-frame-only", "generic"],
)
def test_try_on_without_a_person_image_is_refused(
    backend: Backend, client: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    message = gateway_error(client.post(path, json=body, headers=KEY), 400, "invalid_request")
    assert "try-on needs a person image" in message
    assert len(backend.tasks) == 0


def test_try_on_is_not_a_text2video_feature(client: httpx.Client) -> None:
    response = client.post(
        f"{PT}/text2video", json={"prompt": "x", "metadata": {"try_on": True}}, headers=KEY
    )
    assert "image2video" in gateway_error(response, 400, "invalid_request")


def test_a_person_image_is_checked_like_any_image(
    client: httpx.Client, make_image: Callable[..., str]
) -> None:
    body = {"prompt": "a suit", "metadata": {"try_on": True}}
    ok = client.post(f"{PT}/image2video", json=body | {"image": make_image(600, 900)}, headers=KEY)
    assert ok.status_code == 200, ok.text
    small = client.post(f"{PT}/image2video", json=body | {"image": make_image(200, 300)}, headers=KEY)
    assert "at least 300px" in gateway_error(small, 400, "invalid_request")


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [DEFAULT_API_KEY, f"Bearer {DEFAULT_API_KEY}", f"bearer  {DEFAULT_API_KEY} "]
)
def test_sk_keys_bare_or_bearer(client: httpx.Client, authorization: str) -> None:
    task_id = generate(client, headers={"Authorization": authorization})
    assert generation(client, task_id, {"Authorization": authorization})["status"] == "submitted"


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({}, "empty"),
        ({"Authorization": ""}, "empty"),
        ({"Authorization": "sk-unknown"}, "unknown API key"),
        ({"Authorization": "Bearer sk-unknown"}, "unknown API key"),
        ({"Authorization": "Bearer"}, "unknown API key"),
        ({"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}, "unknown API key"),
        ({"Authorization": f"Bearer {DEFAULT_ACCESS_KEY}|{DEFAULT_SECRET_KEY}"}, "unknown API key"),
    ],
    ids=["missing", "empty", "unknown", "unknown-bearer", "bearer-only", "official-jwt", "key-pair"],
)
def test_auth_failures_are_401(client: httpx.Client, headers: dict[str, str], needle: str) -> None:
    calls = [
        ("POST", GEN, {"prompt": "x", "duration": 5}),
        ("GET", f"{GEN}/anything", None),
        ("POST", f"{PT}/text2video", {"prompt": "x"}),
        ("POST", f"{PT}/image2video", {"image": URL}),
        ("GET", f"{PT}/text2video/anything", None),
        ("GET", f"{PT}/image2video/anything", None),
    ]
    for method, path, body in calls:
        response = client.request(method, path, json=body, headers=headers)
        assert needle in gateway_error(response, 401, "unauthorized"), path


def test_the_official_surface_is_unchanged(client: httpx.Client) -> None:
    """A bare sk- key is a gateway habit: the official surface still wants 'Bearer <token>'."""
    response = client.get("/v1/videos/text2video", headers=KEY)
    assert (response.status_code, response.json()["code"]) == (401, 1002)
    bearer = client.get("/v1/videos/text2video", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"})
    assert bearer.status_code == 200


def test_an_sk_account_sees_only_its_own_tasks(backend: Backend, client: httpx.Client) -> None:
    backend.add_api_key(OTHER_KEY)
    other = {"Authorization": OTHER_KEY}
    mine, theirs = generate(client), generate(client, headers=other)
    mine_pt = passthrough(client, "text2video")
    for task_id in (mine, mine_pt):
        gateway_error(client.get(f"{GEN}/{task_id}", headers=other), 400, "task_not_exist")
        gateway_error(client.get(f"{PT}/text2video/{task_id}", headers=other), 400, "task_not_exist")
    gateway_error(client.get(f"{GEN}/{theirs}", headers=KEY), 400, "task_not_exist")
    assert generation(client, theirs, other)["task_id"] == theirs


def test_api_key_from_the_command_line() -> None:
    args = _parser().parse_args(["serve", "--api-key", "sk-one", "--api-key", "sk-two"])
    backend = Backend(build_config(args, environ={}))
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        one, two = {"Authorization": "sk-one"}, {"Authorization": "Bearer sk-two"}
        task_id = generate(client, headers=one)
        assert generation(client, task_id, one)["task_id"] == task_id
        gateway_error(client.get(f"{GEN}/{task_id}", headers=two), 400, "task_not_exist")
        gateway_error(client.get(f"{GEN}/{task_id}", headers=KEY), 401, "unauthorized")


def test_api_keys_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mockkling.toml"
    path.write_text(
        'api_keys = ["sk-solo"]\n'
        "[[accounts]]\n"
        'access_key = "ak"\nsecret_key = "a-secret-key-of-32-bytes-or-more!"\napi_keys = ["sk-ak"]\n'
    )
    backend = Backend(build_config(_parser().parse_args(["serve", "--config", str(path)]), environ={}))
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        task_id = generate(client, headers={"Authorization": "sk-ak"})
        # A key bound to an account: that account's official token sees the task too.
        jwt = {"Authorization": f"Bearer {make_jwt('ak', 'a-secret-key-of-32-bytes-or-more!')}"}
        assert client.get(f"/v1/videos/text2video/{task_id}", headers=jwt).status_code == 200
        assert generate(client, headers={"Authorization": "sk-solo"})


# -- cross-surface reads -----------------------------------------------------------------------


def test_gateway_surfaces_read_each_others_tasks(backend: Backend, client: httpx.Client) -> None:
    generic, pt_t2v, pt_i2v = (
        generate(client),
        passthrough(client, "text2video"),
        passthrough(client, "image2video"),
    )
    backend.advance(60)
    for task_id in (generic, pt_t2v, pt_i2v):
        assert generation(client, task_id)["status"] == "succeeded"
        for action in ("text2video", "image2video"):  # either query path, as upstream
            assert passthrough_task(client, task_id, action)["task_status"] == "succeed"
    # On the generic surface a passthrough task reports its duration and its ratio's size.
    task_id = passthrough(client, "text2video", aspect_ratio="9:16", duration="10")
    backend.advance(60)
    metadata = generation(client, task_id)["metadata"]
    assert {k: metadata[k] for k in ("duration", "fps", "width", "height")} == {
        "duration": 10.0,
        "fps": 30,
        "width": 720,
        "height": 1280,
    }


def test_a_gateway_task_is_a_kling_task_upstream(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """The default sk- key acts for the default account: its official token sees gateway tasks."""
    task_id = generate(client, metadata={"external_task_id": "gw-1"})
    backend.advance(60)
    for path in (f"/v1/videos/text2video/{task_id}", "/v1/videos/text2video/gw-1"):
        response = client.get(path, headers=auth)
        assert response.status_code == 200
        assert response.json()["data"]["task_status"] == "succeed"
    listed = client.get("/v1/videos/text2video", headers=auth).json()["data"]
    assert [t["task_id"] for t in listed] == [task_id]


def test_an_official_task_is_unknown_to_the_gateway(client: httpx.Client, auth: dict[str, str]) -> None:
    """A gateway reads its own task table: a task made directly on Kling is not in it."""
    created = client.post(
        "/v1/videos/text2video", json={"prompt": "x", "external_task_id": "direct"}, headers=auth
    )
    task_id = created.json()["data"]["task_id"]
    for path in (f"{GEN}/{task_id}", f"{PT}/text2video/{task_id}", f"{PT}/image2video/{task_id}"):
        gateway_error(client.get(path, headers=KEY), 400, "task_not_exist")


def test_the_gateway_queries_by_task_id_only(client: httpx.Client) -> None:
    generate(client, metadata={"external_task_id": "mine-1"})
    gateway_error(client.get(f"{GEN}/mine-1", headers=KEY), 400, "task_not_exist")
    gateway_error(client.get(f"{PT}/text2video/mine-1", headers=KEY), 400, "task_not_exist")


# -- the gateway's error body ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"duration": 5}, "prompt is required"),
        ({"prompt": "   ", "duration": 5}, "prompt is required"),
        ({"prompt": "x"}, "duration is required"),
        ({"prompt": "x", "duration": 5.5}, "duration"),
        ({"prompt": "x", "duration": 11}, "duration must be <= 10"),
        ({"prompt": "x", "duration": 5, "n": 2}, "n must be <= 1"),
        ({"prompt": "x", "duration": 5, "width": "1280"}, "width must be of type integer"),
        ({"prompt": "x", "duration": 5, "size": "big"}, "size"),
        ({"prompt": "x", "duration": 5, "model": "gpt-4"}, "model must be one of"),
        ({"prompt": "x", "duration": 5, "metadata": {"cfg_scale": 2}}, "metadata.cfg_scale must be <= 1"),
        ({"prompt": "x", "duration": 5, "metadata": {"aspect_ratio": "4:3"}}, "metadata.aspect_ratio"),
        (
            {"prompt": "x", "duration": 5, "metadata": {"camera_control": {"type": "spin"}}},
            "camera_control.type",
        ),
    ],
)
def test_bad_generic_requests(
    backend: Backend, client: httpx.Client, body: dict[str, Any], needle: str
) -> None:
    assert needle in gateway_error(client.post(GEN, json=body, headers=KEY), 400, "invalid_request")
    assert len(backend.tasks) == 0


@pytest.mark.parametrize(
    ("action", "body", "needle"),
    [
        ("text2video", {}, "prompt is required"),
        ("text2video", {"prompt": "x", "model_name": "kling-v1-5"}, "model_name must be one of"),
        (
            "text2video",
            {"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 1, "pan": 1}}},
            "exactly one",
        ),
        ("text2video", {"prompt": "x", "metadata": {"try_on": "yes"}}, "metadata.try_on"),
        ("image2video", {"prompt": "x"}, "image can not be null"),
        (
            "image2video",
            {"model_name": "kling-v1-6", "prompt": "x"},
            "image and image_tail cannot both be empty",
        ),
    ],
)
def test_bad_passthrough_requests(
    client: httpx.Client, action: str, body: dict[str, Any], needle: str
) -> None:
    response = client.post(f"{PT}/{action}", json=body, headers=KEY)
    assert needle in gateway_error(response, 400, "invalid_request")


def test_a_duplicate_external_task_id(client: httpx.Client) -> None:
    generate(client, metadata={"external_task_id": "twice"})
    response = client.post(
        GEN, json={"prompt": "x", "duration": 5, "metadata": {"external_task_id": "twice"}}, headers=KEY
    )
    assert "already exists" in gateway_error(response, 400, "invalid_request")


def test_unknown_paths_and_methods(client: httpx.Client) -> None:
    gateway_error(client.get("/kling/v1/videos/effects", headers=KEY), 404, "not_found")
    gateway_error(client.get("/v1/video/nothing", headers=KEY), 404, "not_found")
    response = client.get(GEN, headers=KEY)
    gateway_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    gateway_error(client.post(f"{GEN}/abc", headers=KEY, json={}), 405, "method_not_allowed")
    # The official surface next door keeps its envelope.
    official = client.get("/v1/videos/nothing")
    assert (official.status_code, official.json()["code"]) == (404, 1202)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (KlingError(1103), 403, "forbidden"),
        (KlingError(1102), 429, "too_many_requests"),
        (KlingError(1302, headers={"Retry-After": "3"}), 429, "too_many_requests"),
        (KlingError(5000), 500, "internal_error"),
        (KlingError(5001), 503, "service_unavailable"),
    ],
)
def test_business_codes_map_to_the_seeds_statuses(
    backend: Backend, client: httpx.Client, error: KlingError, status: int, code: str
) -> None:
    """The HTTP status comes from the business-code table; the body is the gateway's."""

    def refuse(*args: object, **kwargs: object) -> Task:
        raise error

    backend.create_task = refuse  # type: ignore[method-assign]
    for path, body in ((GEN, {"prompt": "x", "duration": 5}), (f"{PT}/text2video", {"prompt": "x"})):
        response = client.post(path, json=body, headers=KEY)
        assert gateway_error(response, status, code) == error.message
        for name, value in error.headers.items():
            assert response.headers[name] == value


def test_a_crash_is_a_500_without_a_traceback(backend: Backend) -> None:
    def boom(*args: object, **kwargs: object) -> Task:
        raise RuntimeError("secret internals")

    backend.get_task = boom  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=create_app(backend), raise_app_exceptions=False)

    async def call(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.get(path, headers=KEY)

    for path in (f"{GEN}/x", f"{PT}/text2video/x"):
        response = asyncio.run(call(path))
        assert "secret" not in gateway_error(response, 500, "internal_error")


# -- the contract and real HTTP -----------------------------------------------------------------


def test_every_gateway_operation_documents_the_seeds_statuses() -> None:
    spec = default_spec()
    operations = [
        (path, op) for path, _m, op in spec.operations() if path.startswith(gateway_routes.PREFIXES)
    ]
    assert len(operations) == 6
    for path, op in operations:
        assert op["security"] == [{"gatewayKey": []}], path
        for status in ("400", "401", "403", "429", "500"):
            ref = op["responses"][status]["$ref"]
            content = spec.resolve({"$ref": ref})["content"]["application/json"]
            # The refusal of the server's profile: the seed's is GatewayError.
            assert content["schema"] == {"$ref": "#/components/schemas/GatewayRefusal"}, (path, status)
    refusal = spec.document["components"]["schemas"]["GatewayRefusal"]
    assert {"$ref": "#/components/schemas/GatewayError"} in refusal["anyOf"]


@pytest.mark.parametrize(
    "request_body",
    [
        {"prompt": "x", "duration": 3},
        {"prompt": "x", "duration": 10.0, "model": "kling_lip_sync", "size": "1080x1920", "n": 1},
        {
            "model": "kling-v2-6",
            "prompt": "p" * 2500,
            "image": URL,
            "duration": 7,
            "width": 1,
            "height": 8192,
            "fps": 120,
            "seed": 4294967295,
            "response_format": "url",
            "metadata": {
                "negative_prompt": "n" * 2500,
                "cfg_scale": 0,
                "mode": "pro",
                "aspect_ratio": "9:16",
                "callback_url": "https://example.com/cb",
                "external_task_id": "e" * 256,
                "camera_control": {"type": "simple", "config": {"zoom": -10}},
                "image_tail": URL,
                "try_on": True,
                "style": "s" * 64,
                "quality": "q" * 64,
                "ignored": {"anything": [1, 2]},
            },
        },
        {
            "prompt": "x",
            "duration": 5,
            "metadata": {"image_tail": URL, "camera_control": {"type": "down_back"}},
        },
    ],
    ids=["minimal", "alias-and-size", "every-field-at-its-limit", "end-frame"],
)
def test_a_translated_generic_request_meets_the_passthrough_schema(request_body: dict[str, Any]) -> None:
    """The route does not re-check a translated body: the two schemas must agree."""
    spec = default_spec()
    spec.validate_body("createVideoGeneration", request_body)
    submission = gateway.from_generic(request_body)
    spec.validate_body(gateway_routes.PASSTHROUGH_CREATE[submission.action], submission.body)
