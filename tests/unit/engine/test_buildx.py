"""prebuild.engine.buildx's fast paths: when they may skip the docker CLI, and that they then send
exactly what the CLI would. A fake Engine API on a unix socket stands in for dockerd."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from prebuild.engine import buildx, unixsocket
from prebuild.errors import DockerError


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    seen: list[tuple[str, str]]
    images: set[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Engine

    def address_string(self) -> str:  # unix sockets have no client address
        return "engine"

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path))
        if self.path.startswith("/images/") and self.path.endswith("/json"):
            ref = self.path.removeprefix("/images/").removesuffix("/json")
            if ref not in self.server.images:
                return self._reply(404, {"message": f"No such image: {ref}"})
            digests = ["reg.example/ci/app@sha256:" + "a" * 64]
            return self._reply(
                200, {"RepoDigests": digests, "Os": "linux", "Architecture": "arm64"}
            )
        self._reply(200, {"Os": "linux", "Arch": "arm64", "Version": "26.1.5"})

    def do_POST(self) -> None:
        self.server.seen.append(("POST", self.path))
        source = self.path.removeprefix("/images/").rsplit("/tag?", 1)[0]
        if source not in self.server.images:
            return self._reply(404, {"message": f"No such image: {source}"})
        self._reply(201, {})


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Engine]:
    path = tmp_path / "docker.sock"
    server = _Engine(str(path), _Handler)
    server.seen, server.images = [], {"reg.example/ci/app:k1"}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    yield server
    server.shutdown()
    server.server_close()


def test_tag_is_one_engine_api_request_like_the_cli_sends(engine, capsys) -> None:
    buildx.tag("reg.example/ci/app:k1", "app")
    assert engine.seen == [("POST", "/images/reg.example/ci/app:k1/tag?repo=app&tag=latest")]
    assert "$> docker tag reg.example/ci/app:k1 app" in capsys.readouterr().err


def test_tag_failure_is_a_docker_error_with_the_daemons_message(engine) -> None:
    with pytest.raises(DockerError, match="No such image: nope:1"):
        buildx.tag("nope:1", "x")


def test_the_engines_platform_comes_from_the_api(engine, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    assert buildx.native_platform(None) == "linux/arm64"
    assert engine.seen == [("GET", "/version")]


@pytest.mark.parametrize(
    ("target", "query"),
    [
        ("app", "repo=app&tag=latest"),
        ("ci/base:v1", "repo=ci%2Fbase&tag=v1"),
        ("127.0.0.1:5000/ci/app", "repo=127.0.0.1%3A5000%2Fci%2Fapp&tag=latest"),
        ("Upper", None),  # invalid for the CLI: let it say so
        ("app@sha256:" + "0" * 64, None),
    ],
)
def test_tag_query(target: str, query: str | None) -> None:
    assert unixsocket.tag_query(target) == query


def test_only_a_certain_unix_socket_skips_the_cli(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert unixsocket.engine_socket() is None
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/x/docker.sock")
    assert unixsocket.engine_socket() == "/run/x/docker.sock"
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    assert unixsocket.engine_socket() is None
    monkeypatch.delenv("DOCKER_CONTEXT")
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert unixsocket.engine_socket() is None


def test_default_builder_detection(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("BUILDX_CONFIG", raising=False)
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    assert buildx._is_default_builder(None)  # no buildx state at all
    assert not buildx._is_default_builder("ci")
    (tmp_path / "buildx").mkdir()
    current = tmp_path / "buildx" / "current"
    current.write_text(json.dumps({"Key": "unix:///var/run/docker.sock", "Name": ""}))
    assert buildx._is_default_builder(None)
    current.write_text(json.dumps({"Key": "unix:///var/run/docker.sock", "Name": "ci"}))
    assert not buildx._is_default_builder(None)  # `docker buildx use ci`
    current.write_text("{")
    assert not buildx._is_default_builder(None)  # unsure: ask buildx
    current.unlink()
    monkeypatch.setenv("BUILDX_BUILDER", "ci")
    assert not buildx._is_default_builder(None)


def test_the_engines_own_builder_is_the_docker_driver_once_the_engine_answers(
    engine, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    assert buildx.builder_driver(None) == "docker"
    assert engine.seen == [("GET", "/version")]


def test_a_local_image_at_the_registrys_digest_needs_no_pull(engine) -> None:
    ref = "reg.example/ci/app:k1"
    assert buildx.has_local(ref, "sha256:" + "a" * 64)
    assert engine.seen == [("GET", "/images/reg.example/ci/app:k1/json")]
    assert not buildx.has_local(ref, "sha256:" + "b" * 64)  # the tag moved: pull
    assert not buildx.has_local("reg.example/ci/other:k1", "sha256:" + "a" * 64)  # not local
    assert not buildx.has_local(ref, None)  # the registry named no digest: pull
    assert buildx.has_local(ref, "sha256:" + "a" * 64, platform="linux/arm64")
    assert not buildx.has_local(ref, "sha256:" + "a" * 64, platform="linux/amd64")


def test_without_the_engine_api_the_hook_pulls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert not buildx.has_local("reg.example/ci/app:k1", "sha256:" + "a" * 64)
