"""pydantic validation errors reworded as config Problems: TOML type names, did-you-mean.

pydantic speaks Python ("Input should be a valid dictionary or instance of CacheModel"); users
wrote TOML ("expected a table, got string 'x'").
"""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from prebuild.config.locate import Loc, Problem
from prebuild.config.values import did_you_mean

_TOML_TYPES = {str: "string", bool: "boolean", int: "integer", float: "float"}
_TOML_TYPES.update({list: "array", dict: "table"})
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def from_validation(
    error: ValidationError, model: type[BaseModel], prefix: Loc = ()
) -> list[Problem]:
    """One Problem per pydantic error, its loc under `prefix` (e.g. ('source', 0))."""
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        problems.append(Problem(_message(item, model, loc), loc=(*prefix, *loc)))
    return problems


def _message(item: Any, model: type[BaseModel], loc: Loc) -> str:
    """pydantic's message reworded in TOML terms, with did-you-mean for unknown keys."""
    kind, message, value = item["type"], item["msg"], item.get("input")
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), _fields_at(model, loc[:-1]))}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", item.get("ctx", {}).get("expected", ""))
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        expected = ", ".join(map(repr, choices))
        return f"invalid value {value!r}: expected one of {expected}{hint}"
    if kind == "value_error":
        return str(item.get("ctx", {}).get("error", message.removeprefix("Value error, ")))
    if kind == "too_short":
        return "must not be empty"
    return f"{message[:1].lower()}{message[1:]}, got {_describe(value)}"


def _describe(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 40 else f"{text[:37]}..."
    return f"{_TOML_TYPES.get(type(value), type(value).__name__)} {text}"


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Key names the model allows at `loc` (for did-you-mean), [] when not a table."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif get_origin(current) in (list, tuple, dict):
            current = get_args(current)[-1 if get_origin(current) is dict else 0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `| None`."""
    while True:
        origin = get_origin(annotation)
        if origin is not None and hasattr(annotation, "__metadata__"):
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
