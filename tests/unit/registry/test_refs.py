"""Reference normalization must match docker's, or we would look up the wrong tags."""

from __future__ import annotations

import pytest

from prebuild.registry.refs import ImageRef, is_loopback, match_platform, parse_platform

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("library/busybox", "docker.io", "library/busybox", "latest", None),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("someone/tool:v1", "docker.io", "someone/tool", "v1", None),
        ("127.0.0.1:5000/seed/busybox:stable", "127.0.0.1:5000", "seed/busybox", "stable", None),
        ("localhost/x", "localhost", "x", "latest", None),
        ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest", None),
        ("ghcr.io/o/r@" + DIGEST, "ghcr.io", "o/r", None, DIGEST),
        ("r:tag@" + DIGEST, "docker.io", "library/r", "tag", DIGEST),
        ("[::1]:5000/ci/img:k-123", "[::1]:5000", "ci/img", "k-123", None),
        ("Registry/img", "Registry", "img", "latest", None),  # uppercase first part = host
        ("ghcr.io/o/a_b__c-d--e.f", "ghcr.io", "o/a_b__c-d--e.f", "latest", None),
    ],
)
def test_parse_normalizes_like_docker(text, registry, repository, tag, digest):
    ref = ImageRef.parse(text)
    assert ref == ImageRef(registry, repository, tag, digest)
    assert ImageRef.parse(str(ref)) == ref


def test_str_is_canonical():
    assert str(ImageRef.parse("busybox")) == "docker.io/library/busybox:latest"
    text = "127.0.0.1:5000/seed/busybox:stable@" + DIGEST
    assert str(ImageRef.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("https://ghcr.io/o/r", "scheme"),
        ("ghcr.io/O/r", "lowercase"),
        ("Busybox", "lowercase"),
        ("ghcr.io/o/r:", "invalid tag"),
        ("ghcr.io/o/r:-x", "invalid tag"),
        ("ghcr.io/o/r:" + "t" * 129, "invalid tag"),
        ("ghcr.io/o/r@sha256:abc", "invalid digest"),
        ("ghcr.io/o/r@sha256:" + "A" * 64, "lowercase hex"),
        ("ghcr.io/o/r@" + DIGEST + "@" + DIGEST, "invalid digest"),
        ("ghcr.io/o//r", "invalid repository component"),
        ("ghcr.io/o/-r", "invalid repository component"),
        ("ghcr.io/", "missing repository"),
        ("bad_host.io/o/r", "invalid registry host"),
        ("ghcr.io/" + "a/" * 130 + "b", "longer than 255"),
        ("has space", "invalid repository component"),
    ],
)
def test_invalid_refs_say_why(text, reason):
    with pytest.raises(ValueError, match="invalid image reference") as info:
        ImageRef.parse(text)
    assert reason in str(info.value)


def test_helpers():
    ref = ImageRef.parse("127.0.0.1:5000/ci/app:old@" + DIGEST)
    assert ref.with_tag("new") == ImageRef("127.0.0.1:5000", "ci/app", "new", None)
    other = "sha256:" + "b" * 64
    assert ref.with_tag("x").with_digest(other).digest == other
    assert ref.with_tag("x").with_digest(other).tag == "x"
    assert ref.repository_ref == ImageRef("127.0.0.1:5000", "ci/app", None, None)
    assert str(ref.repository_ref) == "127.0.0.1:5000/ci/app" == ref.name
    assert ref.reference == DIGEST
    assert ref.with_tag("x").reference == "x"
    with pytest.raises(ValueError):
        _ = ref.repository_ref.reference
    with pytest.raises(ValueError, match="invalid tag"):
        ref.with_tag("bad tag")
    with pytest.raises(ValueError, match="invalid digest"):
        ref.with_digest("md5:zz")
    assert ImageRef.parse("busybox").api_host == "registry-1.docker.io"
    assert ImageRef.parse("ghcr.io/o/r").api_host == "ghcr.io"
    no_default = ImageRef.parse("ghcr.io/o/r", default_tag=None)
    assert no_default.tag is None
    assert ImageRef.parse(str(no_default), default_tag=None) == no_default


def test_refs_are_hashable_values():
    assert len({ImageRef.parse("busybox"), ImageRef.parse("docker.io/library/busybox")}) == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_platforms_normalize_default_variants(monkeypatch):
    assert parse_platform("linux/arm64/v8") == "linux/arm64"
    assert parse_platform("linux/arm") == "linux/arm/v7"
    assert parse_platform("linux/x86_64") == "linux/amd64"
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert parse_platform("linux") == "linux/arm64"
    with pytest.raises(ValueError, match="OS/ARCH"):
        parse_platform("linux/amd64/v1/x")


def test_match_platform_skips_attestations():
    entries = [
        {"digest": "a", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "c", "platform": {"os": "unknown", "architecture": "unknown"}},
    ]
    assert match_platform(entries, "linux/arm64")[0]["digest"] == "b"
    assert match_platform(entries, None)[0]["digest"] == "a"
    entry, available = match_platform(entries, "linux/s390x")
    assert entry is None
    assert available == ["linux/amd64", "linux/arm64"]
