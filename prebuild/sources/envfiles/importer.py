"""Import an existing CI's image matrix from bash env files (Bitcoin Core's `ci/test` style).

Each env file matched by `glob` is one CI job. It is read by partial evaluation (see `reader`),
never executed, together with the `shared` file(s). With `job_var` (Bitcoin Core: FILE_ENV) only
the shared files are read, with that variable holding the job's path, so a shared file that does
`source "${FILE_ENV}"` reads the job exactly where bash would; without it the files are read in
`order`. A job is an image only when its `gate` variable ends up non-empty (host-only jobs leave
it unset); the image is named by the `name` variable, and every image shares one Dockerfile that
receives the job's values as build args. The evaluation starts from an empty environment plus
the `env` table (`[source.env]`), never the host's, so keys are the same on every machine.

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
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from prebuild.durations import parse_duration
from prebuild.errors import ConfigError
from prebuild.model import ImageSpec, Origin
from prebuild.sources.envfiles.jobs import PLATFORM as _PLATFORM
from prebuild.sources.envfiles.jobs import Job, join, shown
from prebuild.sources.envfiles.reader import read_env

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    job_var: str | None = None  # the shared files `source "${job_var}"` (./path of the job)
    workdir: str = "."  # the directory the CI sources from (relative `source` paths)
    env: dict[str, str] = Field(default={}, validation_alias=AliasChoices("env", "initial_env"))
    inputs: list[str] = []
    depends_on: list[str] = []
    refresh: str | None = None
    _failures: list[ConfigError] = PrivateAttr(default_factory=list)
    _trees: dict[Path, Any] = PrivateAttr(default_factory=dict)  # parsed files, per images()

    @property
    def failures(self) -> list[ConfigError]:
        """Jobs of the last `images` call that could not be imported (located errors)."""
        return self._failures

    @field_validator("gate", "name", "platform_var", "job_var")
    @classmethod
    def _names(cls, name: str | None) -> str | None:
        return None if name is None else _check_shell_name(name)

    @field_validator("env")
    @classmethod
    def _initial_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            _check_shell_name(name)
        return env

    @field_validator("glob", "shared", "dockerfile", "context", "inputs", "workdir")
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

    @model_validator(mode="after")
    def _job_var_needs_shared(self) -> EnvFilesSource:
        if self.job_var is not None and not self.shared:
            raise ValueError("job_var needs the shared file(s) that source the job")
        return self

    @field_validator("refresh")
    @classmethod
    def _refresh(cls, refresh: str | None) -> str | None:
        if refresh is not None:
            parse_duration(refresh)
        return refresh

    def images(self, *, repo_root: Path, config_file: Path, defaults: ImageSpec) -> list[ImageSpec]:
        """One ImageSpec per gated env file, in sorted file order. Jobs whose needed values
        are unknown are collected in `failures` (located errors); the others still import."""
        base = config_file.parent  # paths stay as given (symlinks kept), like repo_root
        config_shown = shown(config_file, repo_root)
        context, dockerfile = join(base, self.context), join(base, self.dockerfile)
        for path, what in ((context, "context"), (dockerfile, "dockerfile")):
            exists = path.is_dir() if what == "context" else path.is_file()
            if not exists:
                raise ConfigError(f"{what} {shown(path, repo_root)} not found", file=config_shown)
        shared = [join(base, s) for s in self.shared]
        jobs = sorted(
            (join(p) for p in base.glob(self.glob) if p.is_file() and join(p) not in shared),
            key=lambda p: shown(p, repo_root),
        )
        if not jobs:
            raise ConfigError(
                f'[[source]] kind = "envfiles": glob {self.glob!r} matched no env files '
                f"(relative to {shown(base, repo_root)})",
                file=config_shown,
            )
        extra_inputs = tuple(shown(join(base, pattern), repo_root) for pattern in self.inputs)
        refresh = defaults.refresh_seconds if self.refresh is None else parse_duration(self.refresh)
        specs: list[ImageSpec] = []
        seen: dict[str, str] = {}  # image name -> file[:line] that produced it
        self._failures = failures = []
        self._trees = {}
        for path in jobs:
            try:
                job = self._read(path, base, repo_root)
                spec = self._spec(job, context, dockerfile, defaults, seen)
            except ConfigError as error:
                failures.append(error)
                continue
            if spec is not None:
                specs.append(
                    replace(
                        spec,
                        extra_inputs=extra_inputs or defaults.extra_inputs,
                        depends_on=tuple(self.depends_on),
                        refresh_seconds=refresh,
                    )
                )
        return specs

    def _read(self, path: Path, base: Path, repo_root: Path) -> Job:
        workdir = join(base, self.workdir)
        initial = dict(self.env)
        if self.job_var is not None:
            initial[self.job_var] = "./" + Path(os.path.relpath(path, workdir)).as_posix()
            files = [join(base, s) for s in self.shared]
        else:
            shared = [join(base, s) for s in self.shared]
            files = [path, *shared] if self.order == "job-first" else [*shared, path]
        env = read_env(files, initial=initial, root=repo_root, cwd=workdir, trees=self._trees)
        if self.job_var is not None and path not in env.files and env.everything is None:
            raise ConfigError(
                f"the shared files never source the job file (with {self.job_var}="
                f"{initial[self.job_var]})",
                file=shown(files[0], repo_root),
                hint=f'the shared file should `source "${{{self.job_var}}}"`',
            )
        return Job(path, env, repo_root, self.job_var)

    def _spec(
        self, job: Job, context: Path, dockerfile: Path, defaults: ImageSpec, seen: dict[str, str]
    ) -> ImageSpec | None:
        if not job.needed(self.gate, "the gate: is this job an image?", self.name):
            return None  # host-only job: not an image
        name, line = job.image_name(self.name, self.gate, self.name_prefix)
        if name in seen:
            raise ConfigError(
                f"image name {name!r} is produced by both {seen[name]} and {job.shown}",
                file=job.shown,
                line=line,
                hint=f"give each env file its own {self.name}",
            )
        seen[name] = ":".join([job.shown, *([str(line)] if line else [])])
        build_args = {**defaults.build_args}
        provenance: list[tuple[str, str]] = []
        for arg, source in self.build_args.items():
            build_args[arg], origin = self._build_arg(arg, source, job, context)
            provenance.append((f"build-arg {arg}", origin))
        platform, platform_origin = job.platform(
            self.platform_var, self.platform_default, self.name
        )
        provenance.append(("platform", platform_origin))
        return replace(
            defaults,
            name=name,
            repo_root=job.repo_root,
            context=context,
            dockerfile=dockerfile,
            build_args=build_args,
            platforms=(platform,),
            origin=Origin(file=job.shown, line=line),
            provenance=tuple(provenance),
        )

    def _build_arg(
        self, arg: str, source: BuildArgFrom, job: Job, context: Path
    ) -> tuple[str, str]:
        if source.value is not None:
            return source.value, "config (value)"
        if source.var is not None:
            value = job.needed(source.var, f"build arg {arg}", self.name)
            if value is None:
                raise ConfigError(
                    f"build arg {arg}: variable {source.var} is not set",
                    file=job.shown,
                    hint="set it in the env file, a shared file, or the source's [source.env]",
                )
            return value, job.origin_text(source.var)
        try:
            relative = job.path.relative_to(context).as_posix()
        except ValueError:
            raise ConfigError(
                f"build arg {arg}: env file is outside the build context "
                f"{shown(context, job.repo_root)}",
                file=job.shown,
            ) from None
        value = f"./{relative}" if source.file_path == "dot-relative" else relative
        return value, f"{job.shown} (its own path)"
