"""Parsing `[[ ... ]]`: its own little grammar (&&, ||, !, parentheses, unary and binary
operators; `<` and `>` are operators here, not redirections)."""

from __future__ import annotations

from typing import NoReturn

from prebuild.sources.envfiles.syntax import DBracket, TestExpr
from prebuild.sources.envfiles.tokens import Lexer, Lit, Op, Token, Word

_UNARY = {f"-{c}" for c in "abcdefghknoprstuvwxzGLNOS"}
_BINARY = {"==", "=", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot"}
_BINARY |= {"-ef", "=~"}


def literal(word: Word | None) -> str | None:
    """The word's text when it is one unquoted literal (how reserved words are recognised)."""
    if word is None or len(word.parts) != 1:
        return None
    part = word.parts[0]
    return part.text if isinstance(part, Lit) and not part.quoted else None


class DBracketParser:
    lexer: Lexer
    _peeked: tuple[Token | None, int, int] | None

    def fail(self, message: str, token: Token | None = None) -> NoReturn:
        raise NotImplementedError

    def peek(self) -> Token | None:
        raise NotImplementedError

    def take(self) -> Token | None:
        raise NotImplementedError

    def skip_newlines(self) -> None:
        raise NotImplementedError

    def _is_word(self, token: Token | None, *texts: str) -> bool:
        return isinstance(token, Word) and literal(token) in texts

    def _is_op(self, token: Token | None, *texts: str) -> bool:
        return isinstance(token, Op) and token.text in texts

    def _dbracket(self) -> DBracket:
        opened = self.take()
        assert opened is not None
        self.lexer.dbracket = True
        expr = self._test_or(opened)
        end = self.take()
        self.lexer.dbracket = False
        if not self._is_word(end, "]]"):
            self.fail(f"'[[' opened at line {opened.line} is not closed by ']]'", end or opened)
        return DBracket(expr, opened.line)

    def _test_or(self, opened: Token) -> TestExpr:
        left = self._test_and(opened)
        while self._is_op(self.peek(), "||"):
            self.take()
            self.skip_newlines()
            left = TestExpr("||", [left, self._test_and(opened)], opened.line)
        return left

    def _test_and(self, opened: Token) -> TestExpr:
        left = self._test_not(opened)
        while self._is_op(self.peek(), "&&"):
            self.take()
            self.skip_newlines()
            left = TestExpr("&&", [left, self._test_not(opened)], opened.line)
        return left

    def _test_not(self, opened: Token) -> TestExpr:
        self.skip_newlines()
        token = self.peek()
        if self._is_word(token, "!"):
            self.take()
            return TestExpr("!", [self._test_not(opened)], opened.line)
        if self._is_op(token, "("):
            self.take()
            self.lexer._enter()
            inner = self._test_or(opened)
            self.lexer.depth -= 1
            if not self._is_op(self.take(), ")"):
                self.fail("expected ')' in '[['", opened)
            return inner
        first = self.take()
        if not isinstance(first, Word) or self._is_word(first, "]]"):
            self.fail("expected an operand in '[['", first or opened)
        op = literal(first)
        after = self.peek()
        if op in _UNARY and isinstance(after, Word) and not self._is_word(after, "]]"):
            self.take()
            return TestExpr(op, [after], first.line)
        if isinstance(after, Word) and literal(after) in _BINARY:
            operator = literal(after) or ""
            self.take()
            if operator == "=~":
                self._peeked = None
                self.lexer.dbracket_regex()
                return TestExpr("=~", [first], first.line)
            right = self.take()
            if not isinstance(right, Word):
                self.fail(f"expected an operand after '{operator}'", right or opened)
            return TestExpr(operator, [first, right], first.line)
        return TestExpr("word", [first], first.line)
