"""podman: plain HTTP only where allowed, the fallback's build line, buildah's step counts;
local.choose: the engine a runner pulls into."""

from __future__ import annotations

from pathlib import Path

import pytest

from prebuild.engine import local, podman
from prebuild.engine.buildx import BuildRequest
from prebuild.errors import UsageError


@pytest.mark.parametrize(
    ("ref", "verify"),
    [
        ("127.0.0.1:5000/p/app:k", False),
        ("localhost:5000/p/app:k", False),
        ("[::1]:5000/p/app:k", False),
        ("registry.lan:5000/p/app:k", False),  # listed as insecure
        ("ghcr.io/o/app:k", True),
        ("127.0.0.1.evil.example/p/app:k", True),
        ("app", True),
    ],
)
def test_tls_verify_is_off_only_for_loopback_and_listed(ref: str, verify: bool) -> None:
    assert podman.tls_verify(ref, ["http://registry.lan:5000/"]) is verify


def test_build_argv_leaves_out_buildkit_cache_and_keeps_the_pins() -> None:
    request = BuildRequest(
        context=Path("ctx"),
        dockerfile=Path("ctx/Dockerfile"),
        tags=("app",),
        target="final",
        build_args={"V": "1"},
        build_contexts={"base": "docker-image://127.0.0.1:5000/p/base:k"},
        platforms=("linux/amd64",),
        cache_from=({"type": "registry", "ref": "127.0.0.1:5000/p/app:buildcache"},),
        load=True,
    )
    argv = podman.build_argv(request, verify=False)
    assert argv == [
        "podman", "build", "--tls-verify=false", "--file", "ctx/Dockerfile",
        "--target", "final", "--build-arg", "V=1",
        "--build-context", "base=docker-image://127.0.0.1:5000/p/base:k",
        "--platform", "linux/amd64", "--tag", "app", "ctx",
    ]  # fmt: skip
    assert not any("cache" in arg for arg in argv)


def test_count_steps_reads_buildah_output_with_stage_prefixes() -> None:
    lines = [
        "[1/2] STEP 1/3: FROM 127.0.0.1:5000/seed/busybox:stable AS builder",
        "[1/2] STEP 2/3: COPY src/ /src/",
        "--> Using cache 8c1f",
        "--> 8c1f",
        "[1/2] STEP 3/3: RUN make",
        "--> 2ff5",
        "[2/2] STEP 1/2: FROM 127.0.0.1:5000/seed/busybox:stable",
        "[2/2] STEP 2/2: COPY --from=builder /out /out",
        "--> 3a00",
    ]
    assert podman.count_steps(lines) == podman.Steps(cached=1, total=3)


def test_choose_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"docker", "podman"}
    monkeypatch.setattr(local.shutil, "which", lambda name: name if name in installed else None)
    assert local.choose(None, {}) == "docker"
    assert local.choose(None, {"PREBUILD_ENGINE": "podman"}) == "podman"
    assert local.choose("docker", {"PREBUILD_ENGINE": "podman"}) == "docker"
    installed.discard("docker")
    assert local.choose(None, {}) == "podman"  # only podman installed
    with pytest.raises(UsageError, match="unknown engine 'buildah'"):
        local.choose(None, {"PREBUILD_ENGINE": "buildah"})
