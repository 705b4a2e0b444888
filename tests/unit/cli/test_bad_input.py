"""Hostile or broken input through the real entry point: exit 2 (or the documented outcome) with
a located message, and never a traceback. One test per row of issue 13's table it covers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from prebuild.errors import DockerError
from prebuild.pull.hook import cause
from prebuild.report import document as docs
from prebuild.report import nightly
from prebuild.report.results import ImageResult

if TYPE_CHECKING:
    from tests.unit.cli.conftest import RunMain


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One image `app` (FROM scratch, native platform pinned) in the cwd; no registry env."""
    write(tmp_path / "app" / "Dockerfile", "FROM scratch\nCOPY . /\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREBUILD_REGISTRY", raising=False)
    monkeypatch.delenv("PREBUILD_CONFIG", raising=False)
    return tmp_path


def config(repo: Path, registry: str, extra: str = "") -> Path:
    return write(
        repo / "prebuild.toml",
        f'registry = "{registry}"\n'
        '[[image]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\n' + extra,
    )


class BadRealm:
    """A registry whose every answer is a 401 naming a token realm that is not a URL."""

    def __init__(self, realm: str) -> None:
        challenge = f'Bearer realm="{realm}",service="fake"'

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["token-service", "ftp://auth.example/token", "http://auth:99999/t"])
def bad_realm(request: pytest.FixtureRequest) -> Iterator[BadRealm]:
    server = BadRealm(request.param)
    yield server
    server.close()


def test_token_realm_not_a_url_plan(repo: Path, bad_realm: BadRealm, run_main: RunMain) -> None:
    config(repo, f"{bad_realm.host}/ci")
    code, out, err = run_main(["plan"])
    assert "Traceback" not in err
    assert "unknown" in out and "is not an http(s) URL" in out


@pytest.mark.parametrize(("fallback", "outcome", "code"), [("fail", "failed", 1)])
def test_token_realm_not_a_url_pull(
    repo: Path, bad_realm: BadRealm, run_main: RunMain, fallback: str, outcome: str, code: int
) -> None:
    config(repo, f"{bad_realm.host}/ci")
    got, out, err = run_main(["pull", "app", "--fallback", fallback, "--format", "json"])
    assert "Traceback" not in err
    assert got == code
    result = json.loads(out)
    assert result["outcome"] == outcome
    assert "token realm" in result["reason"]


def test_token_realm_not_a_url_pull_cache_args(
    repo: Path, bad_realm: BadRealm, run_main: RunMain
) -> None:
    config(repo, f"{bad_realm.host}/ci")
    got, out, err = run_main(["pull", "app", "--fallback", "cache-args", "--format", "json"])
    assert (got, json.loads(out)["outcome"]) == (0, "cache-args")
    assert "Traceback" not in err


@pytest.mark.parametrize("registry", ["127.0.0.1:99999/x", "registry:0/ci", "[::1]:70000/ci"])
def test_registry_port_out_of_range(repo: Path, run_main: RunMain, registry: str) -> None:
    config(repo, registry)
    code, _, err = run_main(["validate"])
    assert code == 2
    assert err.startswith("error: prebuild.toml:1 at key 'registry': invalid registry")
    assert "not in 1-65535" in err


def test_registry_port_out_of_range_from_env(
    repo: Path, run_main: RunMain, monkeypatch: pytest.MonkeyPatch
) -> None:
    config(repo, "127.0.0.1:5000/ci")
    monkeypatch.setenv("PREBUILD_REGISTRY", "127.0.0.1:99999/x")
    code, _, err = run_main(["plan"])
    assert code == 2
    assert "env PREBUILD_REGISTRY" in err and "not in 1-65535" in err


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("x = " + "[" * 500 + "]" * 500, None),
        ("x = " + "{a=" * 500 + "}" * 500, None),
        ("[defaults.build_args." + ".".join(["a"] * 500) + "]", "defaults.build_args.a…"),
        ("[[image]]\n" + "x = " + "[" * 40 + "]" * 40, "image[0].x…"),
    ],
    ids=["arrays", "inline-tables", "dotted-keys", "under-an-image"],
)
def test_config_nested_too_deep(repo: Path, run_main: RunMain, value: str, key: str | None) -> None:
    write(repo / "prebuild.toml", f'registry = "127.0.0.1:5000/ci"\n{value}\n')
    code, _, err = run_main(["validate"])
    assert code == 2
    line = 3 if value.startswith("[[image]]") else 2
    where = f"prebuild.toml:{line}" + (f" at key '{key}'" if key else "")
    assert err == f"error: {where}: nested deeper than 32 levels (arrays, tables or dotted keys)\n"


