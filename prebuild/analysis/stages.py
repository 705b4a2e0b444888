"""How each instruction of one Dockerfile stage reads the world outside the Dockerfile.

The per-instruction half of prebuild.analysis.parse, interpreted as BuildKit's dockerfile frontend
does (dockerfile2llb/convert.go, instructions/parse.go). Errors BuildKit raises while parsing
are raised at once; errors it raises while building a stage are kept on the stage and raised
only if the target needs that stage.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prebuild.analysis.types import PLATFORM_ARGS, ContextSource, ExternalRef, RefKind
from prebuild.analysis.words import Env, Expansion, ShellSyntaxError, describe_unknown, expand
from prebuild.context.patterns import go_clean
from prebuild.errors import ConfigError

if TYPE_CHECKING:
    from dockerfile import Command  # the PyPI parser's instruction tuple

Flags = dict[str, list[str]]  # an instruction's --flags, every value given

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HEREDOC = re.compile(r"\d*<<-?[^<\s]+")  # parser.MustParseHeredoc: one non-empty word
_NO_INPUTS = frozenset(
    ["CMD", "ENTRYPOINT", "EXPOSE", "HEALTHCHECK", "LABEL", "MAINTAINER", "SHELL"]
    + ["STOPSIGNAL", "USER", "VOLUME", "WORKDIR"]
)
# flag name -> kind, per instruction (BuildKit's BFlags: "str", "bool" or repeatable "multi")
_FLAGS: dict[str, dict[str, str]] = {
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool",
             "exclude": "multi"},
    "ADD": {"chown": "str", "chmod": "str", "link": "bool", "keep-git-dir": "bool",
            "checksum": "str", "unpack": "bool", "exclude": "multi"},
    "RUN": {"mount": "multi", "network": "str", "security": "str", "device": "multi"},
    "FROM": {"platform": "str"},
}  # fmt: skip


class StageError(Exception):
    """A failure BuildKit reports only if the stage is built."""

    def __init__(self, error: ConfigError) -> None:
        self.error = error


@dataclass
class Stage:
    index: int
    name: str
    line: int
    env: Env = field(default_factory=Env)
    base: int | None = None
    deps: set[int] = field(default_factory=set)
    sources: list[ContextSource] = field(default_factory=list)
    refs: list[ExternalRef] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    non_hermetic: list[str] = field(default_factory=list)
    error: ConfigError | None = None

    @property
    def label(self) -> str:
        return self.name or str(self.index)


class Interpreter:
    """Shared state of one analysis: build args, escape token, all stages and their names."""

    def __init__(
        self, *, file: str, build_args: dict[str, str], escape: str, stages: list[Stage]
    ) -> None:
        self.file, self.build_args, self.escape, self.stages = file, build_args, escape, stages
        self.names = {s.name: s.index for s in stages if s.name}  # last one wins, as in BuildKit

    def error(self, message: str, line: int | None, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, line=line, hint=hint)

    def global_env(self, meta: list[Command], target: str | None) -> Env:
        """ARGs before the first FROM, over BuildKit's automatic platform args; visible only in
        FROM lines and to stage ARGs that redeclare them."""
        env = Env()
        for name in PLATFORM_ARGS:
            env.set(
                name,
                self.build_args.get(name),
                f"set automatically from the build/target platform; pass {name} in build_args",
            )
        last = self.stages[-1].name
        env.set("TARGETSTAGE", self.build_args.get("TARGETSTAGE", target or last))
        for cmd in meta:
            for key, eq, default in self._arg_tokens(cmd):
                if key in self.build_args:
                    env.set(key, self.build_args[key])
                elif eq:
                    got = self.expand(default, env, cmd.start_line, stage=False)
                    why = describe_unknown(got.unknown, env)
                    env.set(key, got.value if got.known else None, why)
        return env

    def from_(self, stage: Stage, cmd: Command, genv: Env, seen: dict[str, int]) -> None:
        line = cmd.start_line
        flags = self._flags(stage, cmd, "FROM")
        if "platform" in flags:
            platform = self.expand(flags["platform"][-1], genv, line, stage=False)
            if platform.known and not platform.value:
                raise self.error(f"empty platform value from expression {flags['platform']}", line)
        base = self.expand(cmd.value[0], genv, line, stage=False)
        if not base.known:
            why = describe_unknown(base.unknown, genv)
            stage.reasons.append(f"line {line}: FROM {cmd.value[0]!r} depends on {why}")
            stage.deps.update(range(stage.index))  # it might name any earlier stage
            stage.env = Env(opaque=True)
        elif not base.value:
            raise self.error(f"base name ({cmd.value[0]}) should not be blank", line)
        elif base.value == "scratch":
            stage.env = Env({"PATH": DEFAULT_PATH})
        elif base.value in seen:
            stage.base = seen[base.value]
            stage.env = self.stages[stage.base].env.copy()
        else:
            stage.refs.append(ExternalRef(base.value, line, "from"))
            stage.env = Env(opaque=True)  # the image's ENV is not visible here

    def dispatch(self, stage: Stage, cmd: Command, genv: Env) -> None:
        name, line = cmd.cmd.upper(), cmd.start_line
        if name == "ARG":
            self._arg(stage, cmd, genv)
        elif name == "ENV":
            self._env(stage, cmd)
        elif name in ("COPY", "ADD"):
            self._copy(stage, cmd, name)
        elif name == "RUN":
            for spec in self._flags(stage, cmd, "RUN").get("mount", []):
                self._mount(stage, spec, line)
        elif name == "ONBUILD":
            stage.reasons.append(
                f"line {line}: ONBUILD {cmd.sub_cmd or ''} runs in builds based on this stage "
                "and may read the build context"
            )
        elif name not in _NO_INPUTS:
            stage.reasons.append(f"line {line}: unknown instruction {cmd.cmd!r}")

    def _arg_tokens(self, cmd: Command) -> Iterator[tuple[str, str, str]]:
        """(name, "=" or "", default) per `name[=default]` of an ARG, refused as BuildKit does.
        Lazy: the caller applies each token before the next one is checked."""
        if not cmd.value:
            raise self.error("ARG requires at least one argument", cmd.start_line)
        for token in cmd.value:
            key, eq, default = token.partition("=")
            if eq and not key:
                raise self.error("ARG names can not be blank", cmd.start_line)
            yield key, eq, default

    def _arg(self, stage: Stage, cmd: Command, genv: Env) -> None:
        for key, eq, default in self._arg_tokens(cmd):
            if key in self.build_args:
                stage.env.set(key, self.build_args[key])
            elif eq:
                got = self.expand(default, stage.env, cmd.start_line)
                why = describe_unknown(got.unknown, stage.env)
                stage.env.set(key, got.value if got.known else None, why)
            elif (inherited := genv.get(key)) is None:
                stage.env.set(key, None, genv.why(key))
            elif inherited[1]:
                stage.env.set(key, inherited[0])

    def _env(self, stage: Stage, cmd: Command) -> None:
        values, line = cmd.value, cmd.start_line
        if not values or len(values) % 2:
            raise self.error("ENV requires at least one key=value argument", line)
        before = stage.env.copy()  # every pair of one ENV sees the env as it was before it
        for key_raw, value_raw in zip(values[::2], values[1::2], strict=True):
            if not key_raw:
                raise self.error("ENV names can not be blank", line)
            key = self.expand(key_raw, before, line)
            value = self.expand(value_raw, before, line)
            if not key.known:
                stage.env.poison(f"ENV on line {line} sets a variable whose name is unknown")
            else:
                why = describe_unknown(value.unknown, before)
                stage.env.set(key.value, value.value if value.known else None, why)

    def _copy(self, stage: Stage, cmd: Command, name: str) -> None:
        line = cmd.start_line
        flags = self._flags(stage, cmd, name)
        if len(cmd.value) < 2:
            raise self.error(f"{name} requires at least two arguments", line)
        if HEREDOC.fullmatch(cmd.value[-1]):
            raise self.error(f"{name} cannot use a heredoc as the destination", line)
        if "from" in flags:
            self._stage_ref(stage, flags["from"][-1], line, "copy-from", numeric=True)
            return
        excludes: list[str] = []
        for raw in flags.get("exclude", []):
            got = self.expand(raw, stage.env, line)
            if not got.known:  # excluding less is safe; excluding a guess is not
                stage.notes.append(f"line {line}: --exclude={raw} not applied (value unknown)")
                excludes = []
                break
            excludes.append(got.value)
        parents = flags.get("parents", ["false"])[-1] == "true"
        for raw in cmd.value[:-1]:
            if HEREDOC.fullmatch(raw):
                continue  # inline content, no context input
            got = self.expand(raw, stage.env, line)
            remote = _remote_kind(got.value if got.known else raw)
            if name == "ADD" and remote:
                self._remote(stage, raw, got, remote, flags, line)
            elif not got.known:
                stage.reasons.append(
                    f"line {line}: {name} source {raw!r} depends on "
                    f"{describe_unknown(got.unknown, stage.env)}"
                )
                if name == "ADD":  # the unknown value may be a URL: the context can't cover it
                    stage.non_hermetic.append(f"line {line}: ADD {raw} (may be a URL)")
            else:
                stage.sources.append(context_source(got.value, line, tuple(excludes), parents))

    def _remote(
        self,
        stage: Stage,
        raw: str,
        got: Expansion,
        kind: str,
        flags: dict[str, list[str]],
        line: int,
    ) -> None:
        src = got.value if got.known else raw
        pinned = "checksum" in flags or (
            kind == "git repository" and re.search(r"#[0-9a-f]{40}(?::|$)", src) is not None
        )
        if pinned:
            stage.notes.append(f"line {line}: ADD {src} is pinned to a checksum or commit")
        else:
            stage.non_hermetic.append(f"line {line}: ADD {src}")
            stage.notes.append(f"line {line}: ADD of a {kind} is not hermetic; use refresh")

    def _mount(self, stage: Stage, spec: str, line: int) -> None:
        try:
            fields = next(csv.reader([spec]), [])
        except csv.Error as exc:
            raise self.error(f"failed to parse csv mounts: {exc}", line) from None
        options: dict[str, Expansion] = {}
        for item in fields:
            key, eq, value = item.partition("=")
            if not eq:
                continue
            key = {"src": "source"}.get(key.lower(), key.lower())
            if key == "from" and re.search(r"\$.", value):
                raise self.error("'from' doesn't support variable expansion", line)
            options[key] = self.expand(value, stage.env, line)
        kind = options.get("type", Expansion("bind"))
        if not kind.known:
            stage.reasons.append(f"line {line}: RUN --mount type depends on unknown values")
            return
        mount_type = kind.value.lower()
        if mount_type not in ("bind", "cache", "tmpfs", "secret", "ssh"):
            raise StageError(self.error(f"unsupported mount type {kind.value!r}", line))
        source = options.get("source", Expansion(""))
        if mount_type in ("bind", "cache") and "from" in options:
            self._stage_ref(stage, options["from"].value, line, "mount-from", numeric=False)
        elif mount_type == "bind" and not source.known:
            why = describe_unknown(source.unknown, stage.env)
            stage.reasons.append(f"line {line}: RUN --mount source depends on {why}")
        elif mount_type == "bind":
            stage.sources.append(context_source(source.value, line, (), False))
        elif mount_type == "secret":
            secret = (options.get("id") or source or options.get("target") or Expansion("")).value
            stage.notes.append(f"line {line}: secret {secret!r} is not part of the key")

    def _stage_ref(
        self, stage: Stage, ref: str, line: int, kind: RefKind, *, numeric: bool
    ) -> None:
        """COPY --from / RUN --mount from=: an earlier stage (by name or index) or an image."""
        if numeric and self.expand(ref, Env(), line, stage=False).value != ref:
            raise self.error(
                "variable expansion is not supported for --from; define a stage with FROM "
                "using a global ARG instead",
                line,
            )
        if numeric and re.fullmatch(r"[+-]?\d+", ref):
            target = int(ref)
            if not 0 <= target < len(self.stages):
                raise self.error(f"invalid stage index {target}", line)
        elif (target := self.names.get(ref.lower())) is None:  # type: ignore[assignment]
            if ref != "scratch":
                stage.refs.append(ExternalRef(ref, line, kind))
            return
        if target >= stage.index:
            raise StageError(
                self.error(
                    f"cannot copy from stage {ref!r}, it needs to be defined before "
                    f"current stage {stage.label!r}",
                    line,
                )
            )
        stage.deps.add(target)
        label = self.stages[target].label
        stage.notes.append(f"line {line}: reads stage {label!r}, not the build context")

    def _flags(self, stage: Stage, cmd: Command, name: str) -> dict[str, list[str]]:
        """BuildKit's BFlags; an unknown flag is a reason (a newer frontend may read more)."""
        spec = _FLAGS.get(name, {})
        out: dict[str, list[str]] = {}
        for raw in cmd.flags:
            flag, eq, value = raw[2:].partition("=")
            kind = spec.get(flag)
            if kind is None:
                stage.reasons.append(f"line {cmd.start_line}: unknown flag --{flag} on {name}")
            elif kind == "bool":
                if eq and value.lower() not in ("true", "false"):
                    raise self.error(f"expecting boolean value for flag {flag}", cmd.start_line)
                out.setdefault(flag, []).append(value.lower() if eq else "true")
            elif not eq:
                raise self.error(f"missing a value on flag: --{flag}", cmd.start_line)
            else:
                out.setdefault(flag, []).append(value)
        return out

    def expand(self, word: str, env: Env, line: int, *, stage: bool = True) -> Expansion:
        try:
            return expand(word, env, escape=self.escape)
        except ShellSyntaxError as exc:
            error = self.error(f"failed to process {word!r}: {exc}", line)
            raise (StageError(error) if stage else error) from None


def context_source(
    value: str, line: int, excludes: tuple[str, ...], parents: bool
) -> ContextSource:
    """BuildKit's NormalizePath("/", src): relative to the context root, `..` clamped."""
    pivot = ""
    if parents:
        before, found, after = value.partition("/./")
        if found:
            pivot, value = _normalize(before), f"{before}/{after}"
    return ContextSource(_normalize(value), line, excludes, parents, pivot)


def _normalize(path: str) -> str:
    return go_clean("/" + path).lstrip("/")


def _remote_kind(src: str) -> str | None:
    """What BuildKit's ADD fetches instead of reading the context, if anything."""
    if src.startswith(("git://", "ssh://")) or re.match(r"git@[^:/]+:", src):
        return "git repository"
    if src.startswith(("http://", "https://")):
        return "git repository" if re.search(r"\.git(?:#|$)", src) else "URL"
    return None
