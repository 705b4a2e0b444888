"""Read bash env files by sound partial evaluation, never by running bash.

Trust model: env files live in the repository, so in CI they may come from an untrusted pull
request. Sourcing them with bash on the prebuild host would let that pull request run code next
to registry and cache credentials. Nothing is executed here: the files are parsed and evaluated
in Python with bash's semantics, starting from an explicit environment (empty, plus what the
config passes in; never the host's). Every variable ends up either *known* (exactly the value
bash would give it) or *unknown*, with the file:line of the construct that made it so:
`$(...)`, a condition on such a value, a loop or function that may assign it, `read`, ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prebuild.errors import ConfigError
from prebuild.pathnames import relative_or_absolute
from prebuild.sources.envfiles.evaluator import Shell
from prebuild.sources.envfiles.state import Place, State
from prebuild.sources.envfiles.syntax import Seq
from prebuild.sources.envfiles.values import Cause, Unknown, Value


@dataclass(frozen=True)
class EnvResult:
    values: dict[str, str]  # variables known to be set, with their exact values
    unknown: dict[str, Cause]  # variables whose value (or whether they are set) is unknown
    exported: frozenset[str]
    history: dict[str, tuple[Place, ...]]  # every place each variable was assigned, in order
    everything: Cause | None = None  # when set, every variable is unknown because of it
    files: tuple[Path, ...] = field(default=())  # every file read, in first-read order
    export_unknown: frozenset[str] = frozenset()  # set variables that may or may not be exported

    @property
    def lines(self) -> dict[str, Place]:
        """Where each variable was last assigned."""
        return {name: places[-1] for name, places in self.history.items() if places}

    def lookup(self, name: str) -> Value | None:
        """The value (None: certainly unset), or an Unknown naming its cause."""
        if self.everything is not None:
            return Unknown(self.everything)
        if name in self.unknown:
            return Unknown(self.unknown[name])
        return self.values.get(name)


def read_env(
    files: Sequence[Path],
    *,
    initial: Mapping[str, str] | None = None,
    root: Path | None = None,
    cwd: Path | None = None,
    trees: dict[Path, Seq] | None = None,
) -> EnvResult:
    """Evaluate `files` as `source f1; source f2; ...` from an environment holding only
    `initial` (exported, as the CI passes it). `root` is the repository: only files inside
    it are followed by `source`, and messages show paths relative to it. Relative `source`
    paths are resolved against `cwd` (default: `root`). `trees` caches parsed files across
    calls (one config reads the shared file once per job)."""
    if not files:
        return EnvResult({}, {}, frozenset(), {})
    top = root or files[0].parent

    def shown_of(path: Path) -> str:
        return str(path) if root is None else relative_or_absolute(path, root)

    state = State(cwd=cwd or top)
    for name, value in (initial or {}).items():
        state.vars[name] = value
        state.exported[name] = True
    shell = Shell(state, top, shown_of, trees)
    for path in files:
        if not path.is_file():
            raise ConfigError("cannot read env file: not a file", file=shown_of(path))
        shell.run_file(path)
        if shell.state.stopped == "exit":
            break
    return _result(shell.state)


def _result(state: State) -> EnvResult:
    values = {n: v for n, v in state.vars.items() if isinstance(v, str)}
    unknown = {n: v.cause for n, v in state.vars.items() if isinstance(v, Unknown)}
    exported = frozenset(n for n, e in state.exported.items() if e is True and n in state.vars)
    history = {n: tuple(p) for n, p in state.history.items()}
    if state.poison is not None:
        unknown = {n: state.poison for n in state.vars}
        values = {}
    export_unknown = frozenset(n for n, e in state.exported.items() if isinstance(e, Unknown))
    return EnvResult(
        values, unknown, exported, history, state.poison, tuple(state.files_read), export_unknown
    )
