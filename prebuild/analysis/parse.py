"""Static analysis of a Dockerfile: what building one target reads besides the Dockerfile.

The content key hashes the context files, images and non-hermetic sources listed here. A file
the build reads but this module misses would let a stale image be served, so every construct is
interpreted the way BuildKit's dockerfile frontend does (convert.go, instructions/, shell/), and
anything that cannot be interpreted soundly lands in `whole_context_reasons` instead of being
guessed. Parsing is done by the `dockerfile` package (BuildKit's own Go parser).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dockerfile as _parser

from prebuild.analysis.stages import Interpreter, Stage, StageError
from prebuild.analysis.types import ContextSource, ExternalRef
from prebuild.errors import ConfigError

__all__ = ["DockerfileAnalysis", "MissingTarget", "analyse", "read_dockerfile"]

_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*")
_DEFAULT_FRONTEND = re.compile(
    r"(?:docker\.io/)?docker/dockerfile(?:-upstream)?(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?"
)
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")


class MissingTarget(ConfigError):
    """The config's `target` names no stage of the Dockerfile: the caller knows the config line."""


@dataclass(frozen=True)
class DockerfileAnalysis:
    target_stage: str  # name, or index of an unnamed stage
    stages_used: tuple[str, ...]  # stages the target depends on, in file order
    sources: tuple[ContextSource, ...]
    external_refs: tuple[ExternalRef, ...]
    whole_context_reasons: tuple[str, ...]  # non-empty: hash the whole context; "line N: why"
    notes: tuple[str, ...]  # facts for `prebuild explain`
    non_hermetic: tuple[str, ...] = ()  # "line N: ADD <url>": key these with a refresh age


