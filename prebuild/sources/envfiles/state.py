"""The shell state the reader tracks, and how two possible states merge.

When the reader cannot tell which way a condition goes it evaluates both ways on copies of
the state and merges them: what both ways agree on stays known, the rest becomes unknown
with the condition as its cause. Once something happened that the reader cannot follow at
all (an unresolvable `source`, `eval` of unknown text...), the state is `poisoned`: every
variable read or reported after that point is unknown, with that cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prebuild.sources.envfiles.syntax import Node
from prebuild.sources.envfiles.values import Cause, Unknown, Value, word_list

Place = tuple[Path, int]

# Variables bash itself sets or gives meaning to: never "unset" even in an empty environment.
BASH_OWN = frozenset(
    word_list(
        """
        BASH BASHOPTS BASHPID BASH_ALIASES BASH_ARGC BASH_ARGV BASH_ARGV0 BASH_CMDS BASH_COMMAND
        BASH_EXECUTION_STRING BASH_LINENO BASH_LOADABLES_PATH BASH_REMATCH BASH_SOURCE
        BASH_SUBSHELL BASH_VERSINFO BASH_VERSION BASH_COMPAT BASH_ENV BASH_XTRACEFD CDPATH
        CHILD_MAX COLUMNS COMP_CWORD COMP_LINE COMP_POINT COMP_TYPE COMP_KEY COMP_WORDBREAKS
        COMP_WORDS COPROC DIRSTACK EMACS ENV EPOCHREALTIME EPOCHSECONDS EUID EXECIGNORE FCEDIT
        FIGNORE FUNCNAME FUNCNEST GLOBIGNORE GLOBSORT GROUPS HISTCMD HISTCONTROL HISTFILE
        HISTFILESIZE HISTIGNORE HISTSIZE HISTTIMEFORMAT HOME HOSTFILE HOSTNAME HOSTTYPE IFS
        IGNOREEOF INPUTRC INSIDE_EMACS LANG LC_ALL LC_COLLATE LC_CTYPE LC_MESSAGES LC_NUMERIC
        LC_TIME LINENO LINES MACHTYPE MAIL MAILCHECK MAILPATH MAPFILE OLDPWD OPTARG OPTERR
        OPTIND OSTYPE PATH PIPESTATUS POSIXLY_CORRECT PPID PROMPT_COMMAND PROMPT_DIRTRIM PS0 PS1
        PS2 PS3 PS4 PWD RANDOM READLINE_ARGUMENT READLINE_LINE READLINE_MARK READLINE_POINT
        REPLY SECONDS SHELL SHELLOPTS SHLVL SRANDOM TERM TIMEFORMAT TMOUT TMPDIR UID _
        """
    )
)
# Values bash computes on every read (an assignment only seeds or resets them).
DYNAMIC = frozenset(
    word_list(
        """
        RANDOM SRANDOM SECONDS LINENO BASHPID EPOCHSECONDS EPOCHREALTIME BASH_COMMAND FUNCNAME
        BASH_SUBSHELL HISTCMD BASH_ARGV0 BASH_LINENO BASH_SOURCE PIPESTATUS GROUPS DIRSTACK
        """
    )
)
# Assigning these changes how bash reads or runs what follows: the reader stops following.
POISONING = frozenset(["POSIXLY_CORRECT", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE"])
POISONING |= {"BASH_COMPAT", "EXECIGNORE", "FUNCNEST", "BASH_ALIASES", "BASH_CMDS"}


@dataclass
class State:
    vars: dict[str, Value] = field(default_factory=dict)  # absent = unset
    exported: dict[str, bool | Unknown] = field(default_factory=dict)
    history: dict[str, list[Place]] = field(default_factory=dict)  # where each was assigned
    unknown_since: dict[str, Cause] = field(default_factory=dict)
    special: set[str] = field(default_factory=set)  # arrays, -i/-l/-u/-n attributes
    readonly: set[str] = field(default_factory=set)
    maybe_unset: set[str] = field(default_factory=set)  # unknown, and perhaps not even set
    functions: dict[str, list[Node]] = field(default_factory=dict)  # possible bodies
    poison: Cause | None = None
    cwd: Path | None = None  # None: unknown (after cd)
    nounset: bool = False
    allexport: bool = False
    errexit: bool = False
    ifs_default: bool = True
    fs_dirty: Cause | None = None  # a command that may have changed files ran
    stopped: str | None = None  # "return" (this file) or "exit" (everything)
    files_read: list[Path] = field(default_factory=list)

    def copy(self) -> State:
        return State(
            vars=dict(self.vars),
            exported=dict(self.exported),
            history={k: list(v) for k, v in self.history.items()},
            unknown_since=dict(self.unknown_since),
            special=set(self.special),
            readonly=set(self.readonly),
            maybe_unset=set(self.maybe_unset),
            functions={k: list(v) for k, v in self.functions.items()},
            poison=self.poison,
            cwd=self.cwd,
            nounset=self.nounset,
            allexport=self.allexport,
            errexit=self.errexit,
            ifs_default=self.ifs_default,
            fs_dirty=self.fs_dirty,
            stopped=self.stopped,
            files_read=list(self.files_read),
        )

    def get(self, name: str, cause: Cause) -> Value | None:
        """The variable's value, None when certainly unset."""
        if self.poison is not None:
            return Unknown(self.poison)
        if name in self.special:
            return Unknown(self.unknown_since.get(name, cause))
        value = self.vars.get(name)
        if value is None and name in BASH_OWN:
            return Unknown(Cause(cause.file, cause.line, f"${name} is set by bash itself"))
        return value

    def set(self, name: str, value: Value, place: Place, shown: str) -> None:
        if isinstance(value, Unknown):
            self.unknown_since.setdefault(name, value.cause)
        else:
            self.unknown_since.pop(name, None)
        if name in self.special and not isinstance(value, Unknown):
            value = Unknown(self.unknown_since.get(name, Cause(shown, place[1], "attributes")))
        if name in DYNAMIC:
            value = Unknown(Cause(shown, place[1], f"${name} is computed by bash on every read"))
        self.vars[name] = value
        self.maybe_unset.discard(name)
        self.history.setdefault(name, []).append(place)
        if self.allexport:
            self.exported[name] = True
        if name == "IFS":
            self.ifs_default = False

    def unknown(self, name: str, cause: Cause, place: Place) -> None:
        self.vars[name] = Unknown(cause)
        self.maybe_unset.add(name)  # read at end of input, a loop that unsets it...
        self.unknown_since[name] = cause
        self.history.setdefault(name, []).append(place)
        if name == "IFS":
            self.ifs_default = False

    def poisoned(self, cause: Cause) -> None:
        if self.poison is None:
            self.poison = cause