def test_brackets_in_strings_and_comments_do_not_count(repo: Path, run_main: RunMain) -> None:
    text = 'registry = "127.0.0.1:5000/ci"  # ' + "[" * 50 + "\n"
    text += "[[image]]\nname = 'app'\ncontext = 'app'\nplatforms = ['linux/amd64']\n"
    text += "labels = { a = '" + "{" * 50 + "' }\n"
    write(repo / "prebuild.toml", text)
    code, out, err = run_main(["validate"])
    assert (code, err) == (0, "")


def test_config_fifo_is_refused_without_blocking(repo: Path) -> None:
    fifo = repo / "prebuild.toml"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "prebuild", "validate", "-c", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,  # a hang is the bug; a generous bound only stops the test from stalling
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cannot read config file: not a regular file" in proc.stderr
    assert str(fifo) in proc.stderr or "prebuild.toml" in proc.stderr


def test_thousands_of_invalid_images_are_each_reported(repo: Path, run_main: RunMain) -> None:
    tables = "".join(
        f'[[image]]\nname = "Img{i}"\ncontext = "app"\nplatforms = ["linux/amd64"]\n'
        for i in range(4000)
    )
    write(repo / "prebuild.toml", 'registry = "127.0.0.1:5000/ci"\n' + tables)
    code, _, err = run_main(["validate"])
    lines = err.splitlines()
    assert code == 2
    assert lines[0] == "error: 4000 problems in prebuild.toml:"
    assert lines[-1].startswith("prebuild.toml:15999 at key 'image 'Img3999' (image[3999]).name'")
    assert len(lines) == 4001


@pytest.fixture
def from_cycle(repo: Path) -> Path:
    write(repo / "a" / "Dockerfile", "FROM alpine:3.20\nRUN true\nFROM 127.0.0.1:5000/ci/b\n")
    write(repo / "b" / "Dockerfile", "FROM 127.0.0.1:5000/ci/a AS build\nRUN true\n")
    return write(
        repo / "prebuild.toml",
        """
        registry = "127.0.0.1:5000/ci"
        [[image]]
        name = "a"
        context = "a"
        [[image]]
        name = "b"
        context = "b"
        """,
    )


CYCLE = (
    "error: a/Dockerfile:3: images build FROM each other in a cycle: a -> b -> a "
    "(image 'a' builds FROM 'b' here)\n"
)


@pytest.mark.parametrize("args", [["validate"], ["plan", "--offline"]])
def test_from_cycle_between_dockerfiles(from_cycle: Path, run_main: RunMain, args) -> None:
    assert run_main(args) == (2, "", CYCLE)


@pytest.mark.parametrize("args", [["validate"], ["plan", "--offline"]])
def test_missing_target_stage(repo: Path, run_main: RunMain, args: list[str]) -> None:
    write(repo / "app" / "Dockerfile", "FROM alpine:3.20 AS one\nRUN true\n")
    config(repo, "127.0.0.1:5000/ci", 'target = "two"\n')
    code, out, err = run_main(args)
    assert (code, out) == (2, "")
    assert err == (
        "error: prebuild.toml:2 at key 'image 'app' (image[0]).target': "
        "target stage 'two' is not a stage of app/Dockerfile\nhint: stages: one\n"
    )


