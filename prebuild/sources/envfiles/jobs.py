"""One CI job's env, read and turned into the values its image needs.

A job is an image when its gate variable is non-empty. The values an image *needs* (the gate,
the name, the platform variable, each build-arg variable) must be known: an unknown one is a
located error naming the image, the variable and the file:line that made it unknown; it is
never replaced by a default. Every other variable may stay unknown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from prebuild.config.values import PLATFORM_SHAPE
from prebuild.errors import ConfigError
from prebuild.pathnames import relative_or_absolute
from prebuild.registry import refs
from prebuild.sources.envfiles.reader import EnvResult
from prebuild.sources.envfiles.values import Unknown

REPOSITORY = re.compile(refs.IMAGE_NAME)  # image names as the config accepts them
PLATFORM = re.compile(rf"linux|{PLATFORM_SHAPE}")
HINT_UNKNOWN = (
    "prebuild reads env files without running them: give the variable a value that does not "
    "depend on the CI machine, or pass it in the source's [source.env] table"
)


def join(base: Path, *parts: str) -> Path:
    """`base / parts` with `..` and `.` folded lexically (no symlink resolution)."""
    return Path(os.path.normpath(base.joinpath(*parts)))


def shown(path: Path, repo_root: Path) -> str:
    """Repo-relative POSIX path for messages and keys (absolute when outside the repo)."""
    return relative_or_absolute(path, repo_root)


@dataclass
class Job:
    """One env file and the env it yields."""

    path: Path
    env: EnvResult
    repo_root: Path
    job_var: str | None = None

    @property
    def shown(self) -> str:
        return shown(self.path, self.repo_root)

    def label(self, name_var: str) -> str:
        value = self.env.lookup(name_var)
        known = isinstance(value, str) and value
        return f"image {value!r} ({self.shown})" if known else f"the image of {self.shown}"

    def needed(self, var: str, why: str, name_var: str) -> str | None:
        """The variable's known value (None when unset); an unknown value is an error."""
        value = self.env.lookup(var)
        if isinstance(value, Unknown):
            cause = value.cause
            raise ConfigError(
                f"{self.label(name_var)}: {var} ({why}) is unknown: {cause.what}",
                file=cause.file,
                line=cause.line or None,
                hint=HINT_UNKNOWN,
            )
        return value

    def where(self, var: str) -> tuple[str, int | None]:
        """Where to blame `var`'s value: the job file's last assignment of it, else the last
        one anywhere (a shared file), else the job file without a line ([source.env])."""
        places = self.env.history.get(var, ())
        in_job = [line for path, line in places if path == self.path]
        file, line = (
            (self.path, in_job[-1]) if in_job else places[-1] if places else (self.path, None)
        )
        return shown(file, self.repo_root), line

    def origin_text(self, var: str) -> str:
        """file:line the value came from, for `explain` and `plan --json`."""
        if not self.env.history.get(var):
            return f"job_var (the path of {self.shown})" if var == self.job_var else "[source.env]"
        file, line = self.where(var)
        return f"{file}:{line}" if line else file

    def image_name(self, name_var: str, gate: str, prefix: str) -> tuple[str, int | None]:
        """The image name and the line of its assignment in the job (None if set elsewhere)."""
        value = self.needed(name_var, "the image name", name_var) or ""
        where, line = self.where(name_var)
        if not value:
            gate_where, gate_line = self.where(gate)
            raise ConfigError(
                f"sets {gate} (so it is an image) but not {name_var}, the image name",
                file=gate_where,
                line=gate_line,
            )
        name = prefix + value
        if not REPOSITORY.fullmatch(name) or len(name) > 255:
            raise ConfigError(
                f"image name {name!r} (from {name_var}) is not a valid docker repository name"
                + ("" if where == self.shown else f" (for {self.shown})"),
                file=where,
                line=line,
                hint="use lowercase path components [a-z0-9]+ joined by '.', '_' or '-', "
                "separated by '/'",
            )
        return name, line if where == self.shown else None

    def platform(self, var: str | None, default: str, name_var: str) -> tuple[str, str]:
        """(platform, where it came from)."""
        if var is None:
            return default, "platform_default"
        value = self.needed(var, "the platform", name_var)
        if not value:
            return default, "platform_default"
        if not PLATFORM.fullmatch(value):
            where, line = self.where(var)
            raise ConfigError(
                f"invalid platform {value!r} in {var}",
                file=where,
                line=line,
                hint="use 'linux' (the builder's native architecture) or OS/ARCH, e.g. linux/arm64",
            )
        return value, self.origin_text(var)
