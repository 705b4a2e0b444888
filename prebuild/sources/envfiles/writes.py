"""Whether code the reader does not run may change files: a later `source` of an in-repo
file then no longer reads what the checkout holds, so it must not be trusted."""

from __future__ import annotations

import os
from pathlib import Path

from prebuild.errors import ConfigError
from prebuild.sources.envfiles.dbracket import literal
from prebuild.sources.envfiles.expand import Expander
from prebuild.sources.envfiles.syntax import Node, Seq
from prebuild.sources.envfiles.tokens import CmdSub, Redir
from prebuild.sources.envfiles.values import MAX_NESTING, Cause, word_list

_QUIET_TARGETS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")
# External commands that do not write files (so a later `source` still reads the checkout).
READ_ONLY = frozenset(
    word_list(
        """
        dirname basename uname nproc sysctl cat date id whoami hostname env printenv which tr
        head tail cut wc sort uniq expr seq sleep realpath readlink getconf lsb_release grep
        dpkg-architecture tput ls stat true false test [ echo printf pwd command type
        """
    )
)


class Writes(Expander):
    eval_depth: int
    root: Path

    def node(self, node: Node) -> object:
        raise NotImplementedError

    def external(self, name: str, line: int) -> None:
        if name not in READ_ONLY and self.state.fs_dirty is None:
            self.state.fs_dirty = self.cause(line, f"command '{name}'")

    def redirections(self, redirs: list[Redir]) -> None:
        for redir in redirs:
            if redir.op in ("<", "<&"):
                continue
            target = literal(redir.target)
            if (
                redir.op in (">&", "<&")
                and target is not None
                and (target.isdigit() or target == "-")
            ):
                continue
            if target in _QUIET_TARGETS or (target or "").startswith("/dev/fd/"):
                continue
            if self.state.fs_dirty is None:
                self.state.fs_dirty = self.cause(redir.line, f"output redirection '{redir.op}'")

    def command_substitution(self, part: CmdSub) -> None:
        assert isinstance(part.body, Seq)
        self._scan_for_writes(part.body)

    def _scan_for_writes(self, node: Node) -> None:
        """Code run in a subshell or not evaluated: may it write files?"""
        saved, saved_certain = self.state, self.certain
        self.state, self.certain = saved.copy(), False
        self.state.poison = None
        try:
            if self.eval_depth < MAX_NESTING:
                self.eval_depth += 1
                try:
                    self.node(node)
                finally:
                    self.eval_depth -= 1
        except ConfigError:
            self.state.fs_dirty = self.state.fs_dirty or self.cause(0, "unreadable code")
        finally:
            dirty, self.state, self.certain = self.state.fs_dirty, saved, saved_certain
        self.state.fs_dirty = self.state.fs_dirty or dirty

    def resolve_source(self, text: str, line: int) -> Path | Cause:
        """The in-repository file `source TEXT` reads, or why it cannot be known."""
        if "/" not in text:
            return self.cause(line, f"source of {text!r}: a bare name is searched in $PATH")
        if self.state.cwd is None and not text.startswith("/"):
            return self.cause(line, f"source of {text!r} after 'cd'")
        if self.state.fs_dirty is not None:
            return self.cause(line, f"source after files may have changed ({self.state.fs_dirty})")
        path = Path(os.path.normpath(Path(self.state.cwd or self.root) / text))
        try:
            real = path.resolve(strict=True)
        except RuntimeError:
            raise ConfigError(
                f"source {text!r}: symlink loop", file=self.shown, line=line
            ) from None
        except OSError as error:
            if error.errno == 40:  # ELOOP
                raise ConfigError(
                    f"source {text!r}: symlink loop", file=self.shown, line=line
                ) from None
            return self.cause(line, f"source of {text!r}: not in the checkout")
        root = self.root.resolve()
        if not real.is_relative_to(root) or not real.is_file():
            return self.cause(line, f"source of {text!r}: outside the repository")
        return path
