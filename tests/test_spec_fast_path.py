"""The compiled check of request bodies (fastjsonschema) against jsonschema, the judge: on
bodies generated at and around every schema's edges, the two must agree, or the fast path
would accept a body the document refuses (or send valid ones the slow way)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkling.spec import _vetted, default_spec

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


def test_most_body_schemas_have_a_compiled_check() -> None:
    # The create operations are the hot ones; each must have its fast path.
    creates = {op for op in SPEC._bodies if op.startswith("create") and op != "createVideoGeneration"}
    assert creates <= set(FAST), creates - set(FAST)


@pytest.mark.parametrize("operation", FAST)
def test_the_compiled_check_agrees_with_jsonschema(operation: str) -> None:
    checks = SPEC._bodies[operation]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(near(checks.validator.schema))
    def agree(body: Any) -> None:
        assert checks.passes_fast(body) == checks.validator.is_valid(body), body

    agree()


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
