"""Seeded generator of env-file repositories made of the constructs the reader supports, and
the bash oracle the differential test compares against (bash runs only in tests)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

BASH = shutil.which("bash")
NAMES = ["A", "B", "C", "D", "E", "F"]
VALUES = ["", "a", "b c", "x*", "1", "2", "-n", "a=b", "' q", '"dq"', "$A"]
DUMP = (
    "__dump() { for __n in " + " ".join(NAMES) + " I FILE_ENV; do "
    'if [[ -v $__n ]]; then printf "%s\\0%s\\0%s\\0" "$__n" "${!__n}" "${!__n@a}"; fi; done; }'
)


def quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.depth = 0

    def name(self) -> str:
        return self.rng.choice(NAMES)

    def value(self) -> str:
        """A word usable as an assignment value."""
        r, n, v = self.rng, self.name(), self.rng.choice(VALUES)
        forms = [
            lambda: quote(v),
            lambda: '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"',
            lambda: f'"x${{{n}}}y"',
            lambda: f"${n}",
            lambda: f"${{{n}:-{quote(v)}}}",
            lambda: f'"${{{n}-def}}"',
            lambda: f"${{{n}:=set_{r.randint(0, 9)}}}",
            lambda: f"${{{n}:+alt}}",
            lambda: f"${{#{n}}}",
            lambda: f"$(( {r.randint(0, 9)} + {r.randint(0, 9)} * 2 ))",
            lambda: "$(echo hi)",
            lambda: "`echo hi`",
            lambda: f'"${{{n}}}"/suffix',
            lambda: "plain\\ text",
            lambda: '"multi\nline"',
            lambda: '"cont\\\ninued"',
            lambda: f'${{{n}:-"q ${self.name()}"}}',
            lambda: f'"${{!{n}}}"',
            lambda: f"${{{n}}}${{{self.name()}}}",
            lambda: "'it''s'\"" + re.sub(r'[\\"$`]', "", v) + '"',
        ]
        return r.choice(forms)()

    def condition(self) -> str:
        r, n = self.rng, self.name()
        v = r.choice(["a", "", "1", "b c"])
        forms = [
            f'[ "${n}" = {quote(v)} ]',
            f'[ -n "${n}" ]',
            f'[ -z "${{{n}}}" ]',
            f'test "${n}" != {quote(v)}',
            f"[[ ${n} == {quote(v)} ]]",
            f"[[ ${n} == a* ]]",
            f'[[ -n ${n} && "${self.name()}" != x ]]',
            f"[[ -z ${n} || ${self.name()} == ? ]]",
            '[ "$(echo x)" = x ]',
            "command -v nproc >/dev/null 2>&1",
            "true",
            "false",
            f'! [ -n "${n}" ]',
            f"[ {r.randint(0, 3)} -lt {r.randint(0, 3)} ]",
            f"[[ -v {n} ]]",
        ]
        return r.choice(forms)

    def statement(self) -> str:
        r, n = self.rng, self.name()
        simple = [
            lambda: f"{n}={self.value()}",
            lambda: f"export {n}={self.value()}",
            lambda: f"export {n}",
            lambda: f"{n}+={self.value()}",
            lambda: f"declare {n}={self.value()}",
            lambda: f"declare -x {n}={self.value()}",
            lambda: f"unset {n}",
            lambda: f": ${{{n}:={quote(r.choice(VALUES))}}}",
            lambda: f"echo {self.value()} >/dev/null",
            lambda: f"printf -v {n} '%s' {quote(r.choice(VALUES))}",
            lambda: f"read -r {n} </dev/null || true",
            lambda: f"eval {quote(f'{n}=evald')}",
            lambda: f"{self.condition()} && {n}={self.value()}",
            lambda: f"{self.condition()} || {n}={self.value()}",
            lambda: f"{n}=$(echo dyn)",
            lambda: "set -o pipefail -o xtrace",
            lambda: f"{n}=1; {self.name()}=2",
            lambda: f"export {n} {self.name()}",
            lambda: f"declare +x {n}",
            lambda: f"unset -v {n}",
            lambda: f'eval "{n}=\\"e v\\""',
            lambda: f"[ ${n} ] && {self.name()}=split",
            lambda: f"{n}=${{{self.name()}:-$(( {r.randint(1, 5)} * 3 ))}}",
        ]
        compound = [self._if, self._if, self._case, self._for]
        if self.depth == 0 and r.random() < 0.05:
            return self._function()
        if self.depth < 2 and r.random() < 0.15:
            self.depth += 1
            text = r.choice(compound)()
            self.depth -= 1
            return text
        return r.choice(simple)()

    def body(self, count: int) -> str:
        return "\n".join("  " + line for s in range(count) for line in self.statement().split("\n"))

    def _if(self) -> str:
        text = f"if {self.condition()}; then\n{self.body(self.rng.randint(1, 3))}\n"
        if self.rng.random() < 0.4:
            text += f"elif {self.condition()}; then\n{self.body(1)}\n"
        if self.rng.random() < 0.6:
            text += f"else\n{self.body(self.rng.randint(1, 2))}\n"
        return text + "fi"

    def _case(self) -> str:
        return (
            f'case "${self.name()}" in\n  a|b) {self.name()}=x;;\n  *) {self.statement()};;\nesac'
        )

    def _for(self) -> str:
        return f"for {self.name()} in one two; do\n{self.body(2)}\ndone"

    def _function(self) -> str:
        name = f"fn_{self.rng.randint(0, 3)}"
        self.depth += 1
        body = self.body(2)
        self.depth -= 1
        return f"{name}() {{\n{body}\n}}\n{name}"

    def repo(self, root: Path) -> tuple[list[Path], dict[str, str]]:
        """Files main.sh (and maybe a sourced part), and the initial environment."""
        (root / "ci").mkdir(parents=True)
        part = root / "ci" / "part.sh"
        part.write_text("\n".join(self.statement() for _ in range(self.rng.randint(1, 5))) + "\n")
        lines = [self.statement() for _ in range(self.rng.randint(2, 10))]
        how = self.rng.choice(
            [
                'source "${FILE_ENV}"',
                ". ./ci/part.sh",
                'if [ -n "$FILE_ENV" ]; then source "$FILE_ENV"; fi',
                "",
            ]
            * 3
            + ["source ./ci/missing.sh"]
        )
        lines.insert(self.rng.randint(0, len(lines)), how)
        if self.rng.random() < 0.3:
            lines.insert(0, "set -o errexit")  # a failing command then ends the sourcing
        main = root / "main.sh"
        main.write_text("\n".join(lines) + "\n")
        initial = {"FILE_ENV": "./ci/part.sh"} if self.rng.random() < 0.8 else {}
        if self.rng.random() < 0.5:
            initial["I"] = self.rng.choice(["1", "a"])
        return [main], initial


def bash_oracle(
    files: list[Path], initial: dict[str, str], cwd: Path
) -> dict[str, tuple[str, str]]:
    """name -> (value, attributes) after sourcing `files` in an empty environment."""
    assert BASH is not None
    sources = "".join(f'source "{f}"; ' for f in files)
    script = f"{DUMP}; trap __dump EXIT; {sources}"
    command = ["env", "-i", *[f"{k}={v}" for k, v in initial.items()], BASH, "-c", script]
    done = subprocess.run(
        command, capture_output=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=30
    )
    items = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {items[i]: (items[i + 1], items[i + 2]) for i in range(0, len(items) - 2, 3)}
