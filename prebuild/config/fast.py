"""Validate a plain config without pydantic: the runner hook's fast path.

`prebuild pull` loads the config on every CI job, and importing pydantic and building the
schema's models costs more than everything else the hook does before its pull. This module
checks a config against the same schema by hand: every key known (`extra="forbid"`), every
value of exactly the type config_schema declares (strict: no coercion) and passing the very
same value checks (config_values). It returns tables with the schema models' attributes,
which config_build and config_checks use like the models.

It only ever *accepts*: at the first thing it does not expect it returns None, and the config
is validated again with pydantic, which alone reports errors (so messages never depend on the
path). Configs with `[[source]]` tables always take the pydantic path: sources are pydantic
models. tests/unit/config/test_fast.py checks that both paths build equal Projects and that
every table here names the schema's fields, with its defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prebuild.config import values as check
from prebuild.durations import parse_duration


class _Reject(Exception):
    """Not for the fast path: pydantic will decide (and explain)."""


Validator = Callable[[Any], Any]
Fields = Mapping[str, tuple[Validator, Callable[[], Any]]]  # name -> (validate, default)


class Table:
    """A validated table: one attribute per schema field (given value or the model's default),
    plus the two pydantic methods config_build uses, with pydantic's semantics."""

    def __init__(self, fields: Fields, given: dict[str, Any]) -> None:
        self._fields = fields
        self._given = given  # pydantic's model_fields_set, with the values
        for name, (_, default) in fields.items():
            setattr(self, name, given[name] if name in given else default())

    @property
    def model_fields_set(self) -> set[str]:
        return set(self._given)

    def model_dump(
        self,
        *,
        exclude_unset: bool = False,
        exclude: set[str] | None = None,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._fields:
            if (exclude_unset and name not in self._given) or (exclude and name in exclude):
                continue
            value = getattr(self, name)
            if exclude_none and value is None:
                continue
            out[name] = _dump(value, exclude_unset=exclude_unset, exclude_none=exclude_none)
        return out

    def model_copy(self, *, update: Mapping[str, Any]) -> Table:
        return Table(self._fields, {**self._given, **update})


def _dump(value: Any, *, exclude_unset: bool, exclude_none: bool) -> Any:
    if isinstance(value, Table):
        return value.model_dump(exclude_unset=exclude_unset, exclude_none=exclude_none)
    if isinstance(value, list):
        return [_dump(v, exclude_unset=exclude_unset, exclude_none=exclude_none) for v in value]
    if isinstance(value, dict):
        return {
            k: _dump(v, exclude_unset=exclude_unset, exclude_none=exclude_none)
            for k, v in value.items()
        }
    return value


# -- value validators: strict types, then the schema's own checks ----------------------------


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _Reject
    return value


def _with(test: Callable[[str], str]) -> Validator:
    return lambda value: test(_string(value))


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Reject
    return value


def _positive_int(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise _Reject
    return value


def _seconds(value: Any) -> int:
    return parse_duration(_string(value))


def _one_of(*choices: str) -> Validator:
    def validate(value: Any) -> str:
        text = _string(value)
        if text not in choices:
            raise _Reject
        return text

    return validate


def _list(item: Validator, *, unique: bool = False, non_empty: bool = False) -> Validator:
    def validate(value: Any) -> list[Any]:
        if type(value) is not list or (non_empty and not value):
            raise _Reject
        items = [item(v) for v in value]
        return check.unique(items) if unique else items

    return validate


def _str_map(value: Any) -> dict[str, str]:
    if type(value) is not dict:
        raise _Reject
    return {_string(k): _string(check.stringify(v)) for k, v in value.items()}


def _table(fields: Fields, required: tuple[str, ...] = ()) -> Validator:
    def validate(value: Any) -> Table:
        if type(value) is not dict or any(name not in value for name in required):
            raise _Reject
        given = {}
        for key, raw in value.items():
            if key not in fields:
                raise _Reject
            given[key] = fields[key][0](raw)
        return Table(fields, given)

    return validate


def _none() -> None:
    return None


def _never(value: Any) -> Any:
    raise _Reject


_TEXT = _with(check.non_empty)
_TEMPLATE = _with(check.template)
_TAGS = _list(_with(check.tag), unique=True)
_PLATFORMS = _list(_with(check.platform), unique=True, non_empty=True)
_INPUTS = _list(_with(check.relative_input))

S3: Fields = {
    "bucket": (_TEXT, _none),
    "region": (_TEXT, _none),
    "endpoint_url": (_TEXT, _none),
    "use_path_style": (_boolean, _none),
    "prefix": (_TEMPLATE, _none),
    "name": (_TEMPLATE, _none),
    "touch_refresh": (_with(check.duration_text), _none),
    "upload_parallelism": (_positive_int, _none),
}
CACHE: Fields = {
    "backend": (_one_of("registry", "none", "s3", "s3-sync"), _none),
    "ref": (_TEMPLATE, _none),
    "mode": (_one_of("min", "max"), _none),
    "image_manifest": (_boolean, _none),
    "oci_mediatypes": (_boolean, _none),
    "ignore_error": (_boolean, _none),
    "extra_from": (_list(_TEMPLATE), _none),
    "s3": (_table(S3), _none),
}
DEFAULTS: Fields = {
    "context": (_TEXT, _none),
    "dockerfile": (_TEXT, _none),
    "platforms": (_PLATFORMS, _none),
    "build_args": (_str_map, dict),
    "labels": (_str_map, dict),
    "refresh": (_seconds, _none),
    "tags": (_TAGS, _none),
    "inputs": (_INPUTS, _none),
}
GC: Fields = {
    "keep": (_positive_int, lambda: 5),
    "max_age": (_seconds, _none),
    "grace": (_seconds, _none),
    "after_build": (_boolean, lambda: False),
}
HISTORY: Fields = {
    "store": (_one_of("registry", "s3", "dir", "none"), lambda: "registry"),
    "path": (_TEXT, _none),
}
IMAGE: Fields = {
    "name": (_with(check.image_name), _none),
    "dockerfile": (_TEXT, _none),
    "context": (_TEXT, _none),
    "target": (_TEXT, _none),
    "build_args": (_str_map, dict),
    "platforms": (_PLATFORMS, _none),
    "labels": (_str_map, dict),
    "inputs": (_INPUTS, _none),
    "refresh": (_seconds, _none),
    "depends_on": (_list(_with(check.image_name), unique=True), list),
    "tags": (_TAGS, _none),
    "cache": (_table(CACHE), _none),
}
CONFIG: Fields = {
    "registry": (_with(check.registry), _none),
    "insecure_registries": (_list(_with(check.host_port)), list),
    "builder": (_TEXT, _none),
    "jobs": (_positive_int, lambda: 1),
    "cache": (_table(CACHE), lambda: Table(CACHE, {})),
    "defaults": (_table(DEFAULTS), lambda: Table(DEFAULTS, {})),
    "gc": (_table(GC), lambda: Table(GC, {})),
    "history": (_table(HISTORY), lambda: Table(HISTORY, {})),
    "image": (_list(_table(IMAGE, required=("name",))), list),
    "source": (_never, list),  # sources are pydantic models: the pydantic path handles them
}


def validate(data: Mapping[str, Any]) -> Table | None:
    """The config as schema-like tables when it is certainly valid; None when pydantic must
    decide (any doubt, any error, any `[[source]]`)."""
    try:
        config: Table = _table(CONFIG, required=("registry",))(dict(data))
        return config
    except (_Reject, ValueError, TypeError):
        return None
