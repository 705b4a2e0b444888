"""The pydantic schema of prebuild.toml: shapes and per-value checks, no cross-key logic.

Strict (no "2" -> 2 coercion) and `extra="forbid"` so typos surface as located errors instead of
silently ignored settings. Cache tables have every key optional because a per-image `cache`
overrides the project `[cache]` key by key; defaults are applied when building the Project.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from prebuild.durations import parse_duration

_STRICT = ConfigDict(extra="forbid", strict=True)

KNOWN_PLATFORMS: tuple[str, ...] = (
    "linux",  # the builder's native architecture
    "linux/amd64",
    "linux/amd64/v2",
    "linux/amd64/v3",
    "linux/amd64/v4",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v5",
    "linux/arm/v6",
    "linux/arm/v7",
    "linux/riscv64",
    "linux/ppc64le",
    "linux/s390x",
    "linux/386",
    "linux/mips64le",
    "linux/loong64",
)
TEMPLATE_FIELDS = ("registry", "name")

_NAME_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_IMAGE_NAME = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"  # DNS name, IPv4 or [IPv6]
_HOST_PORT = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
_REGISTRY = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?(?:/{_PATH_COMPONENT})*")
_PLATFORM_SHAPE = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'X'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _image_name(value: str) -> str:
    if not _IMAGE_NAME.fullmatch(value):
        raise ValueError(
            f"invalid image name {value!r}: use lowercase path components "
            "[a-z0-9]+ joined by '.', '_' or '-', separated by '/' (e.g. 'ci/base')"
        )
    return value


def _platform(value: str) -> str:
    if value in KNOWN_PLATFORMS:
        return value
    shape = "" if _PLATFORM_SHAPE.fullmatch(value) else " (expected os/arch[/variant])"
    hint = did_you_mean(value, KNOWN_PLATFORMS) or f"; known: {', '.join(KNOWN_PLATFORMS)}"
    raise ValueError(f"unknown platform {value!r}{shape}{hint}")


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


def _registry(value: str) -> str:
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise ValueError(f"invalid registry {value!r}: drop the scheme '{scheme}://'")
    if "@" in value:
        raise ValueError(f"invalid registry {value!r}: a registry prefix has no digest")
    last = value.rsplit("/", 1)[-1]
    if "/" in value and ":" in last:
        raise ValueError(
            f"invalid registry {value!r}: a registry prefix has no tag "
            "(images are pushed as REGISTRY/NAME:KEY)"
        )
    if not _REGISTRY.fullmatch(value):
        raise ValueError(
            f"invalid registry {value!r}: expected host[:port][/path] with a lowercase path, "
            "e.g. 'ghcr.io/org/ci' or '127.0.0.1:5000/ci'"
        )
    return value


def _host_port(value: str) -> str:
    if not _HOST_PORT.fullmatch(value):
        raise ValueError(
            f"invalid registry host {value!r}: expected host[:port], no scheme or path"
        )
    return value


def _tag(value: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError(f"invalid tag {value!r}: use [A-Za-z0-9_.-], at most 128 characters")
    return value


def _template(value: str) -> str:
    for field in _PLACEHOLDER.findall(value):
        if field not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder '{{{field}}}' in {value!r}; "
                f"available: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
    return value


def _relative_input(value: str) -> str:
    if not value or value.startswith("/"):
        raise ValueError(f"invalid input {value!r}: use a path or glob relative to the repo root")
    return value


def _duration_text(value: str) -> str:
    parse_duration(value)
    return value


def _stringify(value: Any) -> Any:
    """Build args and labels become strings; TOML `A = 1` and `A = true` are accepted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


ImageName = Annotated[str, AfterValidator(_image_name)]
Platform = Annotated[str, AfterValidator(_platform)]
Platforms = Annotated[list[Platform], Field(min_length=1), AfterValidator(_unique)]
Registry = Annotated[str, AfterValidator(_registry)]
HostPort = Annotated[str, AfterValidator(_host_port)]
Tag = Annotated[str, AfterValidator(_tag)]
Template = Annotated[str, AfterValidator(_template)]
InputPath = Annotated[str, AfterValidator(_relative_input)]
Text = Annotated[str, AfterValidator(_non_empty)]
Seconds = Annotated[int, BeforeValidator(parse_duration)]
DurationText = Annotated[str, AfterValidator(_duration_text)]
StrMap = dict[str, Annotated[str, BeforeValidator(_stringify)]]


class S3Model(BaseModel):
    """`[cache.s3]`; unset keys fall back to the project table, then S3Settings defaults."""

    model_config = _STRICT
    bucket: Text | None = None
    region: Text | None = None
    endpoint_url: Text | None = None
    use_path_style: bool | None = None
    prefix: Template | None = None
    name: Template | None = None
    touch_refresh: DurationText | None = None
    upload_parallelism: Annotated[int, Field(ge=1)] | None = None


class CacheModel(BaseModel):
    """`[cache]` or an image's `cache`; every key optional so images override key by key."""

    model_config = _STRICT
    backend: Literal["registry", "none", "s3", "s3-sync"] | None = None
    ref: Template | None = None
    mode: Literal["min", "max"] | None = None
    image_manifest: bool | None = None
    oci_mediatypes: bool | None = None
    ignore_error: bool | None = None
    extra_from: list[Template] | None = None
    s3: S3Model | None = None


class DefaultsModel(BaseModel):
    """`[defaults]`: applied to every image that does not set the key itself."""

    model_config = _STRICT
    context: Text | None = None
    dockerfile: Text | None = None
    platforms: Platforms | None = None
    build_args: StrMap = Field(default_factory=dict)
    labels: StrMap = Field(default_factory=dict)
    refresh: Seconds | None = None
    tags: Annotated[list[Tag], AfterValidator(_unique)] | None = None
    inputs: list[InputPath] | None = None


class GcModel(BaseModel):
    """`[gc]`: what `prebuild gc` keeps."""

    model_config = _STRICT
    keep: Annotated[int, Field(ge=1)] = 5
    max_age: Seconds | None = None
    grace: Seconds | None = None
    after_build: bool = False


class ImageModel(BaseModel):
    """One `[[image]]` table."""

    model_config = _STRICT
    name: ImageName
    dockerfile: Text | None = None
    context: Text | None = None
    target: Text | None = None
    build_args: StrMap = Field(default_factory=dict)
    platforms: Platforms | None = None
    labels: StrMap = Field(default_factory=dict)
    inputs: list[InputPath] | None = None
    refresh: Seconds | None = None
    depends_on: Annotated[list[ImageName], AfterValidator(_unique)] = Field(default_factory=list)
    tags: Annotated[list[Tag], AfterValidator(_unique)] | None = None
    cache: CacheModel | None = None


class ConfigModel(BaseModel):
    """The whole file (or `[tool.prebuild]`). Sources are validated per kind afterwards."""

    model_config = _STRICT
    registry: Registry
    insecure_registries: list[HostPort] = Field(default_factory=list)
    builder: Text | None = None
    jobs: Annotated[int, Field(ge=1)] = 1
    cache: CacheModel = Field(default_factory=CacheModel)
    defaults: DefaultsModel = Field(default_factory=DefaultsModel)
    gc: GcModel = Field(default_factory=GcModel)
    image: list[ImageModel] = Field(default_factory=list)
    source: list[dict[str, Any]] = Field(default_factory=list)
