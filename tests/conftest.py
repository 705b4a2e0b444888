"""Isolation for every test: no real home, docker config, AWS credentials or registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_LEAKY_PREFIXES = ("PREBUILD_", "GITHUB_", "GITLAB_", "CI_MERGE_REQUEST", "AWS_")


@pytest.fixture(autouse=True)
def isolated_environment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch
) -> None:
    """Unit tests get an empty HOME, DOCKER_CONFIG and fake AWS credentials; integration
    tests get the local stack's environment (set by their own conftest) on top."""
    if request.node.get_closest_marker("integration"):
        return
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
