"""openapi.yaml is the contract: it agrees with the catalogue and the routes. (The server's
answers to schemathesis-generated requests are checked by the fuzz runner, tests/fuzz.)"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from starlette.applications import Starlette
from starlette.routing import Route

from mockkling import Backend, Config, catalogue, create_app, gateway_profiles
from mockkling.config import GATEWAY_PROFILES
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

METHODS = ("get", "put", "post", "delete", "patch")


def in_process(app: Starlette) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://mock")


SPEC = default_spec()


def test_model_enums_match_the_catalogue() -> None:
    schemas = SPEC.document["components"]["schemas"]
    assert schemas["Text2VideoRequest"]["properties"]["model_name"]["enum"] == catalogue.models_for(
        "text2video"
    )
    assert schemas["Image2VideoRequest"]["properties"]["model_name"]["enum"] == catalogue.models_for(
        "image2video"
    )
    # Every other action: the model_name enum of its create body (effects: of its input) is
    # exactly the catalogue's models; a model-independent action documents no model_name.
    from mockkling.validation import ACTIONS

    for action in ACTIONS.values():
        op = next(op for _p, _m, op in SPEC.operations() if op.get("operationId") == action.create_op)
        body = SPEC.resolve(op["requestBody"]["content"]["application/json"]["schema"])
        if action.name == "effects":
            body = body["properties"]["input"]
        model = body["properties"].get("model_name")
        assert (model["enum"] if model else []) == catalogue.models_for(action.name), action.name


def _served(app: Starlette) -> set[tuple[str, str]]:
    served = set()
    for route in app.routes:
        assert isinstance(route, Route)
        methods = route.methods or {
            m for m in ("GET", "POST", "PUT", "DELETE") if hasattr(route.endpoint, m.lower())
        }
        # A path convertor ({path:path}) is Starlette's, not part of the documented path.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        served.update((path, m.lower()) for m in methods if m != "HEAD")
    return served


@pytest.mark.parametrize("profile", GATEWAY_PROFILES)
def test_every_route_is_documented_and_every_path_is_served(profile: str) -> None:
    """Under each gateway profile the server serves exactly the official operations and the
    gateway operations tagged with its profile, and documents exactly those at /openapi.yaml."""
    backend = Backend(Config(gateway=profile))
    app = create_app(backend)
    tag = f"gateway-{profile}"
    documented = {
        (path, method)
        for path, method, op in SPEC.operations()
        if tag in op.get("tags", []) or not any(t.startswith("gateway-") for t in op.get("tags", []))
    }
    assert _served(app) == documented
    with in_process(app) as client:
        served_doc = yaml.safe_load(client.get("/openapi.yaml").content)
    paths = served_doc["paths"]
    assert {(path, m) for path, item in paths.items() for m in item if m in METHODS} == documented


@pytest.mark.parametrize("profile", GATEWAY_PROFILES)
def test_the_served_document_is_valid_openapi_with_no_dangling_link(profile: str) -> None:
    """What each server hands a client generator or schemathesis at /openapi.yaml is valid
    OpenAPI 3.1, and every response link names an operation that document holds."""
    from openapi_spec_validator import validate

    with in_process(create_app(Backend(Config(gateway=profile)))) as client:
        served = yaml.safe_load(client.get("/openapi.yaml").content)
    validate(served)
    operations = {
        op["operationId"] for item in served["paths"].values() for op in item.values() if "operationId" in op
    }
    linked = {
        link["operationId"]
        for item in served["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
        for response in op.get("responses", {}).values()
        for link in response.get("links", {}).values()
    }
    assert linked and linked <= operations, linked - operations


def test_every_gateway_operation_names_the_profiles_that_serve_it() -> None:
    """A gateway operation carries the tag of each profile that serves it, and only such tags;
    the profiles' operation sets (gateway_profiles) are what the tags say."""
    tagged: dict[str, set[str]] = {name: set() for name in GATEWAY_PROFILES}
    for _path, _method, op in SPEC.operations():
        tags = op.get("tags", [])
        if any(t.startswith("gateway") for t in tags):
            assert all(t.removeprefix("gateway-") in GATEWAY_PROFILES for t in tags), tags
            for t in tags:
                tagged[t.removeprefix("gateway-")].add(op["operationId"])
    assert tagged["seed"] == gateway_profiles.SEED_OPERATIONS
    for name, prof in gateway_profiles.PROFILES.items():
        assert tagged[name] == prof.operations, name


def test_every_error_status_is_documented_with_the_envelope() -> None:
    for path, method, op in SPEC.operations():
        if path.startswith("/v1/"):
            assert {"400", "401", "429", "500"} <= set(op["responses"]), (method, path)


def test_spec_is_valid_openapi() -> None:
    from jsonschema import Draft202012Validator

    # Every schema in components is itself a valid JSON Schema.
    for name, schema in SPEC.document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name


# schemathesis runs over every operation in tests/fuzz (test_fuzz.py in CI, run.py for the long
# run): the examples, coverage, fuzzing and stateful phases, every check but one (and, on the
# official surface, unsupported_method: its error table answers an undeclared method 404 / 1202).


def test_paths_use_official_prefixes() -> None:
    for path, _method, _op in SPEC.operations():
        legacy = re.match(r"^/(v1/|kling/v1/|account/|media/|__mockkling(/|$)|openapi\.yaml)", path)
        # The model-in-path design: its four operations with a model, and /tasks.
        model_in_path = re.match(
            r"^/((text-to-video|image-to-video|omni-video|motion-control)/kling-|tasks$)", path
        )
        assert legacy or model_in_path, path


