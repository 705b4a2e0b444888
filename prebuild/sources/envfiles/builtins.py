"""Bash builtins, as they affect the variables the reader tracks.

Exact where bash's behaviour is (export, declare, unset, set, source, eval of known text,
test); the variables a builtin fills from the machine (read, mapfile, printf -v, getopts, cd)
become unknown; builtins that can change how everything after them runs (trap on DEBUG,
enable, shopt of parsing options) stop the reader from trusting anything after them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prebuild.sources.envfiles import arith, conditions, effects
from prebuild.sources.envfiles.dbracket import literal
from prebuild.sources.envfiles.tokens import NAME, Lit, Word
from prebuild.sources.envfiles.values import Cause, Unknown, Value, word_list
from prebuild.sources.envfiles.writes import Writes

Status = int | Cause
Handler = Callable[[list[Word], int], Status]
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_SAFE_SHOPT = {"nullglob", "failglob", "dotglob", "globstar", "nocaseglob", "checkwinsize"}
_SAFE_SHOPT |= {"histappend", "cmdhist", "lithist", "progcomp", "promptvars", "sourcepath"}
_SET_POISON = {"n": "noexec", "k": "keyword", "t": "onecmd"}
_SET_FLAGS = {"u": "nounset", "a": "allexport", "e": "errexit"}
_QUIET = word_list(
    """
        echo pwd type hash help times umask ulimit wait jobs kill disown suspend caller dirs
        history fc bind complete compgen compopt logout shift break continue alias unalias
        """
)


class Builtins(Writes):
    """Handlers take the argument words and the command's line; they return a status."""

    def builtin(self, name: str) -> Handler | None:
        table: dict[str, Handler] = {
            ":": self._true, "true": self._true, "false": self._false,
            "test": self._test, "[": self._bracket, "printf": self._printf,
            "export": self._declare("export"), "declare": self._declare("declare"),
            "typeset": self._declare("declare"), "readonly": self._declare("readonly"),
            "local": self._local, "unset": self._unset, "set": self._set, "shopt": self._shopt,
            "source": self._source, ".": self._source, "eval": self._eval,
            "read": self._reads("read"), "mapfile": self._reads("mapfile"),
            "readarray": self._reads("readarray"), "getopts": self._getopts,
            "cd": self._cd, "pushd": self._cd, "popd": self._cd,
            "exit": self._stop("exit"), "return": self._stop("return"), "exec": self._exec,
            "trap": self._trap, "enable": self._enable, "let": self._let,
            "command": self._command, "builtin": self._builtin,
        }  # fmt: skip
        if name in _QUIET:
            return self._quiet
        return table.get(name)

    # the evaluator provides these
    def run_file(self, path, line: int = 0) -> Status:  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def eval_text(self, text: str, line: int) -> Status:
        raise NotImplementedError

    def _lose_track(self, line: int, what: str) -> Status:
        cause = self.cause(line, what)
        self.state.poisoned(cause)
        return cause

    def _true(self, words: list[Word], line: int) -> Status:
        self.fields(words)  # `: ${A:=default}` assigns
        return 0

    def _false(self, words: list[Word], line: int) -> Status:
        self.fields(words)
        return 1

    def _quiet(self, words: list[Word], line: int) -> Status:
        self.fields(words)
        return 0

    def _test(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return args.cause
        result = conditions.test_args(self, args)
        return self.cause(line, "test") if result is None else int(not result)

    def _bracket(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return args.cause
        if not args or args[-1] != "]":
            return self.cause(line, "'[' without ']'")
        result = conditions.test_args(self, args[:-1])
        return self.cause(line, "'[ ]'") if result is None else int(not result)

    def _printf(self, words: list[Word], line: int) -> Status:
        texts = [literal(w) for w in words]
        target = None
        if texts and texts[0] == "-v":
            target = texts[1] if len(texts) > 1 else None
        elif texts and texts[0] and texts[0].startswith("-v"):
            target = texts[0][2:]
        elif words and texts[0] is None:
            first = self.word_fields(words[0])
            if isinstance(first, Unknown) or (first and first[0].startswith("-v")):
                return self._lose_track(line, "printf with a computed option")
        self.fields(words)
        if texts and (texts[0] or "").startswith("-v"):
            if target is None or not NAME.fullmatch(target):
                return self._lose_track(line, "printf -v with a computed name")
            self.state.unknown(target, self.cause(line, "printf -v"), (self.path, line))
        return 0

    def _declare(self, kind: str) -> Handler:
        def handler(words: list[Word], line: int) -> Status:
            return self.declaration(kind, words, line)

        return handler

    def declaration(self, kind: str, words: list[Word], line: int) -> Status:
        """export / declare / typeset / readonly: flags, then NAME or NAME=value words."""
        flags_on: set[str] = set()
        flags_off: set[str] = set()
        index = 0
        while index < len(words):
            text = literal(words[index])
            if text is None or not re.fullmatch(r"[-+][A-Za-z]+|--", text):
                break
            index += 1
            if text == "--":
                break
            (flags_on if text[0] == "-" else flags_off).update(text[1:])
        if flags_on & {"f", "F", "p"} or flags_off & {"f", "F"}:
            self.fields(words[index:])
            return 0
        odd = (flags_on | flags_off) - ({"n"} if kind == "export" else {"x", "g", "r"})
        pairs = [pair for word in words[index:] for pair in self._declared(word, line)]
        for name, value, append in pairs:  # bash expands every argument before assigning
            if name is None:
                return self._lose_track(line, f"'{kind}' with an argument computed at run time")
            if odd:
                what = f"{kind} -{''.join(sorted(odd))}"
                self.state.special.add(name)
                self.state.unknown(name, self.cause(line, what), (self.path, line))
                continue
            if value is not None:
                if append:
                    old = self.state.get(name, self.cause(line, "+="))
                    if isinstance(old, Unknown):
                        value = old
                    elif old is not None and isinstance(value, str):
                        value = old + value
                self.assign(name, value, line)
            if kind == "export":
                unexport = "n" in flags_on
            elif "x" in flags_on or "x" in flags_off:
                unexport = "x" in flags_off
            else:
                unexport = None
            if unexport is not None:
                self.state.exported[name] = not unexport
            if kind == "readonly" or "r" in flags_on:
                self.state.readonly.add(name)
        return 0

    def _declared(self, word: Word, line: int) -> list[tuple[str | None, Value | None, bool]]:
        """(name, value or None, append) for each name a declaration argument stands for."""
        first = word.parts[0] if word.parts else None
        if isinstance(first, Lit) and not first.quoted and (m := _ASSIGNMENT.match(first.text)):
            rest = first.text[m.end() :]
            parts = ([Lit(rest, False)] if rest else []) + word.parts[1:]
            return [(m.group(1), self.value(parts, assignment=True, line=line), bool(m.group(2)))]
        fields = self.word_fields(word)
        if isinstance(fields, Unknown):
            return [(None, None, False)]
        pairs: list[tuple[str | None, Value | None, bool]] = []
        for field in fields:
            name, eq, value = field.partition("=")
            append = bool(eq) and name.endswith("+")
            name = name.removesuffix("+") if eq else name
            if not NAME.fullmatch(name):
                return [(None, None, False)]
            pairs.append((name, value if eq else None, append))
        return pairs

    def _local(self, words: list[Word], line: int) -> Status:
        self.fields(words)
        return 1  # "can only be used in a function": the reader never runs function bodies

    def _unset(self, words: list[Word], line: int) -> Status:
        mode = "v?"
        for word in words:
            text = literal(word)
            if text in ("-v", "-f", "-n"):
                mode = text[1]
                continue
            fields = self.word_fields(word)
            if isinstance(fields, Unknown):
                return self._lose_track(line, "'unset' of a name computed at run time")
            for name in fields:
                if mode == "n":
                    return self._lose_track(line, "'unset -n'")
                if mode == "f" or (
                    mode == "v?" and name not in self.state.vars and name in self.state.functions
                ):
                    self.state.functions.pop(name, None)
                    continue
                if name in self.state.readonly:
                    continue
                self.state.vars.pop(name, None)
                self.state.exported.pop(name, None)
                self.state.special.discard(name)
                self.state.unknown_since.pop(name, None)
                self.state.history.setdefault(name, []).append((self.path, line))
        return 0

    def _set(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return self._lose_track(line, "'set' with arguments computed at run time")
        index = 0
        while index < len(args):
            arg = args[index]
            index += 1
            if arg in ("--", "-") or arg[:1] not in ("-", "+") or len(arg) < 2:
                break  # positional parameters follow
            on = arg[0] == "-"
            for letter in arg[1:]:
                if letter == "o":
                    option = args[index] if index < len(args) else ""
                    index += 1
                    if self._option(option, on, line):
                        return self.cause(line, "set")
                elif letter in _SET_POISON and on:
                    return self._lose_track(line, f"set -{letter} ({_SET_POISON[letter]})")
                elif letter in _SET_FLAGS:
                    self._option(_SET_FLAGS[letter], on, line)
        return 0

    def _option(self, option: str, on: bool, line: int) -> bool:
        if option in ("nounset", "allexport", "errexit"):
            setattr(self.state, option, on)
        elif (option in ("posix", "noexec", "keyword", "onecmd") and on) or (
            option == "interactive-comments" and not on
        ):
            self._lose_track(line, f"set -o {option}")
            return True
        return False

    def _shopt(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return self._lose_track(line, "'shopt' with arguments computed at run time")
        changing = any(a in ("-s", "-u") for a in args)
        names = [a for a in args if not a.startswith("-")]
        if changing and "-o" not in args and not set(names) <= _SAFE_SHOPT:
            return self._lose_track(line, f"shopt {' '.join(args)}")
        if changing and "-o" in args:
            for name in names:
                if self._option(name, "-s" in args, line):
                    return self.cause(line, "shopt -o")
        return 0

    def _source(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return self._lose_track(line, f"source of a path that is not known ({args.cause})")
        if not args:
            return 2
        if not args[0]:
            return 1  # bash: "No such file or directory"; nothing is read
        target = self.resolve_source(args[0], line)
        if isinstance(target, Cause):
            self.state.poisoned(target)
            return target
        return self.run_file(target, line)

    def _eval(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return self._lose_track(line, f"eval of text that is not known ({args.cause})")
        return self.eval_text(" ".join(args), line)

    def _reads(self, name: str) -> Handler:
        def handler(words: list[Word], line: int) -> Status:
            texts = [literal(w) for w in words]
            try:
                targets = effects.read_targets(name, texts)
            except effects.Untraceable as error:
                return self._lose_track(line, str(error.args[0]))
            cause = self.cause(line, name)
            for target in targets:
                if not NAME.fullmatch(target):
                    return self._lose_track(line, f"'{name}' into {target!r}")
                if name != "read" or "-a" in texts:
                    self.state.special.add(target)
                self.state.unknown(target, cause, (self.path, line))
            return cause

        return handler

    def _getopts(self, words: list[Word], line: int) -> Status:
        texts = [literal(w) for w in words]
        if len(texts) < 2 or texts[1] is None or not NAME.fullmatch(texts[1]):
            return self._lose_track(line, "'getopts' with a computed name")
        for target in ("OPTARG", "OPTIND", texts[1]):
            self.state.unknown(target, self.cause(line, "getopts"), (self.path, line))
        return self.cause(line, "getopts")

    def _cd(self, words: list[Word], line: int) -> Status:
        self.fields(words)
        self.state.cwd = None
        for target in ("PWD", "OLDPWD", "DIRSTACK"):
            self.state.unknown(target, self.cause(line, "cd"), (self.path, line))
        return self.cause(line, "cd")

    def _stop(self, kind: str) -> Handler:
        def handler(words: list[Word], line: int) -> Status:
            self.fields(words)
            self.state.stopped = kind
            return 0

        return handler

    def _exec(self, words: list[Word], line: int) -> Status:
        if words:
            self.fields(words)
            self.state.stopped = "exit"
        return 0

    def _trap(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return self._lose_track(line, "'trap' with arguments computed at run time")
        signals = {a.upper().removeprefix("SIG") for a in args[1:]}
        if args and args[0] not in ("-p", "-l", "-", "") and signals & {"DEBUG", "RETURN", "ERR"}:
            return self._lose_track(line, f"trap on {', '.join(sorted(signals))}")
        return 0

    def _enable(self, words: list[Word], line: int) -> Status:
        return self._lose_track(line, "'enable' changes which builtins run")

    def _let(self, words: list[Word], line: int) -> Status:
        args = self.fields(words)
        if isinstance(args, Unknown):
            return self._lose_track(line, "'let' over an unknown value")
        result: object = 0
        for arg in args:
            result = arith.evaluate(arg, lambda n: self.state.get(n, self.cause(line, "let")))
            if result == arith.ASSIGNS:
                return self._lose_track(line, "'let' that can assign variables")
        return self.cause(line, "let") if result is None else int(result == 0)

    def _command(self, words: list[Word], line: int) -> Status:
        texts = [literal(w) for w in words]
        if texts and texts[0] in ("-v", "-V"):
            self.fields(words)
            return self.cause(line, "command -v")
        if texts and texts[0] == "-p":
            words, texts = words[1:], texts[1:]
        if not words:
            return 0
        if texts[0] is None:
            return self._lose_track(line, "'command' with a computed name")
        handler = self.builtin(texts[0])
        if handler is not None:
            return handler(words[1:], line)
        self.fields(words)
        self.external(texts[0], line)
        return self.cause(line, f"command '{texts[0]}' runs on the CI machine")

    def _builtin(self, words: list[Word], line: int) -> Status:
        name = literal(words[0]) if words else None
        handler = self.builtin(name) if name else None
        if handler is None:
            return self._lose_track(line, "'builtin' with an unknown name")
        return handler(words[1:], line)
