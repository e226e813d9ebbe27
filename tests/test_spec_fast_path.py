"""The compiled check of request bodies (fastjsonschema) against jsonschema, the judge: on
bodies generated at and around every schema's edges, the two must agree, or the fast path
would accept a body the document refuses (or send valid ones the slow way)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkling.spec import _Body, _vetted, default_spec

SPEC = default_spec()
FAST = sorted(op for op, checks in SPEC._bodies.items() if checks.fast_schema is not None)

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 1.0, 0.5, -0.0, 2**63, 1e308]),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def near(schema: Any) -> st.SearchStrategy[Any]:
    """Values at and around what ``schema`` allows: its enum values, lengths and bounds one
    step either side, objects missing required keys, and JSON of other types."""
    if not isinstance(schema, dict):
        return _json
    options: list[st.SearchStrategy[Any]] = [_json]
    if "enum" in schema:
        values = schema["enum"]
        options.append(st.sampled_from([*values, *(f"{v} " for v in values), *(v.upper() for v in values)]))
    for key in ("minLength", "maxLength"):
        if key in schema:
            n = schema[key]
            options.append(st.sampled_from([n - 1, n, n + 1]).filter(lambda k: k >= 0).map(lambda k: "é" * k))
    for bound in (schema[k] for k in _BOUNDS if k in schema):
        options.append(st.sampled_from([bound - 1, bound - 0.5, bound, float(bound), bound + 0.5, bound + 1]))
    if "properties" in schema:
        props = schema["properties"]
        optional = {name: near(sub) for name, sub in props.items()}
        options.append(st.fixed_dictionaries({}, optional={**optional, "not_in_the_spec": _json}))
    if "items" in schema:
        size = schema.get("maxItems", 3) + 1
        options.append(st.lists(near(schema["items"]), min_size=0, max_size=size))
    for key in ("oneOf", "anyOf", "allOf"):
        options.extend(near(sub) for sub in schema.get(key, []))
    return st.one_of(options)


def valid(schema: Any) -> st.SearchStrategy[Any]:
    """Values ``schema`` allows (most of the time: a oneOf branch may overlap another): required
    properties and a subset of the optional ones, strings and numbers inside their bounds."""
    if not isinstance(schema, dict):
        return _json
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([valid(sub) for sub in schema[key]])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: valid(props.get(name, {})) for name in required},
            optional={name: valid(sub) for name, sub in props.items() if name not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(
            valid(schema.get("items", {})),
            min_size=low,
            max_size=min(schema.get("maxItems", low + 3), low + 3),
        )
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 30)
        return st.text(min_size=low, max_size=min(high, low + 12)) | st.just("x" * high)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**6)) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10**6) - 1)
        ints = st.integers(math.ceil(low), math.floor(high))
        return ints if kind == "integer" else ints | st.floats(low, high)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":  # an optional field that may be sent as null
        return st.none()
    return _json


def one_step_off(schema: Any, value: Any) -> st.SearchStrategy[Any]:
    """``value`` with one part, at any depth, moved to or past an edge of its schema (or a
    required property dropped)."""
    options = [near(schema)]
    if isinstance(value, dict) and isinstance(schema, dict):
        props = schema.get("properties", {})
        for key, item in value.items():
            sub = props.get(key, {})
            options.append(one_step_off(sub, item).map(lambda new, key=key: {**value, key: new}))
            options.append(st.just({k: v for k, v in value.items() if k != key}))
    if isinstance(value, list) and isinstance(schema, dict):
        for i, item in enumerate(value):
            sub = schema.get("items", {})
            options.append(one_step_off(sub, item).map(lambda new, i=i: [*value[:i], new, *value[i + 1 :]]))
    return st.one_of(options)


def bodies(schema: Any) -> st.SearchStrategy[Any]:
    """Valid bodies, and valid bodies with one part off: both sides of every edge."""
    return valid(schema) | valid(schema).flatmap(lambda body: one_step_off(schema, body))


def test_most_body_schemas_have_a_compiled_check() -> None:
    # The create operations are the hot ones; each must have its fast path.
    creates = {op for op in SPEC._bodies if op.startswith("create") and op != "createVideoGeneration"}
    assert creates <= set(FAST), creates - set(FAST)


@pytest.mark.parametrize("operation", FAST)
@pytest.mark.slow  # thousands of generated bodies per operation
def test_the_compiled_check_agrees_with_jsonschema(operation: str) -> None:
    checks = SPEC._bodies[operation]
    accepted: list[bool] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(bodies(checks.validator.schema))
    def agree(body: Any) -> None:
        fast = checks.passes_fast(body)
        accepted.append(fast)
        assert fast == checks.validator.is_valid(body), body

    agree()
    # Only bodies the compiled check accepts can show it too lenient: there must be many.
    assert sum(accepted) >= 40, f"{sum(accepted)} of {len(accepted)} bodies accepted"
    assert len(accepted) - sum(accepted) >= 40, "too few refused bodies"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "number", "multipleOf": 0.1},  # the libraries divide floats differently
        {"enum": [1, 2]},  # Python's 1 == 1.0 == True
        {"type": "object", "properties": {"a": {"const": 1}}},
        {"type": "array", "prefixItems": [{"type": "string"}]},  # 2020-12 only
        {"type": "object", "dependentRequired": {"a": ["b"]}},
        {"type": "string", "pattern": "^[0-9]+x[0-9]+$"},  # regex dialects differ at the edges
    ],
)
def test_schemas_outside_the_shared_keywords_get_no_compiled_check(schema: dict[str, Any]) -> None:
    assert _vetted(schema) is None


def test_the_compiled_copy_drops_defaults_so_a_body_is_never_filled_in() -> None:
    checks = SPEC._bodies["createText2Video"]
    body: dict[str, Any] = {"prompt": "a cat"}
    assert checks.passes_fast(body)
    assert body == {"prompt": "a cat"}


def test_a_schema_the_compiler_refuses_leaves_the_body_to_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastjsonschema

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise fastjsonschema.JsonSchemaDefinitionException("cannot compile")

    monkeypatch.setattr(fastjsonschema, "compile", refuse)
    checks = _Body({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}})
    assert not checks.passes_fast({"n": 1})
    assert checks.fast_schema is None  # jsonschema alone from now on
    assert checks.validator.is_valid({"n": 1}) and not checks.validator.is_valid({"n": 4})
