"""openapi.yaml is the contract: it agrees with the catalogue and the routes. (The server's
answers to schemathesis-generated requests are checked by the fuzz runner, tests/fuzz.)"""

from __future__ import annotations

import re

from starlette.routing import Route

from mockkling import Backend, catalogue, create_app
from mockkling.spec import default_spec

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


def test_every_route_is_documented_and_every_path_is_served() -> None:
    app = create_app(Backend())
    served = set()
    for route in app.routes:
        assert isinstance(route, Route)
        methods = route.methods or {
            m for m in ("GET", "POST", "PUT", "DELETE") if hasattr(route.endpoint, m.lower())
        }
        # A path convertor ({path:path}) is Starlette's, not part of the documented path.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        served.update((path, m.lower()) for m in methods if m != "HEAD")
    documented = {(path, method) for path, method, _ in SPEC.operations()}
    assert served == documented


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
# run): the examples, coverage, fuzzing and stateful phases, every check but one.


def test_paths_use_official_prefixes() -> None:
    for path, _method, _op in SPEC.operations():
        assert re.match(r"^/(v1/|kling/v1/|account/|media/|__mockkling/|openapi\.yaml)", path), path
