"""Find, parse and validate the prebuild config into a Project, or fail with located errors.

Every failure is a ConfigError naming file, line and key path (exit 2), and one run reports all
the mistakes it can see: schema problems first, then cross-key and filesystem checks.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prebuild.config import depth as config_depth
from prebuild.config import fast as config_fast
from prebuild.config.checks import Entry, check_all
from prebuild.config.discover import CONFIG_FILE, PYPROJECT, find_config
from prebuild.config.locate import Loc, Problem, TomlLocator, header_before
from prebuild.config.settings import (
    build_settings,
    defaults_spec,
    expand_cache,
    native_image,
    override_s3_endpoint,
)
from prebuild.errors import ConfigError
from prebuild.model import Origin, Project
from prebuild.pathnames import relative_or_absolute

if TYPE_CHECKING:  # pydantic is imported only when a config needs it (see config_fast)
    from pydantic import BaseModel

    from prebuild.config.schema import ConfigModel

REGISTRY_ENV = "PREBUILD_REGISTRY"
S3_ENDPOINT_ENV = "PREBUILD_S3_ENDPOINT_URL"  # replaces every [cache.s3] endpoint_url
PYPROJECT_PREFIX: Loc = ("tool", "prebuild")

_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_IMAGE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*image[ \t]*\]\]", re.MULTILINE)
_IMAGE_HEADER_PYPROJECT = re.compile(
    r"^[ \t]*\[\[[ \t]*tool[ \t]*\.[ \t]*prebuild[ \t]*\.[ \t]*image[ \t]*\]\]", re.MULTILINE
)


class ConfigErrors(ConfigError):
    """Several located config errors, one per line; `errors` keeps them individually."""

    def __init__(self, errors: list[ConfigError]) -> None:
        files = sorted({e.file for e in errors if e.file})
        where = f" in {', '.join(files)}" if files else ""
        lines = [f"{len(errors)} problems{where}:", *(str(e) for e in errors)]
        super().__init__("\n".join(lines))
        self.errors = errors
        self.file, self.line, self.key = errors[0].file, errors[0].line, errors[0].key


def load_project(
    config: Path | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    partial: bool = False,
) -> Project:
    """The validated Project for `config` (else $PREBUILD_CONFIG, else found from `cwd` up).

    `partial`: images a source could not import (e.g. an env file whose image name is unknown)
    do not fail the load; they are left out and listed in `Project.import_errors` (plan,
    explain and pull serve the other images; validate and build stay strict)."""
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    path = find_config(config, cwd=cwd, env=env)
    document = _Document.read(path, cwd)
    data = dict(document.data)
    registry_override = env.get(REGISTRY_ENV) or None
    if registry_override:
        data["registry"] = registry_override

    problems: list[Problem] = []
    fast = config_fast.validate(data)
    sources: list[tuple[int, BaseModel]] = []
    if fast is not None:  # certainly valid: tables with the schema models' attributes
        model = cast("ConfigModel", fast)
    else:  # not certainly valid, or has sources: pydantic decides and explains
        model, sources = _validate(data, document, registry_override)

    repo_root = path.parent
    settings = build_settings(model, model.registry, repo_root)
    base = defaults_spec(model, repo_root, settings.registry)
    entries = []
    lines = document.image_lines(len(model.image))
    for index, table in enumerate(model.image):
        key = f"image {table.name!r} (image[{index}])"
        origin = Origin(document.display, lines[index], key)
        spec = native_image(model, table, base, settings.registry, origin)
        entries.append(Entry(spec, index, table))
    imports: list[Problem] = []
    for index, source in sources:
        entries += _source_entries(
            document, index, source, base, settings.registry, problems, imports
        )
    problems += check_all(model, entries)
    document.raise_if(problems if partial else problems + imports)
    images = tuple(entry.spec for entry in entries)
    if s3_endpoint := env.get(S3_ENDPOINT_ENV):
        images = override_s3_endpoint(images, s3_endpoint)
    import_errors = tuple(str(document.render(p)) for p in imports)
    return Project(
        config_file=path,
        repo_root=repo_root,
        settings=settings,
        images=images,
        import_errors=import_errors,
    )


def _validate(
    data: dict[str, Any], document: _Document, registry_override: str | None
) -> tuple[ConfigModel, list[tuple[int, BaseModel]]]:
    """The schema (pydantic) and every source table; raises every located problem at once."""
    from pydantic import ValidationError

    from prebuild.config.messages import from_validation
    from prebuild.config.schema import ConfigModel

    problems: list[Problem] = []
    model: ConfigModel | None = None
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as error:
        problems += from_validation(error, ConfigModel)
    sources = _validate_sources(data.get("source"), problems)
    if registry_override:
        problems = [_registry_env_problem(p, registry_override) for p in problems]
    document.raise_if(problems)
    assert model is not None
    return model, sources


@dataclasses.dataclass
class _Document:
    """The config text and what locating errors in it needs."""

    path: Path
    display: str  # the path as messages show it (relative to cwd when below it)
    text: str
    data: dict[str, Any]
    prefix: Loc  # ('tool', 'prebuild') in pyproject.toml
    _locator: TomlLocator | None = None

    @classmethod
    def read(cls, path: Path, cwd: Path) -> _Document:
        display = relative_or_absolute(path, cwd)
        try:
            text = _read_regular(path).decode("utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise ConfigError(f"cannot read config file: {reason}", file=display) from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise _toml_error(error, text, display) from None
        except RecursionError:
            config_depth.check(text, None, display)
            raise
        config_depth.check(text, document, display)
        if path.name != PYPROJECT:
            return cls(path, display, text, document, ())
        table = document.get("tool", {}).get("prebuild")
        if not isinstance(table, dict):
            what = "no [tool.prebuild] table" if table is None else "[tool.prebuild] is not a table"
            raise ConfigError(what, file=display, hint=f"or put the config in {CONFIG_FILE}")
        return cls(path, display, text, table, PYPROJECT_PREFIX)

    def line(self, loc: Loc) -> int:
        if self._locator is None:
            self._locator = TomlLocator(self.text)
        line = self._locator.line_of((*self.prefix, *loc))
        if self.prefix and line is not None and line < self._locator.lines.get(self.prefix, 0):
            line = None  # matched only ('tool',): somewhere else in pyproject.toml
        return line or self._locator.lines.get(self.prefix, 1)

    def image_lines(self, count: int) -> list[int]:
        """The line of each `[[image]]` table: found by its header when every image has one
        (the usual layout: no full scan of a 500-image config on every command), else by
        the locator."""
        header = _IMAGE_HEADER_PYPROJECT if self.prefix else _IMAGE_HEADER
        starts = [m.start() for m in header.finditer(self.text)]
        if len(starts) != count:
            return [self.line(("image", index)) for index in range(count)]
        lines, line, position = [], 1, 0
        for start in starts:
            line += self.text.count("\n", position, start)
            position = start
            lines.append(line)
        return lines

    def key(self, loc: Loc) -> str:
        """`image 'base' (image[2]).platforms[0]` style key path."""
        text = ""
        for position, part in enumerate(loc):
            if isinstance(part, int):
                text += f"[{part}]"
            elif part == "[key]":
                continue
            else:
                segment = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
                text += f".{segment}" if text else segment
            if position == 1 and loc[0] == "image" and isinstance(part, int):
                name = _image_name(self.data, part)
                if name is not None:
                    text = f"image {name!r} (image[{part}])"
        return text

    def render(self, problem: Problem) -> ConfigError:
        if problem.error is not None:
            return problem.error
        if problem.origin is not None:
            origin = problem.origin
            key = f"{origin.key}{problem.suffix}" if origin.key else problem.suffix.lstrip(".")
            return ConfigError(problem.message, file=origin.file, line=origin.line, key=key or None)
        loc = problem.loc or ()
        line = self.line(problem.line_loc if problem.line_loc is not None else loc)
        return ConfigError(problem.message, file=self.display, line=line, key=self.key(loc) or None)

    def raise_if(self, problems: list[Problem]) -> None:
        if not problems:
            return
        errors: list[ConfigError] = []
        seen: set[str] = set()
        for error in map(self.render, problems):
            if str(error) not in seen:  # a set: pairwise comparison was quadratic
                seen.add(str(error))
                errors.append(error)
        errors.sort(key=lambda e: (e.file != self.display, e.file or "", e.line or 0))
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _read_regular(path: Path) -> bytes:
    """The file's bytes, refusing FIFOs, devices and sockets (a FIFO would block forever):
    opened non-blocking, then checked with fstat, so nothing can swap the file in between."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def _image_name(data: Mapping[str, Any], index: int) -> str | None:
    images = data.get("image")
    if isinstance(images, list) and index < len(images) and isinstance(images[index], dict):
        name = images[index].get("name")
        return name if isinstance(name, str) else None
    return None


