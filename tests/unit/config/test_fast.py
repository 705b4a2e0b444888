"""The pydantic-free fast path (config_fast) accepts only what the schema accepts, and builds
the very Project the pydantic path builds."""

from __future__ import annotations

import copy
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from prebuild.config import fast as config_fast
from prebuild.config import load
from prebuild.config.schema import ConfigModel
from prebuild.errors import ConfigError

RICH = """
registry = "127.0.0.1:5000/org/ci"
insecure_registries = ["myreg:5000", "plain.example"]
builder = "ci-builder"
jobs = 3

[cache]
backend = "registry"
ref = "{registry}/{name}:buildcache"
mode = "min"
image_manifest = false
oci_mediatypes = true
ignore_error = false
extra_from = ["{registry}/{name}:buildcache-main"]

[cache.s3]
region = "eu-west-1"
prefix = "cache/{name}/"

[defaults]
context = "ci/base"
platforms = ["linux", "linux/arm64"]
build_args = { BASE = "debian", N = 1, F = 1.5, ON = true }
labels = { team = "ci" }
tags = ["latest", "stable"]
refresh = "7d"
inputs = ["ci/versions.txt", "ci/**/*.sh"]

[gc]
keep = 3
max_age = "14d"
grace = "12h"
after_build = true

[history]
store = "dir"
path = ".prebuild/history"

[[image]]
name = "base"

[[image]]
name = "tools/app"
context = "ci/app"
dockerfile = "ci/app/Dockerfile"
target = "final"
build_args = { VARIANT = "release" }
platforms = ["linux/amd64"]
labels = { extra = "1" }
inputs = ["ci/app.txt"]
refresh = "1d12h"
depends_on = ["base"]
tags = ["edge"]

[image.cache]
backend = "s3-sync"
mode = "max"

[image.cache.s3]
bucket = "bucket"
endpoint_url = "http://127.0.0.1:9000"
use_path_style = true
name = "{name}-cache"
touch_refresh = "24h"
upload_parallelism = 2

[[image]]
name = "lint"
cache = { backend = "none" }
"""

MINIMAL = 'registry = "ghcr.io/org/ci"\n[[image]]\nname = "base"\ncontext = "ci/base"\n'

# Replacement values tried at every key of RICH: wrong types, edge cases, near misses.
ODD_VALUES: list[Any] = [
    True, 0, 1, -1, 2.0, "", " ", "x", "7days", "linux", "LINUX", "a b", "{nope}",
    "http://x.example", [], ["x"], ["x", "x"], [1], {}, {"k": "v"}, {"k": [1]},
]  # fmt: skip


def _repo(root: Path) -> None:
    for directory in ("ci/base", "ci/app", "ci/lint"):
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / "Dockerfile").write_text("FROM scratch\n")


def _dump(data: Any, prefix: str = "") -> str:
    """A tiny TOML writer (tables of scalars, arrays and inline tables) for mutated configs."""
    scalars, tables, arrays = [], [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            scalars.append(f"{_key(key)} = {_value(value)}")
    out = "\n".join(scalars) + "\n"
    for key, value in tables:
        out += f"\n[{prefix}{_key(key)}]\n" + _dump(value, f"{prefix}{_key(key)}.")
    for key, values in arrays:
        for value in values:
            out += f"\n[[{prefix}{_key(key)}]]\n" + _dump(value, f"{prefix}{_key(key)}.")
    return out


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"


def _both(root: Path, text: str, monkeypatch) -> tuple[object, object, bool]:
    """(fast result, pydantic result, whether the fast path accepted it)."""
    (root / "prebuild.toml").write_text(text)
    accepted = config_fast.validate(tomllib.loads(text)) is not None
    results = []
    for fast in (True, False):
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(config_fast, "validate", lambda data: None)
            try:
                results.append(load.load_project(cwd=root, env={}))
            except ConfigError as error:
                results.append(f"error: {error}")
    return results[0], results[1], accepted


def _paths(data: Any, path: tuple = ()) -> list[tuple]:
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*path, key))
            found += _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if isinstance(value, dict):
                found += _paths(value, (*path, index))
    return found