def read_dockerfile(path: Path) -> str:
    """The Dockerfile's text; ConfigError if it is missing or unreadable."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("Dockerfile not found", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Dockerfile is not valid UTF-8 ({exc.reason})", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read Dockerfile: {exc.strerror}", file=str(path)) from None


def analyse(
    text: str, *, build_args: Mapping[str, str], target: str | None, file: str
) -> DockerfileAnalysis:
    """Analyse the build of `target` (default: the last stage) with these build args."""
    return _Analyser(text, dict(build_args), target, file).run()


class _Analyser:
    """Directives, stage graph and result; instructions are left to dockerstages.Interpreter."""

    def __init__(self, text: str, build_args: dict[str, str], target: str | None, file: str):
        self.text, self.build_args, self.target, self.file = text, build_args, target, file
        self.escape = "\\"
        self.reasons: list[str] = []
        self.stages: list[Stage] = []
        self.names: dict[str, int] = {}  # final name -> index map, as COPY --from resolves

    def error(self, message: str, line: int | None, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, line=line, hint=hint)

    def run(self) -> DockerfileAnalysis:
        custom = self._directives()
        try:
            commands = _parser.parse_string(self.text)
        except _parser.GoParseError as exc:
            if custom:
                return DockerfileAnalysis("", (), (), (), tuple(self.reasons), ())
            raise self.error(f"cannot parse Dockerfile: {exc}", _error_line(self.text)) from None
        first = next((i for i, c in enumerate(commands) if c.cmd.upper() == "FROM"), None)
        if first is None:
            raise self.error("Dockerfile contains no stages to build (no FROM)", None)
        for cmd in commands[:first]:
            if cmd.cmd.upper() != "ARG":
                raise self.error(f"{cmd.cmd.upper()} before the first FROM", cmd.start_line)
        groups: list[list[_parser.Command]] = []
        for cmd in commands[first:]:
            if cmd.cmd.upper() == "FROM":
                groups.append([])
            groups[-1].append(cmd)

        for index, group in enumerate(groups):
            self.stages.append(Stage(index, self._stage_name(group[0]), group[0].start_line))
        interp = Interpreter(
            file=self.file, build_args=self.build_args, escape=self.escape, stages=self.stages
        )
        self.names = interp.names
        genv = interp.global_env(commands[:first], self.target)
        seen: dict[str, int] = {}  # names FROM can use: only earlier stages
        for stage, group in zip(self.stages, groups, strict=True):
            interp.from_(stage, group[0], genv, seen)
            try:
                for cmd in group[1:]:
                    interp.dispatch(stage, cmd, genv)
            except StageError as exc:
                stage.error = exc.error
            if stage.name:
                seen[stage.name] = stage.index
        return self._result()

    def _directives(self) -> bool:
        """Parser directives; True when a custom frontend makes the analysis unsound."""
        found: dict[str, tuple[int, str]] = {}
        for number, line in enumerate(self.text.removeprefix("\ufeff").split("\n"), start=1):
            match = _DIRECTIVE.fullmatch(line.rstrip("\r").lstrip())
            name = match.group(1).lower() if match else ""
            if name not in ("syntax", "escape", "check"):
                break
            found.setdefault(name, (number, match.group(2)))  # type: ignore[union-attr]
        if "escape" in found:
            number, value = found["escape"]
            if value not in ("\\", "`"):
                raise self.error(f"invalid escape token {value!r} (must be \\ or `)", number)
            self.escape = value
        number, syntax = found.get("syntax", (1, ""))
        if "BUILDKIT_SYNTAX" in self.build_args:
            syntax = self.build_args["BUILDKIT_SYNTAX"]
        if syntax and not _DEFAULT_FRONTEND.fullmatch(syntax.strip()):
            self.reasons.append(
                f"line {number}: frontend {syntax!r} is not docker/dockerfile; its syntax "
                "cannot be analysed soundly"
            )
            return True
        return False

    def _stage_name(self, cmd: _parser.Command) -> str:
        args = cmd.value
        if len(args) == 3 and args[1].lower() == "as":
            name: str = args[2].lower()
            if not _STAGE_NAME.fullmatch(name):
                raise self.error(
                    f"invalid name for build stage: {args[2]!r}, name can't start with a number "
                    "or contain symbols",
                    cmd.start_line,
                )
            return name
        if len(args) != 1:
            raise self.error("FROM requires either one or three arguments", cmd.start_line)
        return ""

    def _result(self) -> DockerfileAnalysis:
        if self.target:
            index = self.names.get(self.target.lower())
            if index is None:
                names = ", ".join(self.names) or "none"
                raise MissingTarget(
                    f"target stage {self.target!r} could not be found",
                    file=self.file,
                    hint=f"stages: {names}",
                )
        else:
            index = len(self.stages) - 1
        used: set[int] = set()
        todo = [index]
        while todo:
            current = todo.pop()
            if current not in used:
                used.add(current)
                stage = self.stages[current]
                todo.extend(stage.deps | ({stage.base} if stage.base is not None else set()))
        chosen = [s for s in self.stages if s.index in used]
        for stage in chosen:
            if stage.error is not None:
                raise stage.error
        skipped = [s.label for s in self.stages if s.index not in used]
        notes = [n for s in chosen for n in s.notes]
        if skipped:
            notes.append(f"stages not built for this target: {', '.join(skipped)}")
        return DockerfileAnalysis(
            target_stage=self.stages[index].label,
            stages_used=tuple(s.label for s in chosen),
            sources=tuple(dict.fromkeys(src for s in chosen for src in s.sources)),
            external_refs=tuple(dict.fromkeys(r for s in chosen for r in s.refs)),
            whole_context_reasons=tuple(self.reasons + [r for s in chosen for r in s.reasons]),
            notes=tuple(notes),
            non_hermetic=tuple(n for s in chosen for n in s.non_hermetic),
        )


def _error_line(text: str) -> int:
    """The parser's errors carry no line: report the one after the longest prefix that parses
    (the error path only, so re-parsing prefixes is affordable)."""
    lines = text.split("\n")
    for count in range(len(lines) - 1, -1, -1):
        try:
            _parser.parse_string("\n".join(lines[:count]) + "\n")
        except _parser.GoParseError:
            continue
        return count + 1
    return 1
