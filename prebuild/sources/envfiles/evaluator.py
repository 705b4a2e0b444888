"""The partial evaluator: runs the syntax tree against a `State`, never executing anything.

Statuses are ints when known, or a Cause when the CI machine decides (external commands).
A known condition takes its branch; an unknown one evaluates every branch on a copy of the
state and merges them. External commands are assumed to succeed (a run where one fails under
errexit stops and builds nothing); they cannot change the shell's variables.
"""

from __future__ import annotations

from pathlib import Path

from prebuild.errors import ConfigError
from prebuild.sources.envfiles import conditions, effects
from prebuild.sources.envfiles.builtins import Builtins
from prebuild.sources.envfiles.parser import parse
from prebuild.sources.envfiles.state import POISONING, State, merge
from prebuild.sources.envfiles.syntax import (
    AndOr,
    ArithCmd,
    Case,
    DBracket,
    FuncDef,
    Group,
    If,
    Loop,
    Node,
    Pipeline,
    Redirected,
    Seq,
    Simple,
)
from prebuild.sources.envfiles.tokens import CmdSub, Lit, Word
from prebuild.sources.envfiles.values import MAX_NESTING, Cause, Unknown, Value, word_list

Status = int | Cause
MAX_SOURCE_DEPTH = 16


class Shell(Builtins):
    def __init__(self, state: State, root: Path, shown_of, trees: dict[Path, Seq] | None) -> None:
        self.state, self.root = state, root
        self._shown_of = shown_of
        self.path, self.shown, self.certain = root, "", True
        self.in_condition = 0
        self.last_ran = True  # whether the last pipeline of the latest and-or list ran
        self.sources: list[Path] = []
        self.eval_depth = 0
        self.scanning: set[str] = set()  # functions whose bodies are being scanned
        self._trees: dict[Path, Seq] = {} if trees is None else trees

    # -- files ------------------------------------------------------------------------------
    def run_file(self, path: Path, line: int = 0) -> Status:
        """`source PATH` of a resolved, readable path inside the repository."""
        if len(self.sources) >= MAX_SOURCE_DEPTH:
            stack = [*self.sources, path]
            start = stack.index(path)  # the first time the repeated file was entered
            loop = stack[start : stack.index(path, start + 1) + 1] if stack.count(path) > 1 else []
            shown = [self._shown_of(p) for p in (loop or [*stack[:3], stack[-1]])]
            chain = " -> ".join(shown) if loop else " -> ".join([*shown[:3], "...", shown[-1]])
            raise ConfigError(
                f"sourced files nested more than {MAX_SOURCE_DEPTH} deep (a cycle?): {chain}",
                file=self.shown or self._shown_of(path),
                line=line or None,
            )
        tree = self._trees.get(path)
        if tree is None:
            try:
                text = path.read_bytes().decode("utf-8", "surrogateescape")
            except OSError as error:
                raise ConfigError(
                    f"cannot read env file: {error.strerror}", file=self._shown_of(path)
                ) from None
            tree = self._trees[path] = parse(text, self._shown_of(path))
        saved = self.path, self.shown
        self.path, self.shown = path, self._shown_of(path)
        self.sources.append(path)
        if path not in self.state.files_read:
            self.state.files_read.append(path)
        try:
            status = self.seq(tree)
        finally:
            self.sources.pop()
            self.path, self.shown = saved
        if self.state.stopped == "return":
            self.state.stopped = None
        return status

    # -- lists ------------------------------------------------------------------------------
    def seq(self, seq: Seq) -> Status:
        status: Status = 0
        for andor, background in seq.items:
            if self.state.stopped:
                break
            if background:
                self.subshell(andor)
                status = 0
                continue
            status = self.andor(andor)
            if (
                self.state.errexit
                and self.in_condition == 0
                and isinstance(status, int)
                and status != 0
                and self.last_ran  # `false && x`: a failure before the last is no exit
                and not _exempt(andor)
            ):
                if self.certain:
                    self.state.stopped = "exit"
                else:
                    self.state.poisoned(self.cause(_line(andor), "errexit may stop the file"))
        return status

    def andor(self, andor: AndOr) -> Status:
        items = [("", andor.first), *andor.rest]
        status: Status = 0
        ran_last = False
        for index, (op, pipeline) in enumerate(items):
            last = index == len(items) - 1
            ran_last = last
            if op and isinstance(status, int) and ((op == "&&") != (status == 0)):
                ran_last = False
                continue
            self.in_condition += 0 if last else 1
            try:
                if op and isinstance(status, Cause):
                    status = self.maybe(lambda p=pipeline: self.pipeline(p), status)
                else:
                    status = self.pipeline(pipeline)
            finally:
                self.in_condition -= 0 if last else 1
        self.last_ran = ran_last  # set after the pipelines: a sourced file's lists ran inside
        return status

    def maybe(self, run, cause: Cause) -> Status:
        """Run `run` on a copy of the state that may or may not happen, then merge."""
        before, saved_certain = self.state, self.certain
        self.state, self.certain = before.copy(), False
        try:
            run()
        finally:
            ran, self.state, self.certain = self.state, before, saved_certain
        self.state = merge([before, ran], self._condition_cause(cause))
        return cause

    def _condition_cause(self, cause: Cause) -> Cause:
        return Cause(cause.file, cause.line, f"condition is unknown: {cause.what}")

    def pipeline(self, pipeline: Pipeline) -> Status:
        if len(pipeline.commands) > 1:
            for command in pipeline.commands:
                self.subshell(command)
            status: Status = self.cause(pipeline.line, "pipeline")
        else:
            if pipeline.negated:
                self.in_condition += 1
            try:
                status = self.node(pipeline.commands[0])
            finally:
                if pipeline.negated:
                    self.in_condition -= 1
        if pipeline.negated and isinstance(status, int):
            return 1 if status == 0 else 0
        return status

    def subshell(self, node: Node) -> None:
        """Runs in a child process: only its effect on files matters."""
        saved, saved_certain = self.state, self.certain
        self.state, self.certain = saved.copy(), False
        try:
            self.node(node) if not isinstance(node, AndOr) else self.andor(node)
        finally:
            dirty, self.state, self.certain = self.state.fs_dirty, saved, saved_certain
        self.state.fs_dirty = self.state.fs_dirty or dirty

    # -- commands ---------------------------------------------------------------------------
    def node(self, node: Node) -> Status:
        if isinstance(node, Simple):
            return self.simple(node)
        if isinstance(node, Redirected):
            self.redirections(node.redirs)
            return self.node(node.node)
        if isinstance(node, If):
            return self.if_(node)
        if isinstance(node, Group):
            if node.subshell:
                self.subshell(node.body)
                return self.cause(node.line, "subshell")
            return self.seq(node.body)
        if isinstance(node, FuncDef):
            if self.certain:
                self.state.functions[node.name] = [node.body]
            else:
                self.state.functions.setdefault(node.name, []).append(node.body)
            return 0
        if isinstance(node, DBracket):
            return _status(conditions.dbracket(self, node.expr), self.cause(node.line, "'[[ ]]'"))
        if isinstance(node, ArithCmd):
            value = self.arithmetic_command(node)
            return (
                self.cause(node.line, "((...))")
                if isinstance(value, Unknown)
                else int(value == "0")
            )
        if isinstance(node, Loop | Case):
            return self.unknown_effects(
                node, node.line, "loop" if isinstance(node, Loop) else "case"
            )
        if isinstance(node, Seq):
            return self.seq(node)
        if isinstance(node, AndOr):
            return self.andor(node)
        return self.pipeline(node)

    def arithmetic_command(self, node: ArithCmd) -> Value:
        from prebuild.sources.envfiles.tokens import Arith

        return self.arithmetic(Arith(tuple(node.parts), node.line, True))

    def unknown_effects(
        self, node: Node, line: int, what: str, cause: Cause | None = None
    ) -> Status:
        """Code the reader does not evaluate (loops, case, function calls): every variable it
        can assign becomes unknown; if that cannot be bounded, everything does."""
        cause = cause or self.cause(line, what)
        if self.state.errexit and self.in_condition == 0:  # a failure inside would end the shell
            self.state.poisoned(self.cause(line, f"{what} under errexit may stop the file"))
            return cause
        try:
            names = effects.collect(node, self.state.functions)
        except effects.Untraceable as error:
            self.state.poisoned(self.cause(line, f"{what} containing {error.args[0]}"))
            return cause
        for name in sorted(names):
            if name in POISONING or name == "IFS":
                self.state.poisoned(self.cause(line, f"{what} assigning {name}"))
            self.state.unknown(name, cause, (self.path, line))
            self.state.exported[name] = Unknown(cause)
        self._scan_for_writes(node)
        return cause

    def if_(self, node: If) -> Status:
        saved_certain = self.certain
        pending: list[State] = []
        causes: list[Cause] = []
        status: Status = 0
        done = False
        for cond, body in node.clauses:
            self.in_condition += 1
            try:
                result = self.seq(cond)
            finally:
                self.in_condition -= 1
            if isinstance(result, int) and result == 0:
                status = self.seq(body)
                done = True
                break
            if isinstance(result, Cause):
                causes.append(result)
                branch = self.state
                self.state, self.certain = branch.copy(), False
                self.seq(body)
                pending.append(self.state)
                self.state = branch
        if not done and node.orelse is not None:
            status = self.seq(node.orelse)
        self.certain = saved_certain
        if pending:
            cause = Cause(causes[0].file, node.line, f"'if' condition is unknown: {causes[0]}")
            self.state = merge([self.state, *pending], cause)
            return cause
        return status

    def simple(self, node: Simple) -> Status:
        self.redirections(node.redirs)
        if not node.words:
            status: Status = 0
            for assign in node.assigns:
                if assign.array:
                    self.state.special.add(assign.name)
                    self.state.unknown(
                        assign.name, self.cause(assign.line, "array"), (self.path, assign.line)
                    )
                    continue
                value = self.value(assign.value, assignment=True, line=assign.line)
                if assign.append:
                    old = self.state.get(assign.name, self.cause(assign.line, "+="))
                    value = (
                        old + value
                        if isinstance(old, str) and isinstance(value, str)
                        else (
                            old
                            if isinstance(old, Unknown)
                            else value
                            if old is None or isinstance(value, Unknown)
                            else value
                        )
                    )
                self.assign(assign.name, value, assign.line)
                if any(isinstance(p, CmdSub) for p in assign.value):
                    status = self.cause(assign.line, "command substitution status")
            return status
        first = self.word_fields(node.words[0])
        if isinstance(first, Unknown) or not first:
            if isinstance(first, list) and not first and len(node.words) == 1:
                return 0
            self.state.poisoned(self.cause(node.line, "a command name computed at run time"))
            return self.cause(node.line, "unknown command")
        name = first[0]
        return self.command(name, node, first[1:])

    def command(self, name: str, node: Simple, extra: list[str]) -> Status:
        line = node.line
        if name in self.state.functions:
            return self.call_function(name, node)
        for assign in node.assigns:  # NAME=value cmd: only the command's environment ...
            self.value(assign.value, assignment=True, line=assign.line)
            if name in _SPECIAL_BUILTINS:  # ... except where bash may keep it
                self.state.unknown(
                    assign.name, self.cause(line, f"assignment before '{name}'"), (self.path, line)
                )
        handler = self.builtin(name)
        if handler is not None:
            return handler([Word([Lit(t, True)], line) for t in extra] + node.words[1:], line)
        self.external(name, line)
        return self.cause(line, f"command '{name}' runs on the CI machine")

    def call_function(self, name: str, node: Simple) -> Status:
        cause = self.cause(node.line, f"call of function {name}")
        if self.builtin(name) is not None:
            self.state.poisoned(self.cause(node.line, f"function {name} shadows a builtin"))
            return cause
        for assign in node.assigns:
            self.state.unknown(assign.name, cause, (self.path, node.line))
        if name in self.scanning:
            return cause
        bodies = self.state.functions[name]
        body = Seq([(AndOr(Pipeline([b], False, node.line), []), False) for b in bodies])
        self.scanning.add(name)
        try:
            return self.unknown_effects(body, node.line, f"call of function {name}", cause)
        finally:
            self.scanning.discard(name)

    def assign(self, name: str, value: Value, line: int) -> None:
        if name in POISONING:
            self.state.poisoned(self.cause(line, f"assignment to {name}"))
        if name in self.state.readonly:
            cause = self.cause(line, f"assignment to readonly {name}")
            self.state.unknown(name, cause, (self.path, line))
            return
        self.state.set(name, value, (self.path, line), self.shown)

    def eval_text(self, text: str, line: int) -> Status:
        if self.eval_depth >= MAX_NESTING:
            raise ConfigError(
                f"eval nested more than {MAX_NESTING} deep", file=self.shown, line=line
            )
        tree = parse("\n" * (line - 1) + text, self.shown)
        self.eval_depth += 1
        try:
            return self.seq(tree)
        finally:
            self.eval_depth -= 1


_SPECIAL_BUILTINS = frozenset(
    word_list(
        """
        : . source eval exec exit export readonly return set shift trap unset break continue
        times declare typeset local
        """
    )
)


def _status(result: bool | None, cause: Cause) -> Status:
    return cause if result is None else (0 if result else 1)


def _exempt(andor: AndOr) -> bool:
    """errexit ignores a negated last pipeline, and a compound command's status (bash checks
    the commands inside it instead)."""
    last = andor.rest[-1][1] if andor.rest else andor.first
    return last.negated or len(last.commands) != 1 or not isinstance(last.commands[0], Simple)


def _line(andor: AndOr) -> int:
    return andor.first.line


__all__ = ["Shell", "Word"]