def _set(data: Any, path: tuple, value: Any) -> Any:
    data = copy.deepcopy(data)
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize("text", [RICH, MINIMAL], ids=["rich", "minimal"])
def test_valid_configs_take_the_fast_path_and_build_the_same_project(
    tmp_path: Path, monkeypatch, text: str
) -> None:
    _repo(tmp_path)
    fast, slow, accepted = _both(tmp_path, text, monkeypatch)
    assert accepted
    assert fast == slow


def test_the_fast_path_never_accepts_what_pydantic_rejects_nor_builds_differently(
    tmp_path: Path, monkeypatch
) -> None:
    _repo(tmp_path)
    base = tomllib.loads(RICH)
    checked = accepted = 0
    for path in _paths(base):
        for value in [*ODD_VALUES, _DELETE]:
            text = _dump(_set(base, path, value))
            fast, slow, took = _both(tmp_path, text, monkeypatch)
            checked += 1
            if took:  # then the schema accepts it too (later filesystem checks may not)
                accepted += 1
                ConfigModel.model_validate(tomllib.loads(text))
            assert fast == slow, f"{path} = {value!r}"
    assert checked > 500 and 0 < accepted < checked


def test_sources_and_unknown_keys_go_to_pydantic(tmp_path: Path) -> None:
    assert config_fast.validate({"registry": "r.example/ci", "source": []}) is None
    assert config_fast.validate({"registry": "r.example/ci", "imgae": []}) is None
    assert config_fast.validate({"registry": "r.example/ci"}) is not None


def test_loading_a_plain_config_does_not_import_pydantic(tmp_path: Path) -> None:
    import subprocess

    _repo(tmp_path)
    (tmp_path / "prebuild.toml").write_text(MINIMAL)
    code = (
        "import sys; from prebuild.config.load import load_project; load_project(); "
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# -- the hand-written tables and the pydantic schema name the same fields ----------------------

TABLES = {  # schema model -> the fast path's table for it
    "ConfigModel": config_fast.CONFIG,
    "CacheModel": config_fast.CACHE,
    "S3Model": config_fast.S3,
    "DefaultsModel": config_fast.DEFAULTS,
    "GcModel": config_fast.GC,
    "HistoryModel": config_fast.HISTORY,
    "ImageModel": config_fast.IMAGE,
}


def _models_reachable_from(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every schema model a config can contain, found from the annotations (so a new table
    added to the schema shows up here without anyone listing it)."""
    found = {model.__name__: model}
    for info in model.model_fields.values():
        for kind in _types_in(info.annotation):
            if (
                isinstance(kind, type)
                and issubclass(kind, BaseModel)
                and kind.__name__ not in found
            ):
                found |= _models_reachable_from(kind)
    return found


def _types_in(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [annotation] if not args else [t for arg in args for t in _types_in(arg)]


def test_every_schema_table_has_a_fast_table() -> None:
    assert set(_models_reachable_from(ConfigModel)) == set(TABLES)
    module_tables = [v for v in vars(config_fast).values() if isinstance(v, dict) and v]
    fields_tables = [t for t in module_tables if all(isinstance(f, tuple) for f in t.values())]
    assert sorted(map(id, fields_tables)) == sorted(map(id, TABLES.values()))


@pytest.mark.parametrize("model_name", sorted(TABLES))
def test_fast_table_has_the_schema_fields_and_defaults(model_name: str) -> None:
    model = _models_reachable_from(ConfigModel)[model_name]
    fields = TABLES[model_name]
    assert list(fields) == list(model.model_fields), f"{model_name}: field sets differ"
    for name, (_, default) in fields.items():
        info = model.model_fields[name]
        if info.is_required():
            continue
        expected = info.get_default(call_default_factory=True)
        given = default()
        if isinstance(expected, BaseModel):
            assert given.model_dump() == expected.model_dump(), f"{model_name}.{name}"
        else:
            assert given == expected, f"{model_name}.{name}"
