"""openapi.yaml is the contract: it agrees with the catalogue and the routes, and the server
answers schemathesis-generated requests (valid and invalid) without a server error and with
responses that conform to it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.routing import Route

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    Timing,
    catalogue,
    create_app,
    make_jwt,
)
from mockkling.routes import gateway as gateway_routes
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
        served.update((route.path, m.lower()) for m in route.methods or () if m != "HEAD")
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


# -- schemathesis, in process (no network) -------------------------------------------------------

backend = Backend(Config(seed=5, timing=Timing(0, 0)))
# Control operations are fuzzed too: the fault rules they add are kept but never fire.
backend.faults.enabled = False
app = create_app(backend)
schema = schemathesis.openapi.from_asgi("/openapi.yaml", app)
JWT = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=86400)


@schema.auth()
class SurfaceAuth:
    """Each surface's credentials: an sk- key on the gateway paths, a JWT on the official ones."""

    def get(self, case: schemathesis.Case, context: object) -> str:
        return JWT

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        gateway = case.operation.path.startswith(gateway_routes.PREFIXES)
        case.headers = {
            **(case.headers or {}),
            "Authorization": DEFAULT_API_KEY if gateway else f"Bearer {data}",
        }


# A schema-valid body may still break a rule that ties fields together (which model allows
# which feature, unique external_task_id): those answer 400 / 1201 by design, and a gateway
# answers an unknown task 400 task_not_exist as real gateways do. So the check that every
# schema-valid request is accepted does not apply. Every other check does.
CHECKS_EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture(autouse=True)
def _fresh_backend() -> Iterator[None]:
    """What one operation's fuzzing configures through the control API (limits, fates, a
    manual clock's tasks) must not change how the next operation is answered."""
    yield
    backend.reset()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=CHECKS_EXCLUDED)


# Control operations are fuzzed one by one above; a workflow leaves them out, so its scenarios
# replay identically (a fuzzed limit or reset would change what later steps see).
class APIWorkflow(schema.exclude(tag="control").as_state_machine()):  # type: ignore[misc]
    def setup(self) -> None:
        backend.reset()

    # On the state machine itself (its TestCase only wraps it), so the exclusion applies.
    def validate_response(
        self, response: object, case: schemathesis.Case, additional_checks: object = None, **kwargs: object
    ) -> None:
        case.validate_response(
            response,
            additional_checks=additional_checks,
            excluded_checks=CHECKS_EXCLUDED,
            transport_kwargs=kwargs or None,
            recorder=getattr(self, "recorder", None),
        )


class TestStatefulWorkflow(APIWorkflow.TestCase):  # type: ignore[name-defined,misc]
    settings = settings(
        max_examples=15, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck)
    )


def test_paths_use_official_prefixes() -> None:
    for path, _method, _op in SPEC.operations():
        assert re.match(r"^/(v1/|kling/v1/|account/|media/|__mockkling/|openapi\.yaml)", path), path


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
