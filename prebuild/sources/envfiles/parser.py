"""Parser: tokens -> syntax tree, following bash's grammar for lists, pipelines and compound
commands. Syntax errors are located ConfigErrors; nesting is bounded by the lexer's depth."""

from __future__ import annotations

import re
from typing import NoReturn

from prebuild.sources.envfiles.dbracket import DBracketParser, literal
from prebuild.sources.envfiles.syntax import (
    AndOr,
    ArithCmd,
    Assign,
    Case,
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
from prebuild.sources.envfiles.tokens import NAME, Lexer, Lit, Op, Redir, Token, Word

RESERVED = {"if", "then", "elif", "else", "fi", "for", "while", "until", "do", "done", "case"}
RESERVED |= {"esac", "function", "select", "{", "}", "[[", "]]", "!", "time", "coproc", "in"}
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?(\+?)=")
_CASE_ENDS = (";;", ";&", ";;&")


def parse(text: str, shown: str) -> Seq:
    lexer = Lexer(text, shown)
    parser = Parser(lexer)
    seq = parser.seq(set())
    if (token := parser.peek()) is not None:
        parser.fail(f"syntax error near unexpected token {_show(token)!r}", token)
    return seq


def _show(token: Token) -> str:
    if isinstance(token, Op):
        return "newline" if token.text == "\n" else token.text
    if isinstance(token, Redir):
        return token.op
    return literal(token) or "word"


def _subparse(lexer: Lexer) -> Seq:
    parser = Parser(lexer)
    seq = parser.seq(set(), stop_ops={")"})
    parser.unread()
    return seq


class Parser(DBracketParser):
    def __init__(self, lexer: Lexer) -> None:
        self.lexer = lexer
        lexer.subparse = _subparse
        lexer.parse_text = parse
        self._peeked: tuple[Token | None, int, int] | None = None

    def fail(self, message: str, token: Token | None = None) -> NoReturn:
        self.lexer.fail(message, line=token.line if token is not None else None)

    def peek(self) -> Token | None:
        if self._peeked is None:
            self.lexer.skip_blanks()
            pos, line = self.lexer.pos, self.lexer.line
            self._peeked = (self.lexer.next(), pos, line)
        return self._peeked[0]

    def take(self) -> Token | None:
        token = self.peek()
        self._peeked = None
        return token

    def unread(self) -> None:
        """Give the peeked token back to the lexer (a `$(...)` body ends at its `)`)."""
        if self._peeked is not None:
            _, self.lexer.pos, self.lexer.line = self._peeked
            self._peeked = None

    def expect_word(self, text: str, opened: Token | None) -> None:
        self.skip_newlines()
        token = self.take()
        if not self._is_word(token, text):
            where = f" (opened at line {opened.line})" if opened else ""
            self.fail(f"expected '{text}'{where}", token or opened)

    def skip_newlines(self) -> None:
        while self._is_op(self.peek(), "\n"):
            self.take()

    def seq(self, stops: set[str], stop_ops: set[str] | None = None) -> Seq:
        """Commands up to a stop word (then, fi, done...) or operator, not consumed."""
        seq = Seq()
        ends = {")", *_CASE_ENDS} | (stop_ops or set())
        while True:
            self.skip_newlines()
            token = self.peek()
            if token is None or self._is_op(token, *ends):
                return seq
            if isinstance(token, Word) and literal(token) in stops:
                return seq
            andor = self.and_or()
            after = self.peek()
            if self._is_op(after, ";", "&", "\n"):
                self.take()
                seq.items.append((andor, after.text == "&"))  # type: ignore[union-attr]
            else:
                seq.items.append((andor, False))
                stopped = isinstance(after, Word) and literal(after) in stops
                if not (after is None or self._is_op(after, *ends) or stopped):
                    self.fail(f"syntax error near unexpected token {_show(after)!r}", after)

    def and_or(self) -> AndOr:
        andor = AndOr(self.pipeline(), [])
        while self._is_op(self.peek(), "&&", "||"):
            op = self.take()
            self.skip_newlines()
            andor.rest.append((op.text, self.pipeline()))  # type: ignore[union-attr]
        return andor

    def pipeline(self) -> Pipeline:
        token = self.peek()
        line = token.line if token else self.lexer.line
        if self._is_word(token, "time"):
            self.take()
        negated = False
        while self._is_word(self.peek(), "!"):
            self.take()
            negated = not negated
        commands = [self.command()]
        while self._is_op(self.peek(), "|", "|&"):
            self.take()
            self.skip_newlines()
            commands.append(self.command())
        return Pipeline(commands, negated, line)

    def command(self) -> Node:
        token = self.peek()
        if token is None:
            self.fail("syntax error: unexpected end of file")
        self.lexer._enter()
        compound = self._compound(token)
        node: Node
        if compound is not None:
            redirs = self._redirs()
            node = Redirected(compound, redirs) if redirs else compound
        else:
            node = self.simple()
        self.lexer.depth -= 1
        return node

    def _redirs(self) -> list[Redir]:
        redirs: list[Redir] = []
        while isinstance(token := self.peek(), Redir):
            self.take()
            redirs.append(token)
        return redirs

    def _compound(self, token: Token) -> Node | None:
        word = literal(token) if isinstance(token, Word) else None
        if isinstance(token, Op) and token.text == "(":
            self.take()
            if self.lexer.at("(") and self._peeked is None:
                self.lexer._advance(1)
                return ArithCmd(self.lexer.arith_body(token.line), token.line)
            body = self.seq(set())
            if not self._is_op(self.take(), ")"):
                self.fail(f"'(' opened at line {token.line} is not closed", token)
            return Group(body, True, token.line)
        if isinstance(token, Op) and token.text in ("\n", ";", "&", "|", "||", "&&", ")"):
            self.fail(f"syntax error near unexpected token {_show(token)!r}", token)
        if word == "if":
            return self._if()
        if word in ("while", "until"):
            self.take()
            cond = self.seq({"do"})
            self.expect_word("do", token)
            body = self.seq({"done"})
            self.expect_word("done", token)
            return Loop(word, None, None, cond, body, token.line)
        if word in ("for", "select"):
            return self._for(word)
        if word == "case":
            return self._case()
        if word == "{":
            self.take()
            body = self.seq({"}"})
            self.expect_word("}", token)
            return Group(body, False, token.line)
        if word == "[[":
            return self._dbracket()
        if word == "function":
            self.take()
            name = self.take()
            if not isinstance(name, Word) or literal(name) is None:
                self.fail("'function' without a name", token)
            if self._is_op(self.peek(), "("):
                self.take()
                if not self._is_op(self.take(), ")"):
                    self.fail("expected ')' after 'function NAME ('", token)
            self.skip_newlines()
            return FuncDef(literal(name) or "", self.command(), token.line)
        if word == "coproc":
            self.fail("not supported: 'coproc'", token)
        if word in ("then", "elif", "else", "fi", "do", "done", "esac", "}", "]]", "in"):
            self.fail(f"syntax error near unexpected token {word!r}", token)
        return None

    def _if(self) -> If:
        opened = self.take()
        clauses = []
        while True:
            cond = self.seq({"then"})
            self.expect_word("then", opened)
            body = self.seq({"elif", "else", "fi"})
            clauses.append((cond, body))
            self.skip_newlines()
            token = self.take()
            if self._is_word(token, "elif"):
                continue
            if self._is_word(token, "else"):
                orelse = self.seq({"fi"})
                self.expect_word("fi", opened)
                return If(clauses, orelse, opened.line)  # type: ignore[union-attr]
            if self._is_word(token, "fi"):
                return If(clauses, None, opened.line)  # type: ignore[union-attr]
            self.fail(f"'if' opened at line {opened.line} is not closed by 'fi'", token or opened)  # type: ignore[union-attr]

    def _for(self, kind: str) -> Loop:
        opened = self.take()
        assert opened is not None
        if self._is_op(self.peek(), "(") and self.lexer.at("("):
            self.take()
            self.lexer._advance(1)
            self.lexer.arith_body(opened.line)
            var, words, kind = None, None, "arith-for"
        else:
            name = self.take()
            var = literal(name) if isinstance(name, Word) else None
            if var is None or not NAME.fullmatch(var):
                self.fail(f"'{kind}' needs a variable name", opened)
            self.skip_newlines()
            words = None
            if self._is_word(self.peek(), "in"):
                self.take()
                words = []
                while isinstance(self.peek(), Word):
                    words.append(self.take())
        if self._is_op(self.peek(), ";"):
            self.take()
        self.skip_newlines()
        self.expect_word("do", opened)
        body = self.seq({"done"})
        self.expect_word("done", opened)
        return Loop(kind, var, words, None, body, opened.line)  # type: ignore[arg-type]

    def _case(self) -> Case:
        opened = self.take()
        assert opened is not None
        word = self.take()
        if not isinstance(word, Word):
            self.fail("'case' needs a word", opened)
        self.skip_newlines()
        self.expect_word("in", opened)
        arms: list[tuple[list[Word], Seq, str]] = []
        while True:
            self.skip_newlines()
            if self._is_word(self.peek(), "esac"):
                self.take()
                return Case(word, arms, opened.line)
            if self._is_op(self.peek(), "("):
                self.take()
            patterns = []
            while True:
                pattern = self.take()
                if not isinstance(pattern, Word):
                    self.fail("expected a case pattern", pattern or opened)
                patterns.append(pattern)
                if not self._is_op(self.peek(), "|"):
                    break
                self.take()
            if not self._is_op(self.take(), ")"):
                self.fail("expected ')' after a case pattern", opened)
            body = self.seq({"esac"})
            end = self.peek()
            terminator = end.text if self._is_op(end, *_CASE_ENDS) else ";;"  # type: ignore[union-attr]
            if self._is_op(end, *_CASE_ENDS):
                self.take()
            elif not self._is_word(end, "esac"):
                self.fail(
                    f"'case' opened at line {opened.line} is not closed by 'esac'", end or opened
                )
            arms.append((patterns, body, terminator))

    def simple(self) -> Node:
        token = self.peek()
        assert token is not None
        line = token.line
        assigns: list[Assign] = []
        words: list[Word] = []
        redirs: list[Redir] = []
        while True:
            token = self.peek()
            if isinstance(token, Redir):
                redirs.append(self.take())  # type: ignore[arg-type]
                continue
            if not isinstance(token, Word):
                break
            if not words and (assign := self._assignment(token)) is not None:
                self.take()
                if assign.array:
                    self._array_rest(assign, token)
                assigns.append(assign)
                continue
            self.take()
            words.append(token)
            if len(words) == 1 and not assigns and self._is_op(self.peek(), "("):
                return self._function(token)
        if not words and not assigns and not redirs:
            bad = self.peek()
            self.fail(f"syntax error near unexpected token {_show(bad) if bad else 'EOF'!r}", bad)
        return Simple(assigns, words, redirs, line)

    def _function(self, name: Word) -> FuncDef:
        text = literal(name)
        self.take()
        if not self._is_op(self.take(), ")") or text is None:
            self.fail("not supported: '(' after a command word", name)
        self.skip_newlines()
        return FuncDef(text, self.command(), name.line)

    def _assignment(self, word: Word) -> Assign | None:
        first = word.parts[0] if word.parts else None
        if not isinstance(first, Lit) or first.quoted:
            return None
        match = _ASSIGN.match(first.text)
        if not match:
            return None
        name, index, plus = match.groups()
        rest = first.text[match.end() :]
        value = ([Lit(rest, False)] if rest else []) + word.parts[1:]
        array = index is not None
        if not value and self.lexer.at("("):
            array = True  # NAME=( ... )
        return Assign(name, bool(plus), value, word.line, array)

    def _array_rest(self, assign: Assign, token: Word) -> None:
        if assign.value or not self.lexer.at("("):
            return
        self.lexer._advance(1)
        while True:
            self.skip_newlines()
            inner = self.take()
            if self._is_op(inner, ")"):
                return
            if not isinstance(inner, Word):
                self.fail("unterminated array assignment", inner or token)
