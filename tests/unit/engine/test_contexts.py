"""resolve_builder: a context's own builder is selected through the context; others pass."""

from __future__ import annotations

import pytest

from prebuild.engine import contexts
from prebuild.errors import UsageError

CONTEXTS = {"default", "eng2"}


@pytest.fixture(autouse=True)
def docker_contexts(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(
        contexts, "_inspect", lambda name: {"Name": name} if name in CONTEXTS else None
    )
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/engine-one.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)


def test_a_context_builder_switches_the_context_and_drops_docker_host(monkeypatch) -> None:
    assert contexts.resolve_builder("eng2") is None
    assert contexts.os.environ["DOCKER_CONTEXT"] == "eng2"
    assert "DOCKER_HOST" not in contexts.os.environ
    assert contexts.current() == "eng2"


@pytest.mark.parametrize("builder", ["buildkit-container", "remote-arm64", "k8s", None])
def test_other_builders_pass_unchanged(builder) -> None:
    assert contexts.resolve_builder(builder) == builder
    assert contexts.os.environ["DOCKER_HOST"] == "unix:///run/engine-one.sock"


def test_the_current_context_is_left_alone() -> None:
    assert contexts.resolve_builder("default") == "default"
    assert "DOCKER_CONTEXT" not in contexts.os.environ


def test_unknown_context_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no docker context named 'nope'"):
        contexts.use_context("nope")
