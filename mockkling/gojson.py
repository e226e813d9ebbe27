"""Go's ``encoding/json`` as far as the gateways' request structs need it.

The gateways of the new-api family are Go programs: they decode a request into a struct with
``json.Unmarshal`` and send a struct back out with ``json.Marshal``. What that does to a body is
part of how they answer: a field of the wrong JSON type refuses the whole request with Go's own
error text, a key is matched to a field without regard to case, unknown keys vanish, ``null``
leaves a field as it was, and ``omitempty`` drops zero values on the way out. This module does
the same to parsed JSON (Python values from orjson), so that a profile can say which struct a
gateway decodes into and get Go's behaviour for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

# Scalar Go types, by the name Go prints in its errors.
STRING: Final = "string"
INT: Final = "int"
FLOAT64: Final = "float64"
BOOL: Final = "bool"
ANY: Final = "interface {}"
MAP: Final = "map[string]interface {}"

_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Slice:
    """``[]elem``."""

    elem: GoType

    @property
    def name(self) -> str:
        return "[]" + type_name(self.elem)


@dataclass(frozen=True)
class Field:
    """One struct field: its JSON name, Go type and whether ``omitempty`` drops its zero value."""

    json: str
    type: GoType
    omitempty: bool = True


@dataclass(frozen=True)
class Struct:
    """A Go struct: ``name`` as ``reflect.Type.String()`` prints it (``kling.SubmitReq``; "" for
    an anonymous struct); ``pointer`` when a field holds it as ``*T`` (nil until set)."""

    name: str
    fields: tuple[Field, ...]
    pointer: bool = False

    @property
    def short(self) -> str:
        """The name Go's field errors print: the type name without its package."""
        return self.name.rpartition(".")[2]

    def field(self, key: str) -> Field | None:
        """The field a JSON key sets: an exact match first, else one equal under case folding,
        as encoding/json matches them."""
        for field in self.fields:
            if field.json == key:
                return field
        folded = key.casefold()
        return next((field for field in self.fields if field.json.casefold() == folded), None)


GoType = str | Slice | Struct


def type_name(go_type: GoType) -> str:
    if isinstance(go_type, str):
        return go_type
    return go_type.name


class DecodeError(ValueError):
    """What ``json.Unmarshal`` returns: its message is Go's own error text."""


def _kind(value: Any) -> str:
    """The JSON kind Go names in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Decoder:
    """One Unmarshal call: Go keeps decoding after a type error and returns the first one."""

    def __init__(self) -> None:
        self.error: DecodeError | None = None

    def fail(self, value_kind: str, go_type: GoType, struct: Struct | None, path: list[str]) -> None:
        if self.error is not None:
            return
        what = f"json: cannot unmarshal {value_kind} into Go "
        if struct is not None and path:
            what += f"struct field {struct.short}.{'.'.join(path)} of type {type_name(go_type)}"
        else:
            what += f"value of type {type_name(go_type)}"
        self.error = DecodeError(what)

    def value(self, value: Any, go_type: GoType, into: Any, struct: Struct | None, path: list[str]) -> Any:
        """``value`` decoded as ``go_type`` over the current ``into`` (what a ``null`` keeps)."""
        if value is None:
            # null: no-op for a value, nil for a pointer, a slice or a map.
            if isinstance(go_type, Struct) and go_type.pointer:
                return None
            return None if isinstance(go_type, Slice) or go_type in (MAP, ANY) else into
        if go_type == ANY:
            return value
        if go_type == STRING:
            if isinstance(value, str):
                return value
        elif go_type == BOOL:
            if isinstance(value, bool):
                return value
        elif go_type == INT:
            if isinstance(value, int) and not isinstance(value, bool):
                if _INT64[0] <= value <= _INT64[1]:
                    return value
                self.fail(f"number {value}", go_type, struct, path)
                return into
            if isinstance(value, float):
                self.fail(f"number {value!r}", go_type, struct, path)
                return into
        elif go_type == FLOAT64:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif go_type == MAP:
            if isinstance(value, dict):
                return dict(value)
        elif isinstance(go_type, Slice):
            if isinstance(value, list):
                return [self.value(item, go_type.elem, None, struct, path) for item in value]
        elif isinstance(go_type, Struct) and isinstance(value, dict):
            return self.struct(value, go_type, into if isinstance(into, dict) else None, path)
        self.fail(_kind(value), go_type, struct, path)
        return into

    def struct(
        self, value: Mapping[str, Any], struct: Struct, into: dict[str, Any] | None, path: list[str]
    ) -> dict[str, Any]:
        out = dict(into or {})
        for key, item in value.items():
            field = struct.field(key)
            if field is None:
                continue  # unknown keys are dropped
            decoded = self.value(item, field.type, out.get(field.json), struct, [*path, field.json])
            if decoded is None:
                out.pop(field.json, None)
            else:
                out[field.json] = decoded
        return out


def unmarshal(value: Any, struct: Struct, into: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``json.Unmarshal(body, &v)`` for ``v`` of type ``struct`` (holding ``into`` already): the
    fields the body set, by JSON name, over ``into``. Raises DecodeError as Go fails."""
    decoder = _Decoder()
    if not isinstance(value, dict):
        decoder.fail(_kind(value) if value is not None else "null", struct, None, [])
        if value is None:  # null into a struct is a no-op
            return dict(into or {})
        raise decoder.error  # type: ignore[misc]
    out = decoder.struct(value, struct, dict(into or {}), [])
    if decoder.error is not None:
        raise decoder.error
    return out


