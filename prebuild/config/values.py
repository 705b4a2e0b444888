"""The config's value checks as plain functions: no pydantic, so a simple config can be
validated without importing it (config_fast) and both paths apply exactly the same rules.

Each check returns its value or raises ValueError with the message users see.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from prebuild.durations import parse_duration
from prebuild.registry import refs

KNOWN_PLATFORMS: tuple[str, ...] = (
    "linux",  # the builder's native architecture
    "linux/amd64",
    "linux/amd64/v2",
    "linux/amd64/v3",
    "linux/amd64/v4",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v5",
    "linux/arm/v6",
    "linux/arm/v7",
    "linux/riscv64",
    "linux/ppc64le",
    "linux/s390x",
    "linux/386",
    "linux/mips64le",
    "linux/loong64",
)
TEMPLATE_FIELDS = ("registry", "name")

_IMAGE_NAME = re.compile(refs.IMAGE_NAME)
_HOST_PORT = re.compile(refs.DOMAIN)
_REGISTRY = re.compile(rf"{refs.DOMAIN}(?:/{refs.PATH_COMPONENT})*")
PLATFORM_SHAPE = r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?"  # os/arch[/variant], before lookup
_PLATFORM_SHAPE = re.compile(PLATFORM_SHAPE)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'X'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def image_name(value: str) -> str:
    if not _IMAGE_NAME.fullmatch(value):
        raise ValueError(
            f"invalid image name {value!r}: use lowercase path components "
            "[a-z0-9]+ joined by '.', '_' or '-', separated by '/' (e.g. 'ci/base')"
        )
    return value


def platform(value: str) -> str:
    if value in KNOWN_PLATFORMS:
        return value
    shape = "" if _PLATFORM_SHAPE.fullmatch(value) else " (expected os/arch[/variant])"
    hint = did_you_mean(value, KNOWN_PLATFORMS) or f"; known: {', '.join(KNOWN_PLATFORMS)}"
    raise ValueError(f"unknown platform {value!r}{shape}{hint}")


def unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


def registry(value: str) -> str:
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise ValueError(f"invalid registry {value!r}: drop the scheme '{scheme}://'")
    if "@" in value:
        raise ValueError(f"invalid registry {value!r}: a registry prefix has no digest")
    last = value.rsplit("/", 1)[-1]
    if "/" in value and ":" in last:
        raise ValueError(
            f"invalid registry {value!r}: a registry prefix has no tag "
            "(images are pushed as REGISTRY/NAME:KEY)"
        )
    if not _REGISTRY.fullmatch(value):
        raise ValueError(
            f"invalid registry {value!r}: expected host[:port][/path] with a lowercase path, "
            "e.g. 'ghcr.io/org/ci' or '127.0.0.1:5000/ci'"
        )
    _check_port(value.split("/", 1)[0], value)
    return value


def _check_port(host: str, value: str) -> None:
    """A port is 1-65535: the regex only bounds its digits, and urllib3 fails late on 99999."""
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"invalid registry {value!r}: port {port} is not in 1-65535")


def host_port(value: str) -> str:
    if not _HOST_PORT.fullmatch(value):
        raise ValueError(
            f"invalid registry host {value!r}: expected host[:port], no scheme or path"
        )
    _check_port(value, value)
    return value


tag = refs.validate_tag  # one definition of a docker tag, shared with image references


def template(value: str) -> str:
    for field in _PLACEHOLDER.findall(value):
        if field not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder '{{{field}}}' in {value!r}; "
                f"available: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
    return value


def relative_input(value: str) -> str:
    if not value or value.startswith("/"):
        raise ValueError(f"invalid input {value!r}: use a path or glob relative to the repo root")
    return value


def duration_text(value: str) -> str:
    parse_duration(value)
    return value


def stringify(value: Any) -> Any:
    """Build args and labels become strings; TOML `A = 1` and `A = true` are accepted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value
