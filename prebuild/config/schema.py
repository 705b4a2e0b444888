"""The pydantic schema of prebuild.toml: shapes and per-value checks, no cross-key logic.

Strict (no "2" -> 2 coercion) and `extra="forbid"` so typos surface as located errors instead of
silently ignored settings. Cache tables have every key optional because a per-image `cache`
overrides the project `[cache]` key by key; defaults are applied when building the Project.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from prebuild.config import values as check
from prebuild.durations import parse_duration

_STRICT = ConfigDict(extra="forbid", strict=True)

ImageName = Annotated[str, AfterValidator(check.image_name)]
Platform = Annotated[str, AfterValidator(check.platform)]
Platforms = Annotated[list[Platform], Field(min_length=1), AfterValidator(check.unique)]
Registry = Annotated[str, AfterValidator(check.registry)]
HostPort = Annotated[str, AfterValidator(check.host_port)]
Tag = Annotated[str, AfterValidator(check.tag)]
Template = Annotated[str, AfterValidator(check.template)]
InputPath = Annotated[str, AfterValidator(check.relative_input)]
Text = Annotated[str, AfterValidator(check.non_empty)]
Seconds = Annotated[int, BeforeValidator(parse_duration)]
DurationText = Annotated[str, AfterValidator(check.duration_text)]
StrMap = dict[str, Annotated[str, BeforeValidator(check.stringify)]]


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
    tags: Annotated[list[Tag], AfterValidator(check.unique)] | None = None
    inputs: list[InputPath] | None = None


class GcModel(BaseModel):
    """`[gc]`: what `prebuild gc` keeps."""

    model_config = _STRICT
    keep: Annotated[int, Field(ge=1)] = 5
    max_age: Seconds | None = None
    grace: Seconds | None = None
    after_build: bool = False


class HistoryModel(BaseModel):
    """`[history]`: where each run's report is kept for `prebuild report` and `explain --since`."""

    model_config = _STRICT
    store: Literal["registry", "s3", "dir", "none"] = "registry"
    path: Text | None = None


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
    depends_on: Annotated[list[ImageName], AfterValidator(check.unique)] = Field(
        default_factory=list
    )
    tags: Annotated[list[Tag], AfterValidator(check.unique)] | None = None
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
    history: HistoryModel = Field(default_factory=HistoryModel)
    image: list[ImageModel] = Field(default_factory=list)
    source: list[dict[str, Any]] = Field(default_factory=list)