def _toml_error(error: tomllib.TOMLDecodeError, text: str, display: str) -> ConfigError:
    message = str(error)
    match = _TOML_POSITION.search(message)
    line = column = None
    if match:
        message = message[: match.start()]
        line = int(match.group(1)) if match.group(1) else max(text.count("\n"), 1)
        column = int(match.group(2)) if match.group(2) else None
    where = f" (column {column})" if column else ""
    key = header_before(text, line) if line else None
    return ConfigError(f"invalid TOML: {message}{where}", file=display, line=line, key=key)


def _validate_sources(raw: Any, problems: list[Problem]) -> list[tuple[int, BaseModel]]:
    """Each `[[source]]` validated by the model its `kind` selects (see prebuild.sources)."""
    from pydantic import ValidationError

    from prebuild.config.messages import from_validation
    from prebuild.config.values import did_you_mean
    from prebuild.sources import source_kinds

    if not isinstance(raw, list):
        return []
    kinds = source_kinds()
    known = ", ".join(sorted(kinds)) or "none available"
    sources = []
    for index, table in enumerate(raw):
        if not isinstance(table, dict):
            continue
        kind = table.get("kind")
        loc: Loc = ("source", index, "kind")
        if kind is None:
            problems.append(Problem(f"missing required key 'kind' (known kinds: {known})", loc))
        elif not isinstance(kind, str) or kind not in kinds:
            hint = did_you_mean(kind, sorted(kinds)) if isinstance(kind, str) else ""
            problems.append(Problem(f"unknown source kind {kind!r}{hint}; known: {known}", loc))
        else:
            try:
                sources.append((index, kinds[kind].model_validate(table)))
            except ValidationError as error:
                problems += from_validation(error, kinds[kind], ("source", index))
    return sources


