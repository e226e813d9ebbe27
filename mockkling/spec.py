"""``openapi.yaml``: found, parsed and compiled once, then used to validate every request.

The document is the single source of truth: request bodies and query parameters are checked
against its schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses), so the server, the spec and
the schemathesis tests cannot disagree about what a valid request is.

jsonschema is the judge and writes every error message, but walking a schema costs it a good
part of a create (docs/benchmarks.md). So a body schema written only in keywords that mean the
same in draft 7 is also compiled to Python by fastjsonschema (on its operation's first request,
so start-up does not pay for every schema), and a body that this compiled check passes is
accepted at once; any other body goes to jsonschema, which decides. tests/test_spec_fast_path.py holds the two
to agreeing on generated bodies.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

import orjson
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .errors import KlingError

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# An integer as a query string writes it: ASCII digits (int() also takes "1_0", " 5" and other
# scripts' digits).
_INTEGER = re.compile(r"-?[0-9]+")
# Longer digit strings are out of any documented range; int() refuses them past 4300 digits.
_MAX_DIGITS = 32


def spec_bytes() -> bytes:
    """The raw document: the copy packaged in a wheel, else the one at the repository root."""
    packaged = resources.files("mockkling") / "openapi.yaml"
    if packaged.is_file():
        return packaged.read_bytes()
    return (Path(__file__).resolve().parent.parent / "openapi.yaml").read_bytes()


def cache_dir() -> Path:
    """Where the parsed document is kept between processes ($XDG_CACHE_HOME/mockkling)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mockkling"


def _load(text: bytes) -> dict[str, Any]:
    """The document from ``text``. PyYAML builds its objects slowly (most of a start-up, see
    docs/benchmarks.md), so the result is also kept as JSON under the text's hash, which each
    later process reads instead; a cache that is missing, unreadable or unwritable is skipped."""
    cached = cache_dir() / f"openapi-{hashlib.sha256(text).hexdigest()[:32]}.json"
    try:
        document: dict[str, Any] = orjson.loads(cached.read_bytes())
        return document
    except (OSError, orjson.JSONDecodeError):
        pass
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(text, Loader=loader)
    data = orjson.dumps(document)
    if orjson.loads(data) != document:  # YAML gave what JSON cannot say (an int key): no cache
        return document
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, cached)  # whole or not at all, whoever writes at the same time
    except OSError:
        pass
    return document


# Keywords whose meaning fastjsonschema (draft 7) and jsonschema (2020-12) share, for the values
# the document gives them: a schema using any other keyword gets no compiled check. (Not
# multipleOf: the two divide floats differently; not const; not pattern: regex dialects differ
# at the edges; enum only with strings, see _vetted.)
_SHARED_KEYWORDS: Final = frozenset(
    {
        "type",
        "enum",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "oneOf",
        "anyOf",
        "allOf",
    }
)
# Annotations, which assert nothing in jsonschema as we use it (no format checker): left out of
# the compiled copy, where fastjsonschema would act on some (``default`` fills in data).
_ANNOTATIONS: Final = frozenset({"description", "title", "examples", "default", "deprecated", "format"})