def roundtrip(value: Any) -> Any:
    """A value after Go has decoded it into ``interface{}`` and encoded it again: every JSON
    number becomes a float64, written without a fraction when it has none (so ``10.0`` goes on
    as ``10``, which an ``int`` field then takes)."""
    if isinstance(value, dict):
        return {key: roundtrip(item) for key, item in value.items()}
    if isinstance(value, list):
        return [roundtrip(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def _empty(value: Any) -> bool:
    return value in ("", 0, False) or value == [] or value == {} or value is None


def marshal(values: Mapping[str, Any], struct: Struct) -> dict[str, Any]:
    """``json.Marshal`` of a struct holding ``values``: fields in declaration order, zero values
    of ``omitempty`` fields dropped, nil pointers dropped."""
    out: dict[str, Any] = {}
    for field in struct.fields:
        value = values.get(field.json)
        if isinstance(field.type, Struct) and isinstance(value, dict):
            value = marshal(value, field.type)
        elif (
            isinstance(field.type, Slice) and isinstance(field.type.elem, Struct) and isinstance(value, list)
        ):
            value = [marshal(item, field.type.elem) if isinstance(item, dict) else item for item in value]
        if value is None:
            if field.omitempty or (isinstance(field.type, Struct) and field.type.pointer):
                continue
            value = _zero(field.type)
        elif field.omitempty and _empty(value) and not isinstance(field.type, Struct):
            continue
        out[field.json] = value
    return out


def _zero(go_type: GoType) -> Any:
    if go_type == STRING:
        return ""
    if go_type in (INT, FLOAT64):
        return 0
    if go_type == BOOL:
        return False
    if isinstance(go_type, Struct):
        return marshal({}, go_type)
    return None


class Syntax(NamedTuple):
    """A body that is not JSON, as Go's decoder words it."""

    message: str


def parse(raw: bytes) -> Any | Syntax:
    """The JSON value of ``raw``, or a Syntax error worded as encoding/json words its own (the
    common cases: the exact wording of rarer ones differs)."""
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return Syntax("unexpected end of JSON input")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return Syntax("unexpected end of JSON input")
        char = text[exc.pos]
        context = {
            "Expecting value": "looking for beginning of value",
            "Expecting ':' delimiter": "after object key",
            "Expecting ',' delimiter": "after object key:value pair",
            "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
            "Extra data": "after top-level value",
        }.get(exc.msg, "in string literal")
        return Syntax(f"invalid character {char!r} {context}")
    except RecursionError:
        return Syntax("exceeded max depth")
    return Syntax("invalid character in JSON input")  # orjson refused what json took (NaN, ...)