@pytest.mark.parametrize("profile", GATEWAY_PROFILES)
def test_the_served_document_gives_the_profiles_own_shapes(profile: str) -> None:
    """Each server documents its gateway's answers only (openapi.yaml's ``x-gateway`` marks):
    its own create and query answers conform to what it serves, and another profile's do not,
    so a schemathesis run against one profile catches an answer in another's shape."""
    from jsonschema import Draft202012Validator

    from mockkling import DEFAULT_API_KEY

    answers: dict[str, tuple[dict[str, object], dict[str, object]]] = {}
    body = {"model": "kling-v1", "prompt": "a cat", "image": "https://example.com/person.jpg", "duration": 5}
    key = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    for name in GATEWAY_PROFILES:
        with in_process(create_app(Backend(Config(gateway=name)))) as client:
            created = client.post("/v1/video/generations", json=body, headers=key)
            assert created.status_code == 200, created.text
            task_id = created.json().get("id") or created.json()["task_id"]
            queried = client.get(f"/v1/video/generations/{task_id}", headers=key)
            assert queried.status_code == 200, queried.text
            answers[name] = (created.json(), queried.json())
    with in_process(create_app(Backend(Config(gateway=profile)))) as client:
        served = yaml.safe_load(client.get("/openapi.yaml").content)
    generations = served["paths"]["/v1/video/generations"]
    assert ("multipart/form-data" in generations["post"]["requestBody"]["content"]) == (profile == "new-api")
    for index, (path, method) in enumerate(
        (("/v1/video/generations", "post"), ("/v1/video/generations/{task_id}", "get"))
    ):
        schema = served["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": served["components"]})
        for name, answer in answers.items():
            conforms = validator.is_valid(answer[index])
            same_shape = name == profile or json_shape(answers[name][index]) == json_shape(
                answers[profile][index]
            )
            assert conforms == same_shape, (name, path, answer[index])


def json_shape(value: object) -> object:
    """The keys of an answer, nested: two profiles that answer alike share it."""
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in value.items()}
    return type(value).__name__


def _arrays(schema: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """(path, maxItems) of every array node in a schema, through every keyword that nests one."""
    found: list[tuple[tuple[str, ...], object]] = []
    if isinstance(schema, list):
        for sub in schema:
            found += _arrays(sub, path)
    elif isinstance(schema, dict):
        if schema.get("type") == "array" or "items" in schema:
            found.append((path, schema.get("maxItems")))
        for name, sub in (schema.get("properties") or {}).items():
            found += _arrays(sub, (*path, name))
        if isinstance(schema.get("items"), dict):
            found += _arrays(schema["items"], (*path, "[]"))
        for key in ("allOf", "anyOf", "oneOf"):
            found += _arrays(schema.get(key) or [], path)
    return found


def test_every_request_array_is_bounded_before_validation() -> None:
    """Every array a request body may hold has a maxItems that the server checks before any
    validator walks the array (issue 18: a million items must be refused by their count)."""
    for operation, body in SPEC._bodies.items():
        checked = {tuple("[]" if step is None else step for step in path) for path, _limit in body.limits}
        for path, limit in _arrays(body.validator.schema):
            assert isinstance(limit, int), f"{operation}: {'.'.join(path)} has no maxItems"
            assert path in checked, f"{operation}: {'.'.join(path)} is not counted first"


@pytest.mark.parametrize(
    ("path", "body", "field", "limit"),
    [
        ("/v1/videos/text2video", {"model_name": "kling-v3", "multi_shot": True}, "multi_prompt", 6),
        ("/v1/videos/image2video", {"model_name": "kling-v3"}, "element_list", 7),
        ("/v1/videos/advanced-lip-sync", {"session_id": "s"}, "face_choose", 10),
        ("/v1/videos/multi-elements/add-selection", {"session_id": "s", "frame_index": 0}, "points", 100),
        ("/v1/images/omni-image", {"model_name": "kling-image-o1"}, "image_list", 10),
    ],
    ids=["multi_prompt", "element_list", "face_choose", "points", "image_list"],
)
def test_a_long_array_is_refused_by_its_count(
    path: str, body: dict[str, object], field: str, limit: int
) -> None:
    from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt

    items = b",".join([b"{}"] * 100_000)
    raw = orjson.dumps({**body, "prompt": "a"})[:-1] + b',"%s":[%s]}' % (field.encode(), items)
    headers = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    with in_process(create_app(Backend(Config()))) as client:
        answer = client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (400, 1201)
    assert answer.json()["message"] == f"{field} must have at most {limit} items (got 100000)"


def test_the_parsed_document_is_kept_for_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing openapi.yaml is most of a start-up: a process keeps the result (JSON, under the
    text's hash) and the next one reads that; a damaged or unwritable cache is only skipped."""
    from mockkling import spec as spec_module

    raw = spec_module.spec_bytes()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parsed = spec_module.Spec(raw).document
    [kept] = (tmp_path / "mockkling").iterdir()

    def no_yaml(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed the YAML again")

    with monkeypatch.context() as patch:
        patch.setattr(spec_module.yaml, "load", no_yaml)
        assert spec_module.Spec(raw).document == parsed
    kept.write_bytes(b'{"openapi": "3.1.0", "paths": {')  # a cut-off write by someone else
    assert spec_module.Spec(raw).document == parsed
    assert orjson.loads(kept.read_bytes()) == parsed  # written whole again
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # no directory can be made there
    assert spec_module.Spec(raw).document == parsed