def _vetted(schema: Any) -> Any:
    """``schema`` without annotations, if every keyword in it is shared (see above); else None."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key not in _SHARED_KEYWORDS:
            return None
        if key == "enum":
            # Only strings: Python's == would let 1.0 match 1, where the two libraries differ.
            if not all(isinstance(v, str) for v in value):
                return None
            out[key] = value
        elif key == "properties":
            props = {name: _vetted(sub) for name, sub in value.items()}
            if any(sub is None for sub in props.values()):
                return None
            out[key] = props
        elif key in ("items", "additionalProperties"):
            sub = _vetted(value)
            if sub is None:
                return None
            out[key] = sub
        elif key in ("oneOf", "anyOf", "allOf"):
            subs = [_vetted(sub) for sub in value]
            if any(sub is None for sub in subs):
                return None
            out[key] = subs
        else:
            out[key] = value
    return out


# A step into a body: a property name, or None for every item of an array.
Step = str | None


def _array_limits(schema: Any, path: tuple[Step, ...] = ()) -> Iterator[tuple[tuple[Step, ...], int]]:
    """(path, maxItems) of every array the schema bounds, outer arrays before inner ones,
    following properties, items and allOf; where anyOf/oneOf branches bound an array, the
    largest of their bounds (the other branches of our schemas are null or take no array)."""
    if not isinstance(schema, dict):
        return
    if isinstance(schema.get("maxItems"), int):
        yield path, schema["maxItems"]
    for name, sub in (schema.get("properties") or {}).items():
        yield from _array_limits(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from _array_limits(schema["items"], (*path, None))
    for sub in schema.get("allOf") or ():
        yield from _array_limits(sub, path)
    for key in ("anyOf", "oneOf"):
        largest: dict[tuple[Step, ...], int] = {}
        for branch in schema.get(key) or ():
            for where, limit in _array_limits(branch, path):
                largest[where] = max(limit, largest.get(where, limit))
        yield from largest.items()


def _too_long(
    value: Any, path: tuple[Step, ...], limit: int, where: tuple[str | int, ...] = ()
) -> tuple[tuple[str | int, ...], int] | None:
    """The first array at ``path`` in ``value`` longer than ``limit``: (its place, its length)."""
    if not path:
        return (where, len(value)) if isinstance(value, list) and len(value) > limit else None
    step, rest = path[0], path[1:]
    if step is None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                found = _too_long(item, rest, limit, (*where, index))
                if found is not None:
                    return found
        return None
    if isinstance(value, dict) and step in value:
        return _too_long(value[step], rest, limit, (*where, step))
    return None


class _Body:
    """A body schema's validators: jsonschema's, the compiled check when it has one, and the
    array bounds, which are checked first: an array of a million items is refused by its length,
    in microseconds, before any validator walks it."""

    __slots__ = ("_compiled", "fast_schema", "limits", "validator")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.validator = Draft202012Validator(schema)
        self.fast_schema = _vetted(schema)
        self._compiled: Any = None
        self.limits = tuple(_array_limits(schema))

    def check_lengths(self, body: Any) -> None:
        for path, limit in self.limits:
            found = _too_long(body, path, limit)
            if found is not None:
                where, length = found
                raise KlingError(
                    1201, f"{_path(where, 'body')} must have at most {limit} items (got {length})"
                )

    def passes_fast(self, body: Any) -> bool:
        """True if the compiled check accepts ``body`` (False when there is none, or it refuses)."""
        if self.fast_schema is None:
            return False
        if self._compiled is None:  # compiled on first use: start-up does not pay for every schema
            import fastjsonschema

            try:
                self._compiled = fastjsonschema.compile(
                    self.fast_schema, use_default=False, use_formats=False
                )
            except Exception:  # a schema it cannot compile: jsonschema alone, as for any other
                self.fast_schema = None
                return False
        try:
            self._compiled(body)
        except Exception:  # JsonSchemaValueException, or anything odd: jsonschema decides
            return False
        return True


class _Param:
    __slots__ = ("default", "name", "validator")

    def __init__(self, name: str, schema: dict[str, Any]) -> None:
        self.name = name
        self.default: int = schema.get("default", 0)
        self.validator = Draft202012Validator(schema)


class Spec:
    """The parsed document with a compiled validator per operation."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.document = _load(raw)
        self._bodies: dict[str, _Body] = {}
        self._query: dict[str, dict[str, _Param]] = {}
        for _path, _method, op in self.operations():
            op_id = op.get("operationId")
            if not op_id:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "schema" in body:
                self._bodies[op_id] = _Body(self.inline(body["schema"]))
            params = {}
            for param in op.get("parameters", []):
                param = self.resolve(param)
                if param.get("in") == "query":
                    params[param["name"]] = _Param(param["name"], self.inline(param.get("schema", {})))
            self._query[op_id] = params

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.document.get("paths", {}).items():
            for method in _HTTP_METHODS:
                if method in item:
                    yield path, method, item[method]

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local ``$ref`` (one level is all the document uses for parameters)."""
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        target: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        resolved: dict[str, Any] = target
        return resolved

    def inline(self, node: Any, depth: int = 0) -> Any:
        """A copy of a schema with every local ``$ref`` replaced by its target.

        Validators compiled from self-contained schemas skip ref resolution on every request,
        which was most of the cost of validating a body.
        """
        if depth > 64:
            raise ValueError("openapi.yaml: recursive $ref chains are not supported")
        if isinstance(node, list):
            return [self.inline(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: self.inline(v, depth + 1) for k, v in node.items() if k != "$ref"}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target = self.inline(self.resolve({"$ref": ref}), depth + 1)
            return {"allOf": [target], **out} if out else target
        return out

    def validate_body(self, operation_id: str, body: Any) -> None:
        """Raise the official 400 / 1201, naming the field, if ``body`` breaks the schema."""
        checks = self._bodies[operation_id]
        checks.check_lengths(body)
        if checks.passes_fast(body):
            return
        error = best_match(checks.validator.iter_errors(body))
        if error is not None:
            raise KlingError(1201, describe(error))

    def query_int(self, operation_id: str, name: str, raw: str | None) -> int:
        """A query parameter as an integer, checked against its schema (default if absent)."""
        param = self._query[operation_id][name]
        if raw is None:
            return int(param.default)
        if not _INTEGER.fullmatch(raw):
            raise KlingError(1201, f"{name} must be an integer")
        sign = -1 if raw.startswith("-") else 1
        value = int(raw) if len(raw) <= _MAX_DIGITS else sign * 10**_MAX_DIGITS
        error = best_match(param.validator.iter_errors(value))
        if error is not None:
            raise KlingError(1201, describe(error, root=name))
        return value


def _path(parts: Iterable[Any], root: str) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or root


def describe(error: ValidationError, root: str = "body") -> str:
    """A short message naming the field, without echoing a (possibly huge) value back."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        # A field that may also be null (anyOf: [its schema, {type: null}]) and is not: the
        # complaint worth reading is its own schema's.
        branches = [e for e in error.context if e.schema != {"type": "null"}]
        # A value of the type one branch takes (a string where a number or a numeric string
        # goes): that branch's complaint, not "not valid under any of the given schemas".
        typed = [e for e in branches if e.validator != "type"]
        for candidates in (branches, typed):
            if candidates and len({e.relative_schema_path[0] for e in candidates}) == 1:
                return describe(best_match(candidates), root)
    path = _path(error.absolute_path, root)
    rule, value = error.validator, cast(Any, error.validator_value)
    if rule == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = next((name for name in value if name not in instance), value[0])
        prefix = "" if path == root else f"{path}."
        return f"{prefix}{missing} is required"
    if rule == "enum":
        return f"{path} must be one of: {', '.join(str(v) for v in value)}"
    if rule == "const":
        return f"{path} must be {value!r}"
    if rule == "type":
        kinds = value if isinstance(value, list) else [value]
        return f"{path} must be of type {' or '.join(kinds)}"
    if rule == "maxLength":
        return f"{path} must be at most {value} characters"
    if rule == "minLength":
        return f"{path} must not be empty" if value == 1 else f"{path} must be at least {value} characters"
    if rule in ("minimum", "exclusiveMinimum"):
        return f"{path} must be >= {value}" if rule == "minimum" else f"{path} must be > {value}"
    if rule in ("maximum", "exclusiveMaximum"):
        return f"{path} must be <= {value}" if rule == "maximum" else f"{path} must be < {value}"
    if rule == "maxItems":
        return f"{path} must have at most {value} items"
    if rule == "minItems":
        return f"{path} must have at least {value} items"
    message = error.message
    return f"{path}: {message[:200]}"


@cache
def default_spec() -> Spec:
    """The shipped document, parsed and compiled once per process."""
    return Spec(spec_bytes())