def merge(states: list[State], cause: Cause) -> State:
    """One state for "any of these may have happened"; disagreements become unknown."""
    live = [s for s in states if s.stopped != "exit"]
    if not live:
        return states[0]
    first = live[0].copy()
    if len(live) < len(states) or len({s.stopped for s in live}) > 1:
        first.poisoned(Cause(cause.file, cause.line, f"{cause.what}: may stop the file early"))
    for other in live[1:]:
        _merge_into(first, other, cause)
    return first


def _merge_into(into: State, other: State, cause: Cause) -> None:
    for name in set(into.vars) | set(other.vars):
        mine, theirs = into.vars.get(name), other.vars.get(name)
        if mine is None or theirs is None or name in other.maybe_unset:
            into.maybe_unset.add(name)
        if mine != theirs:
            into.vars[name] = (
                mine
                if isinstance(mine, Unknown)
                else theirs
                if isinstance(theirs, Unknown)
                else Unknown(cause)
            )
            into.unknown_since.setdefault(name, into.vars[name].cause)  # type: ignore[union-attr]
        places = other.history.get(name, [])
        into.history[name] = into.history.get(name, []) + [
            p for p in places if p not in into.history.get(name, [])
        ]
    for name in set(into.exported) | set(other.exported):
        if into.exported.get(name, False) != other.exported.get(name, False):
            into.exported[name] = Unknown(cause)
    into.special |= other.special
    into.readonly |= other.readonly
    for name, bodies in other.functions.items():
        into.functions.setdefault(name, [])
        into.functions[name] += [b for b in bodies if b not in into.functions[name]]
    if into.poison is None and other.poison is not None:
        into.poison = other.poison
    if into.cwd != other.cwd:
        into.cwd = None
    if (into.nounset, into.allexport, into.errexit) != (
        other.nounset,
        other.allexport,
        other.errexit,
    ):
        into.poisoned(Cause(cause.file, cause.line, f"{cause.what}: shell options differ"))
    into.ifs_default = into.ifs_default and other.ifs_default
    into.fs_dirty = into.fs_dirty or other.fs_dirty
    into.files_read += [f for f in other.files_read if f not in into.files_read]
