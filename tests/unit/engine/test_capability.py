"""What a builder can build, read from `docker buildx inspect` as buildx prints it."""

from __future__ import annotations

import pytest

from prebuild.engine import capability

# Two nodes: the engine's own (qemu for arm64 only) and an appended native s390x machine.
INSPECT = """\
Name:          multi
Driver:        docker-container
Last Activity: 2026-12-01 20:00:00 +0000 UTC

Nodes:
Name:                  multi0
Endpoint:              unix:///var/run/docker.sock
Status:                running
BuildKit version:      v0.13.1
Platforms:             linux/amd64, linux/amd64/v2, linux/arm64, linux/386
Labels:
 org.mobyproject.buildkit.worker.executor: oci

Name:                  multi1
Endpoint:              ssh://ci@s390x-host
Status:                running
Platforms:             linux/s390x*
"""


def test_every_nodes_platforms_are_read_in_order() -> None:
    assert capability.parse_inspect(INSPECT) == (
        "linux/amd64",
        "linux/amd64/v2",
        "linux/arm64",
        "linux/386",
        "linux/s390x",
    )


@pytest.mark.parametrize(
    ("wanted", "available", "ok"),
    [
        ("linux/arm64", ["linux/amd64", "linux/arm64"], True),
        ("linux/arm64/v8", ["linux/arm64"], True),
        ("linux/arm64", ["linux/arm64/v8"], True),
        ("linux/arm", ["linux/arm/v7"], True),
        ("linux/arm/v6", ["linux/arm/v7"], False),
        ("linux/s390x", ["linux/amd64", "linux/amd64/v2", "linux/arm64"], False),
        ("linux/amd64", [], False),
    ],
)
def test_can_build(wanted: str, available: list[str], ok: bool) -> None:
    assert capability.can_build(wanted, available) is ok


def test_the_hint_names_what_is_missing_and_both_remedies() -> None:
    text = capability.hint(None, ["linux/s390x"], ["linux/amd64", "linux/arm64"])
    assert text.startswith(
        "builder 'default' cannot build linux/s390x (it builds linux/amd64, linux/arm64): "
    )
    assert "--install s390x" in text and "restart the engine" in text
    assert "docker buildx create --append --name multi --platform linux/s390x ssh://HOST" in text
    assert text.endswith("(then build with --builder multi)")
    named = capability.hint("ci", ["linux/s390x"], ["linux/amd64"])
    assert "--append --name ci " in named and "then build" not in named
