"""Import an existing CI's image matrix from bash env files (Bitcoin Core's `ci/test` style).

Each env file matched by `glob` is one CI job. It is read statically (see `bashenv`) together
with the `shared` defaults file(s): job first, then shared by default, as Bitcoin Core's
`00_setup_env.sh` sources `$FILE_ENV` before filling defaults with `${VAR:-default}`. A job is an
image only when its `gate` variable ends up non-empty (host-only jobs leave it unset); the image
is named by the `name` variable, and every image shares one Dockerfile that receives the job's
values as build args.

Paths in the source (glob, shared, dockerfile, context, inputs) are relative to the directory of
the config file. Env files are not key inputs by themselves: the Dockerfile COPYs `./${FILE_ENV}`,
and values used as build args change the key directly. `inputs`, `depends_on` and `refresh`
behave as on an `[[image]]` (given `inputs` replace the project defaults').
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prebuild.config.values import PLATFORM_SHAPE
from prebuild.durations import parse_duration
from prebuild.errors import ConfigError
from prebuild.model import ImageSpec, Origin
from prebuild.pathnames import relative_or_absolute as _shown
from prebuild.registry import refs
from prebuild.sources.envfiles.reader import EnvResult, read_env

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REPOSITORY = re.compile(refs.IMAGE_NAME)  # image names as the config accepts them
_PLATFORM = re.compile(rf"linux|{PLATFORM_SHAPE}")


def _check_shell_name(name: str) -> str:
    if not _SHELL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a shell variable name")
    return name


class BuildArgFrom(BaseModel):
    """Where one build arg's value comes from: exactly one of `var`, `file_path`, `value`."""

    model_config = ConfigDict(extra="forbid")

    var: str | None = None  # a variable of the job's env (after reading job and shared files)
    file_path: Literal["dot-relative", "relative"] | None = None  # the env file: ./a/b.sh or a/b.sh
    value: str | None = None  # a literal

    @field_validator("var")
    @classmethod
    def _var_name(cls, var: str | None) -> str | None:
        return None if var is None else _check_shell_name(var)

    @model_validator(mode="after")
    def _exactly_one(self) -> BuildArgFrom:
        given = [k for k in ("var", "file_path", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of var, file_path or value "
                f"(got {', '.join(given) if given else 'none'})"
            )
        return self


class EnvFilesSource(BaseModel):
    """`[[source]] kind = "envfiles"`: one image per env file that sets the gate variable."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["envfiles"]
    glob: str = Field(min_length=1)
    shared: list[str] = []
    order: Literal["job-first", "shared-first"] = "job-first"
    gate: str
    name: str
    name_prefix: str = ""
    dockerfile: str
    context: str = "."
    platform_var: str | None = None
    platform_default: str = "linux"
    build_args: dict[str, BuildArgFrom] = {}
    initial_env: dict[str, str] = {}
    inputs: list[str] = []
    depends_on: list[str] = []
    refresh: str | None = None

    @field_validator("gate", "name", "platform_var")
    @classmethod
    def _names(cls, name: str | None) -> str | None:
        return None if name is None else _check_shell_name(name)

    @field_validator("initial_env")
    @classmethod
    def _initial_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            _check_shell_name(name)
        return env

    @field_validator("glob", "shared", "dockerfile", "context", "inputs")
    @classmethod
    def _relative(cls, value: str | list[str]) -> str | list[str]:
        for text in [value] if isinstance(value, str) else value:
            if Path(text).is_absolute():
                raise ValueError(f"{text!r}: use a path relative to the config file")
        return value

    @field_validator("platform_default")
    @classmethod
    def _platform(cls, platform: str) -> str:
        if not _PLATFORM.fullmatch(platform):
            raise ValueError(
                f"invalid platform {platform!r}: expected 'linux' or OS/ARCH[/VARIANT]"
            )
        return platform

    @field_validator("refresh")
    @classmethod
    def _refresh(cls, refresh: str | None) -> str | None:
        if refresh is not None:
            parse_duration(refresh)
        return refresh

    def images(self, *, repo_root: Path, config_file: Path, defaults: ImageSpec) -> list[ImageSpec]:
        """One ImageSpec per gated env file, in sorted file order."""
        base = config_file.parent  # paths stay as given (symlinks kept), like repo_root
        config_shown = _shown(config_file, repo_root)
        context, dockerfile = _join(base, self.context), _join(base, self.dockerfile)
        for path, what in ((context, "context"), (dockerfile, "dockerfile")):
            exists = path.is_dir() if what == "context" else path.is_file()
            if not exists:
                raise ConfigError(f"{what} {_shown(path, repo_root)} not found", file=config_shown)
        shared = [_join(base, s) for s in self.shared]
        jobs = sorted(
            (_join(p) for p in base.glob(self.glob) if p.is_file() and _join(p) not in shared),
            key=lambda p: _shown(p, repo_root),
        )
        if not jobs:
            raise ConfigError(
                f'[[source]] kind = "envfiles": glob {self.glob!r} matched no env files '
                f"(relative to {_shown(base, repo_root)})",
                file=config_shown,
            )
        extra_inputs = tuple(_shown(_join(base, pattern), repo_root) for pattern in self.inputs)
        refresh = defaults.refresh_seconds if self.refresh is None else parse_duration(self.refresh)
        specs: list[ImageSpec] = []
        seen: dict[str, str] = {}  # image name -> file[:line] that produced it
        for job in jobs:
            files = [job, *shared] if self.order == "job-first" else [*shared, job]
            env = read_env(files, initial=self.initial_env, root=repo_root)
            if not env.values.get(self.gate):
                continue  # host-only job: not an image
            name, line = self._image_name(env, job, repo_root)
            if name in seen:
                raise ConfigError(
                    f"image name {name!r} is produced by both {seen[name]} and "
                    f"{_shown(job, repo_root)}",
                    file=_shown(job, repo_root),
                    line=line,
                    hint=f"give each env file its own {self.name}",
                )
            seen[name] = ":".join([_shown(job, repo_root), *([str(line)] if line else [])])
            build_args = {**defaults.build_args}
            for arg, source in self.build_args.items():
                build_args[arg] = self._build_arg(arg, source, env, job, context, repo_root)
            specs.append(
                replace(
                    defaults,
                    name=name,
                    repo_root=repo_root,
                    context=context,
                    dockerfile=dockerfile,
                    build_args=build_args,
                    platforms=(self._platform_of(env, job, repo_root),),
                    extra_inputs=extra_inputs or defaults.extra_inputs,
                    depends_on=tuple(self.depends_on),
                    refresh_seconds=refresh,
                    origin=Origin(file=_shown(job, repo_root), line=line),
                )
            )
        return specs

    def _image_name(self, env: EnvResult, job: Path, repo_root: Path) -> tuple[str, int | None]:
        """The image name and the line of its assignment in `job` (None if set elsewhere)."""
        value = env.values.get(self.name, "")
        where, line = _where(env, self.name, job, repo_root)
        if not value:
            gate_where, gate_line = _where(env, self.gate, job, repo_root)
            raise ConfigError(
                f"sets {self.gate} (so it is an image) but not {self.name}, the image name",
                file=gate_where,
                line=gate_line,
            )
        name = self.name_prefix + value
        if not _REPOSITORY.fullmatch(name) or len(name) > 255:
            raise ConfigError(
                f"image name {name!r} (from {self.name}) is not a valid docker repository name"
                + ("" if where == _shown(job, repo_root) else f" (for {_shown(job, repo_root)})"),
                file=where,
                line=line,
                hint="use lowercase path components [a-z0-9]+ joined by '.', '_' or '-', "
                "separated by '/'",
            )
        return name, line if where == _shown(job, repo_root) else None

    def _platform_of(self, env: EnvResult, job: Path, repo_root: Path) -> str:
        if self.platform_var is None:
            return self.platform_default
        platform = env.values.get(self.platform_var) or self.platform_default
        if not _PLATFORM.fullmatch(platform):
            where, line = _where(env, self.platform_var, job, repo_root)
            raise ConfigError(
                f"invalid platform {platform!r} in {self.platform_var}",
                file=where,
                line=line,
                hint="use 'linux' (the builder's native architecture) or OS/ARCH, e.g. linux/arm64",
            )
        return platform

    def _build_arg(
        self, arg: str, source: BuildArgFrom, env: EnvResult, job: Path, context: Path, root: Path
    ) -> str:
        if source.value is not None:
            return source.value
        if source.var is not None:
            if source.var not in env.values:
                raise ConfigError(
                    f"build arg {arg}: variable {source.var} is not set",
                    file=_shown(job, root),
                    hint="set it in the env file, a shared file, or the source's initial_env",
                )
            return env.values[source.var]
        try:
            relative = job.relative_to(context).as_posix()
        except ValueError:
            raise ConfigError(
                f"build arg {arg}: env file is outside the build context {_shown(context, root)}",
                file=_shown(job, root),
            ) from None
        return f"./{relative}" if source.file_path == "dot-relative" else relative


def _join(base: Path, *parts: str) -> Path:
    """`base / parts` with `..` and `.` folded lexically (no symlink resolution)."""
    return Path(os.path.normpath(base.joinpath(*parts)))


def _where(env: EnvResult, var: str, job: Path, repo_root: Path) -> tuple[str, int | None]:
    """Where to blame `var`'s value: the job file's last assignment of it, else the last one
    anywhere (a shared file), else the job file without a line (initial_env)."""
    places = env.history.get(var, ())
    in_job = [line for path, line in places if path == job]
    file, line = (job, in_job[-1]) if in_job else places[-1] if places else (job, None)
    return _shown(file, repo_root), line
