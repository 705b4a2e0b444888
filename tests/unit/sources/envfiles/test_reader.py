"""The env-file reader against real bash: exact values for what it can know, unknown (with the
file:line that made it so) for what only the CI machine can decide, located errors for broken
files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from prebuild.errors import ConfigError
from prebuild.sources.envfiles.reader import read_env
from prebuild.sources.envfiles.values import Unknown

BASH = shutil.which("bash")
# Variables bash itself puts in the environment of `env`.
BASH_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}

# (id, files' texts in sourcing order, initial environment)
FIDELITY: list[tuple[str, list[str], dict[str, str]]] = [
    ("plain-and-export", ["A=1\nexport B=2\nC=three\n"], {}),
    ("shebang-set-comments", ["#!/usr/bin/env bash\nset -ex\n# c\nA=1 # trailing\nB=x#y\n"], {}),
    ("set-options", ["set -o errexit -o pipefail\nset +x\nA=1\n"], {}),
    ("single-quotes", ["A='a $B \"c\" \\\\ d'\n"], {"B": "no"}),
    ("double-quote-escapes", ['A="a\\b\\$c\\"d\\\\e\\`f"\n'], {}),
    ("adjacent-quoting", ["A=a\"b c\"'d e'f\n"], {}),
    ("unquoted-escapes", ["A=a\\ b\\\\c\\$d\\'e\n"], {}),
    ("empty-values", ["A=\nB=''\nC=\"\"\nexport D=\n"], {}),
    ("multiline-double", ['A="line1\nline2\n  line3"\n'], {}),
    ("multiline-single", ["A='line1\nline2 \\\nline3'\n"], {}),
    ("continuation-in-double", ['export A="x \\\n y \\\n"\n'], {}),
    ("continuation-unquoted", ["A=ab\\\ncd\nexport B=1 \\\n  C=2\n"], {}),
    ("comment-backslash-is-not-continuation", ["# comment \\\nA=1\n"], {}),
    ("dollar-forms", ['B=v\nA=$B-${B}x"$B"\nC=$B_x\nD=${B}_x\n'], {}),
    ("literal-dollar", ['A=$\nB="$"\nC="a$ b"\nD=a$\nE="$\'x"\n'], {}),
    ("unset-expands-empty", ["A=x${NOPE}y$NOPE\n"], {}),
    ("colon-dash", ["E=\nA=${NOPE:-d1} B=${E:-d2} C=${S:-d3}\n"], {"S": "set"}),
    ("dash-without-colon", ["E=\nA=${NOPE-d1} B=${E-d2}x\n"], {}),
    ("assign-default", ['E=\nA=${N1:=one} B=${E:=two}\nC=${N2=three}\n: "${N3:=four}"\n'], {}),
    ("alternate", ["E=\nS=s\nA=${S:+alt}${E:+no}${E+yes}${NOPE+no}\n"], {}),
    ("nested-default", ['A=${X:-${Y:-inner}}\nB="${X:-pre-${Y:-in}-post}"\n'], {}),
    ("quoted-default-word", ["A=${X:-\"a b\"}\nB=${X:-'c d'}\nC=${X:-a b}\n"], {}),
    ("single-quote-literal-in-dq", ["A=\"${X:-'lit'}\"\n"], {}),
    ("escapes-in-default", ['A=${X:-a\\}b}\nB="${X:-c\\}d}"\nC="${X:-e\\f}"\nD=${X:-g\\h}\n'], {}),
    ("braces-in-default", ['A=${X:-{a}b}\nB="${X:-{c}d}"\n'], {}),
    ("default-spans-lines", ['A="${X:-one\ntwo}"\n'], {}),
    ("sequential-assignments", ["A=1 B=$A\n"], {}),
    ("export-expands-first", ["A=0\nexport A=1 B=$A\n"], {}),
    ("export-names", ["A=1\nexport A B\nB=2\nexport C\n"], {}),
    ("export-no-split-or-glob", ["X='a  b'\nexport A=$X B=* C=f?\n"], {}),
    ("plain-no-brace-expansion", ["A={a,b}\nB=x{1..3}\n"], {}),
    ("append", ['A=a\nA+=b\nexport B+=c\nB+="d e"\n'], {"B": "init"}),
    ("semicolons", ["A=1; B=2;C=3\n"], {}),
    ("unset", ["A=1\nunset A\nexport B=2\nunset -v B\n"], {}),
    ("noop-commands", ['echo "hello $A"\ntrue\n: nothing\nA=1\n'], {}),
    ("tilde-not-expanded", ["A=a~b\nB=\"~\"\nC='~/x'\nD=x~:y\n"], {}),
    ("initial-env", ["A=${BASE:-d}/x\nB=${MISS:-d}\nBASE=over\n"], {"BASE": "/env"}),
    ("initial-unset", ["unset BASE\nA=${BASE:-gone}\n"], {"BASE": "/env"}),
    ("allexport-option", ["B=2\nset -a\nA=1\nexport C\n"], {}),
    ("no-trailing-newline", ['A=1\nB="two"'], {}),
    ("blank-lines-and-tabs", ["\n\n\tA=1\t\n   \n\t export\tB=2 \n"], {}),
    (
        "bitcoin-style",
        [
            'export CI_IMAGE_NAME_TAG="mirror.gcr.io/ubuntu:24.04"\n'
            "export CONTAINER_NAME=ci_native_asan\n"
            'export BITCOIN_CONFIG="\\\n -DWITH_ZMQ=ON \\\n -DSANITIZERS=address \\\n"\n',
            "export LC_ALL=C.UTF-8\n"
            "BASE_ROOT_DIR=${BASE_ROOT_DIR:-/ci_container_base}\n"
            "export BASE_ROOT_DIR\n"
            "export CI_IMAGE_PLATFORM=${CI_IMAGE_PLATFORM:-linux}\n"
            "export CONTAINER_NAME=${CONTAINER_NAME:-ci_unnamed}\n"
            "export MAKEJOBS=${MAKEJOBS:--j4}\n"
            'export CI_RETRY_EXE=${CI_RETRY_EXE:-"retry --"}\n',
        ],
        {},
    ),
    ("two-files-share-state", ["A=1\nset -a\n", "B=$A\nC=${A:+seen}\n"], {}),
    (
        "nested-quotes-in-dq-default",
        ['A="${X:-"q r"}"\nB="${X:-\\"s\\"}"\nC="${X:-a\'b\'c}"\n'],
        {},
    ),
    ("mixed-quotes-in-default", ["A=${X:-a\"b\"c}\nB=${X:-a'b'c}\nC=${X:-}\nD=${X:=}\n"], {}),
    ("expansion-in-dq-default", ['Y=y\nA="${X:-<$Y ${Y}>}"\nB=$Y$Y\n'], {}),
    ("export-default-with-space", ['export A=${X:-a b} B="${X:-c  d}"\n'], {}),
    ("empty-then-assignment", ["A= B=1\nC=1;\n"], {}),
    ("hash-at-value-start", ["A=#not-a-comment\nB=1 #c\n  # indented comment\nC=2\n"], {}),
    ("quote-in-single-quotes", ["A='it'\\''s'\n"], {}),
    ("side-effect-in-echo", ["echo ${X:=from-echo}\n"], {}),
    ("lazy-default-word", ["A=set\nC=${A:-${B:=x}}\nD=${N:-${E:=y}}\n"], {}),
    ("names-with-digits", ["A_1=x\n_B2=$A_1\n"], {}),
]


def _write(tmp_path: Path, texts: list[str]) -> list[Path]:
    paths = []
    for index, text in enumerate(texts):
        path = tmp_path / f"f{index}.sh"
        path.write_text(text)
        paths.append(path)
    return paths


def bash_env(files: list[Path], initial: dict[str, str], *, allexport: bool) -> dict[str, str]:
    """What real bash exports after sourcing `files` in order, from an empty (`env -i`) env."""
    assert BASH is not None
    sources = "".join(f'. "${index + 1}" >/dev/null; ' for index in range(len(files)))
    script = ("set -a; " if allexport else "") + sources + "env -0"
    assignments = [f"{name}={value}" for name, value in initial.items()]
    command = ["env", "-i", *assignments, BASH, "-c", script, "bash", *map(str, files)]
    done = subprocess.run(command, capture_output=True, check=True, cwd=files[0].parent)
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
    return {name: value for name, value in pairs if name not in BASH_OWN}


@pytest.mark.skipif(BASH is None, reason="needs bash to compare against")
@pytest.mark.parametrize(
    ("texts", "initial"), [(t, i) for _, t, i in FIDELITY], ids=[f[0] for f in FIDELITY]
)
def test_values_match_bash(tmp_path: Path, texts: list[str], initial: dict[str, str]) -> None:
    files = _write(tmp_path, texts)
    result = read_env(files, initial=initial)
    # Every variable (bash run with `set -a`, which exports each assignment) ...
    assert result.values == bash_env(files, initial, allexport=True)
    # ... and exactly the exported ones (bash as is).
    exported = {name: result.values[name] for name in result.exported}
    assert exported == bash_env(files, initial, allexport=False)


def test_lines_record_where_each_variable_was_last_set(tmp_path: Path) -> None:
    job, shared = _write(
        tmp_path,
        [
            'A=1\nB="multi\nline"\nexport C=\\\n3\nD=${D:=4}\n',
            "A=${A:-x}\n\n: ${E:=5}\nF=6; G=7\n",
        ],
    )
    result = read_env([job, shared])
    assert result.lines == {
        "A": (shared, 1),
        "B": (job, 2),
        "C": (job, 4),
        "D": (job, 6),
        "E": (shared, 3),
        "F": (shared, 4),
        "G": (shared, 4),
    }
    assert result.history["A"] == ((job, 1), (shared, 1))
    assert result.history["B"] == ((job, 2),)


def test_initial_values_have_no_line_and_are_exported(tmp_path: Path) -> None:
    (path,) = _write(tmp_path, ["A=$PREBUILD_BASE\n"])
    result = read_env([path], initial={"PREBUILD_BASE": "reg/base:1"})
    assert result.values == {"PREBUILD_BASE": "reg/base:1", "A": "reg/base:1"}
    assert "PREBUILD_BASE" not in result.lines
    assert result.exported == {"PREBUILD_BASE"}


def test_nothing_is_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (path,) = _write(
        tmp_path, [f'A=1\nB=$(touch {marker})\nC=`touch {marker}`\neval "$(touch {marker})"\n']
    )
    result = read_env([path])
    assert not marker.exists()
    assert result.everything is not None and result.everything.line == 4  # eval of unknown text


# (id, text, variable, expected value, or (line, what) of the cause that made it unknown)
CASES: list[tuple[str, str, str, object]] = [
    ("cmdsub-unused", "A=$(date)\nB=1\n", "B", "1"),
    ("cmdsub", "A=1\nB=$(date)\n", "B", (2, "command substitution")),
    ("cmdsub-in-quotes", 'A="x $(date)"\n', "A", (1, "command substitution")),
    (
        "cmdsub-nested-if",
        "A=${A:--j$(if command -v n >/dev/null; then n; else m; fi)}\nB=2\n",
        "B",
        "2",
    ),
    ("backticks", "A=1\n\nB=`date`\n", "B", (3, "backticks")),
    ("arithmetic", "X=4\nA=$((X * 2 + 1))\n", "A", "9"),
    ("arithmetic-assigns", "X=4\nA=$((X = 2))\nB=1\n", "B", (2, "arithmetic that can assign")),
    ("if-known", 'X=a\nif [ "$X" = a ]; then A=yes; else A=no; fi\n', "A", "yes"),
    ("if-dbracket", 'if [[ -z "${X}" && ${Y:-b} == b* ]]; then A=1; fi\n', "A", "1"),
    (
        "if-unknown",
        'if [ "$(uname)" = x ]; then A=1; else A=2; fi\n',
        "A",
        (1, "'if' condition is unknown"),
    ),
    ("if-unknown-same", 'if [ "$(uname)" = x ]; then A=1; else A=1; fi\n', "A", "1"),
    ("if-unknown-unrelated", 'if [ "$(uname)" = x ]; then B=1; fi\nA=2\n', "A", "2"),
    ("elif", "X=b\nif [ $X = a ]; then A=1\nelif test $X = b; then A=2\nelse A=3; fi\n", "A", "2"),
    ("and-list", 'X=1\n[ -n "$X" ] && A=set\n', "A", "set"),
    ("or-list-unknown", "command -v nproc || A=set\n", "A", (1, "condition is unknown")),
    ("case", "case $X in a) A=1;; *) A=2;; esac\n", "A", (1, "case")),
    ("for", "for x in a b; do A=$x; done\n", "A", (1, "loop")),
    ("nounset-known-set", "set -u\nA=$(date)\nB=$A\nC=1\n", "C", "1"),
    ("nounset-maybe-unset", "set -u\nread -r A\nB=$A\nC=1\n", "C", (3, "may be unbound")),
    ("for-errexit", "set -e\nB=1\nfor x in a; do A=$x; done\n", "B", (3, "loop under errexit")),
    ("while", "while read -r line; do A=$line; done\n", "A", (1, "loop")),
    ("function", "f() { A=1; }\nA=0\nf\n", "A", (3, "call of function f")),
    ("function-not-called", "f() { A=1; }\nA=0\n", "A", "0"),
    ("printf-v", "printf -v A '%s' x\n", "A", (1, "printf -v")),
    ("printf-plain", "A=1\nprintf '%s\\n' \"$A\"\n", "A", "1"),
    ("read", "read -r A B < /dev/null\n", "B", (1, "read")),
    ("eval-known", "eval 'A=1 B=2'\n", "B", "2"),
    ("eval-unknown", 'eval "$(cat x)"\nA=1\n', "A", (1, "eval of text that is not known")),
    ("declare", "declare -x A=1\ntypeset B=2\n", "B", "2"),
    ("declare-integer", "declare -i A=1+1\n", "A", (1, "declare -i")),
    ("local-top-level", "A=0\nlocal A=1\n", "A", "0"),
    ("readonly", "readonly A=1\nA=2\n", "A", (2, "assignment to readonly")),
    ("mapfile", "mapfile -t A < /dev/null\n", "A", (1, "mapfile")),
    ("cd", "cd /tmp\nA=$PWD\n", "A", (1, "cd")),
    (
        "set-and-echo",
        "set -o errexit -o nounset -o pipefail -o xtrace\necho hi\n: noop\nA=1\n",
        "A",
        "1",
    ),
    ("command-v", "command -v nproc >/dev/null 2>&1\nA=1\n", "A", "1"),
    ("array", "A=(one two)\n", "A", (1, "array")),
    ("array-reference", "B=${A[0]}\n", "B", (1, "parameter expansion operator")),
    ("special", "A=$1$?\n", "A", (1, "special parameter")),
    ("bash-own", "A=$HOME\n", "A", (1, "set by bash itself")),
    ("bash-dynamic", "RANDOM=5\nA=$RANDOM\n", "A", (1, "computed by bash")),
    ("tilde", "A=~/x\n", "A", (1, "tilde")),
    ("length", "B=abc\nA=${#B}\n", "A", "3"),
    ("indirection", "B=C\nC=x\nA=${!B}\n", "A", "x"),
    ("pattern-removal", "B=a.b\nA=${B%.b}\n", "A", (2, "parameter expansion operator")),
    (
        "unresolvable-source",
        "A=1\nsource /etc/os-release\nB=2\n",
        "B",
        (2, "outside the repository"),
    ),
    ("source-bare-name", "source setup.sh\nB=2\n", "B", (1, "searched in $PATH")),
    ("trap-debug", "trap 'A=2' DEBUG\nA=1\n", "A", (1, "trap on DEBUG")),
    ("shopt-aliases", "shopt -s expand_aliases\nA=1\n", "A", (1, "shopt")),
    ("exit", "A=1\nexit 0\nA=2\n", "A", "1"),
    ("errexit-and-list", "set -e\nfalse && true\nA=1\n", "A", "1"),
    ("errexit-condition", "set -e\nif false; then :; fi\n! true\nA=1\n", "A", "1"),
    ("errexit-stops", "set -e\nA=1\nfalse\nA=2\n", "A", "1"),
    ("external-then-source", "touch x.sh\n. ./x.sh\nA=1\n", "A", (2, "files may have changed")),
]


@pytest.mark.parametrize(
    ("text", "name", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_known_or_unknown_with_its_cause(
    tmp_path: Path, text: str, name: str, expected: object
) -> None:
    (tmp_path / "x.sh").write_text("B=from-x\n")
    (path,) = _write(tmp_path, [text])
    value = read_env([path], root=tmp_path).lookup(name)
    if isinstance(expected, tuple):
        assert isinstance(value, Unknown), value
        line, what = expected
        assert (value.cause.file, value.cause.line) == (path.name, line)
        assert what in value.cause.what
    else:
        assert value == expected
    stops = "exit" in text or "\nfalse\n" in text  # bash exits before printing
    if BASH is not None and not isinstance(expected, tuple) and not stops:
        assert bash_env([path], {}, allexport=True).get(name) == expected


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ('A=1\nB="open\nstill open\n', "unterminated double quote opened at line 2", 2),
        ("A='open\n", "unterminated single quote opened at line 1", 1),
        ("\nA=${B:-x\n", "unterminated '${' opened at line 2", 2),
        ('A="${B:-"x}"\n', "unterminated '${' opened at line 1", 1),
        ("A=1 ;;\n", "syntax error near unexpected token ';;'", 1),
        ("if true; then\nA=1\n", "'if' opened at line 1 is not closed by 'fi'", 1),
        ("A=$(echo\n", "unterminated '$(' opened at line 1", 1),
        ("A=1\nB=\0\n", "file contains a NUL byte", 2),
    ],
)
def test_syntax_errors_name_file_and_line(
    tmp_path: Path, text: str, message: str, line: int
) -> None:
    path = tmp_path / "job.sh"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_env([path])
    assert caught.value.message == f"{path}:{line}: {message}"
    assert (caught.value.file, caught.value.line) == (str(path), line)


def test_set_u_makes_unknown_variables_errors_like_bash(tmp_path: Path) -> None:
    (path,) = _write(
        tmp_path, ["A=${MISSING:-ok}${MISSING-}${MISSING:+x}\nset -u\nB=1\nC=$MISSING\n"]
    )
    if BASH is not None:
        done = subprocess.run(["env", "-i", BASH, "-c", f'. "{path}"'], capture_output=True)
        assert done.returncode != 0 and b"MISSING: unbound variable" in done.stderr
    with pytest.raises(ConfigError) as caught:
        read_env([path])
    assert caught.value.line == 4
    assert "MISSING: unbound variable" in caught.value.message
    (path,) = _write(tmp_path, ["set -u\nset +u\nA=$MISSING\n"])
    assert read_env([path]).values == {"A": ""}


def test_required_expansion_error(tmp_path: Path) -> None:
    (path,) = _write(tmp_path, ["A=${SET:?}\n\nB=${NOPE:?must name the base}\n"])
    with pytest.raises(ConfigError) as caught:
        read_env([path], initial={"SET": "1"})
    assert caught.value.message == f"{path}:3: NOPE: must name the base"


def test_missing_file_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_env([tmp_path / "ci" / "nope.sh"], root=tmp_path)
    assert caught.value.file == "ci/nope.sh"
    assert "cannot read env file" in caught.value.message


FIXTURE_CI = Path(__file__).resolve().parents[3] / "fixtures" / "envfiles_repo" / "ci" / "test"


@pytest.mark.skipif(BASH is None, reason="needs bash to compare against")
@pytest.mark.parametrize(
    "job", sorted(p.name for p in FIXTURE_CI.glob("00_setup_env_*.sh")), ids=lambda name: name
)
def test_fixture_env_files_match_bash(job: str) -> None:
    """The fixture's job files, job first then the shared defaults, as Bitcoin Core sources them."""
    files = [FIXTURE_CI / job, FIXTURE_CI / "00_setup_env.sh"]
    initial = {"PREBUILD_BASE": "127.0.0.1:5000/base/busybox:latest"}
    result = read_env(files, initial=initial)
    assert result.values == bash_env(files, initial, allexport=True)
    assert {n: result.values[n] for n in result.exported} == bash_env(
        files, initial, allexport=False
    )


def test_a_10_mb_value_is_read_exactly(tmp_path: Path) -> None:
    """Reading is linear in the file size (bench/envfiles_scale.py measures it)."""
    value = "x" * 5_000_000 + "\\$" * 100_000 + "y" * 5_000_000
    (path,) = _write(tmp_path, [f'A="{value}"\nB=${{A:+set}}\n'])
    result = read_env([path])
    assert result.values["A"] == value.replace("\\$", "$")
    assert result.values["B"] == "set"


@pytest.mark.parametrize(
    "text",
    ["[[ trap &&. 2>&1>))?<<cd $A", "[[ 2>&1 ]]trap ", "A=$((1+\n", "f() { f; }\nf\n", "${"],
)
def test_garbage_is_a_located_error_or_read_never_a_traceback(tmp_path: Path, text: str) -> None:
    """Inputs a fuzzer found (or could): a ConfigError with a location, or a result."""
    (path,) = _write(tmp_path, [text])
    try:
        read_env([path])
    except ConfigError as error:
        assert error.file == str(path) and error.line