def test_unparsable_dockerfile_fails_validate(repo: Path, run_main: RunMain) -> None:
    write(repo / "app" / "Dockerfile", "RUN true\n")
    config(repo, "127.0.0.1:5000/ci")
    code, _, err = run_main(["validate"])
    assert code == 2
    assert err.startswith("error: app/Dockerfile")


def test_failed_pull_keeps_the_cause() -> None:
    error = DockerError(
        "docker pull r/app:k failed (exit 1):\n"
        "Using default tag: k\n\n"
        'Error response from daemon: Get "https://r/v2/": dial tcp: lookup r: no such host\n'
    )
    assert cause(error) == (
        "docker pull r/app:k failed (exit 1): Using default tag: k | "
        'Error response from daemon: Get "https://r/v2/": dial tcp: lookup r: no such host'
    )
    chatty = DockerError("docker pull x failed (exit 1):\n" + "\n".join(["noise " * 50] * 100))
    assert len(cause(chatty)) <= 600


def _build_report(path_args: list[str], run_main: RunMain) -> tuple[int, str]:
    code, out, err = run_main(["build", "--dry-run", *path_args])
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    ("option", "path", "reason"),
    [
        ("--report", "missing/r.json", "directory missing does not exist"),
        ("--summary", "missing/s.md", "directory missing does not exist"),
        ("--report", "/sys/prebuild-test-report.json", "Permission denied"),
        ("--summary", "/sys/prebuild-test-summary.md", "Permission denied"),
        ("--metrics", "/sys/new/dir/m.prom", "Operation not permitted"),
    ],
)
def test_unwritable_report_fails_before_building(
    repo: Path, run_main: RunMain, option: str, path: str, reason: str
) -> None:
    config(repo, "127.0.0.1:1/ci")  # unreachable: a run that got past the check would hang
    code, err = _build_report([option, path], run_main)
    assert code == 2
    assert err == f"error: {option} {path}: cannot write: {reason}\n"


def test_report_path_a_directory_is_a_usage_error(repo: Path, run_main: RunMain) -> None:
    config(repo, "127.0.0.1:1/ci")
    code, err = _build_report(["--summary", "app"], run_main)
    assert code == 2
    assert "Invalid value for '--summary': File 'app' is a directory." in err


def test_unwritable_github_env_fails_before_pulling(
    repo: Path, run_main: RunMain, monkeypatch: pytest.MonkeyPatch
) -> None:
    config(repo, "127.0.0.1:1/ci")
    monkeypatch.setenv("GITHUB_ENV", str(repo / "app"))
    code, out, err = run_main(["pull", "app", "--format", "github"])
    assert (code, out) == (2, "")
    assert err == f"error: env GITHUB_ENV {repo / 'app'}: cannot write: is a directory\n"


def test_reports_are_replaced_whole_and_summaries_appended(tmp_path: Path) -> None:
    results = [ImageResult(name="app", status="built", ref="r/app:k")]
    json_file, summary = tmp_path / "r.json", tmp_path / "s.md"
    json_file.write_text("old, longer content that must not survive " * 10)
    summary.write_text("earlier step\n")
    now = datetime.now(UTC)
    doc = docs.document(
        results, started=now, finished=now, materials={}, depends_on={"app": []}, storage={}
    )
    nightly._write(doc, nightly.Outputs(report=json_file, summary=summary), [])
    assert json.loads(json_file.read_text())["images"][0]["name"] == "app"
    assert summary.read_text().startswith("earlier step\n### prebuild\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "s.md"]  # no temp left
    assert oct(json_file.stat().st_mode & 0o777) != oct(0o600)


def test_github_env_lines_appended_in_one_write(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prebuild.pull import output
    from prebuild.pull.hook import PullResult

    env_file = tmp_path / "github_env"
    env_file.write_text("EARLIER=1\n")
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    result = PullResult(name="app", local_name="app", key="k", ref="r/app:k", outcome="pulled")
    output.github([result], {"GITHUB_ENV": str(env_file)})
    assert len(writes) == 1
    lines = env_file.read_text().splitlines()
    assert lines[0] == "EARLIER=1" and "PREBUILD_APP_OUTCOME=pulled" in lines