def _source_entries(
    document: _Document,
    index: int,
    source: Any,
    base: Any,
    registry: str,
    problems: list[Problem],
    imports: list[Problem],
) -> list[Entry]:
    """The images a source declares, with cache templates finished and an origin set."""
    try:
        specs = source.images(repo_root=base.repo_root, config_file=document.path, defaults=base)
    except ConfigError as error:
        problems.append(Problem(str(error), error=error))
        return []
    except OSError as error:
        problems.append(Problem(f"source failed: {error}", loc=("source", index)))
        return []
    for failure in getattr(source, "failures", ()):  # images a source could not import
        imports.append(Problem(str(failure), error=failure))
    line = document.line(("source", index))
    entries = []
    for spec in specs:
        key = f"image {spec.name!r} (source[{index}])"
        origin = spec.origin or Origin(document.display, line, key)
        if origin.key is None:
            origin = dataclasses.replace(origin, key=key)
        cache = expand_cache(spec.cache, registry, spec.name)
        entries.append(Entry(dataclasses.replace(spec, cache=cache, origin=origin)))
    return entries


def _registry_env_problem(problem: Problem, value: str) -> Problem:
    """Blame $PREBUILD_REGISTRY, not the file, for a bad registry it supplied."""
    if problem.loc != ("registry",):
        return problem
    message = f"{problem.message} (set by env {REGISTRY_ENV}={value})"
    return Problem(message, error=ConfigError(message, file=f"env {REGISTRY_ENV}", key="registry"))
