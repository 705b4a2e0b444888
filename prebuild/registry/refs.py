"""Image references, normalized the way docker does it.

Everything downstream (tags we push, keys we look up, base images we resolve) compares refs,
so "busybox", "docker.io/busybox" and "index.docker.io/library/busybox:latest" must all end up
as the same value. Platform strings ("linux/arm64/v8" vs an index's "arm64"+"v8") likewise.
"""

from __future__ import annotations

import ipaddress
import platform as host_platform
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

# Grammar from the distribution/reference package (regexp.go): the one definition of an image
# reference's parts. The config's checks and the engine's tag fast path build on these strings.
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAME = rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*"  # a repository path: "ci/base"
# The names prebuild's config gives images (native tables and env-file imports): NAME with
# single '.', '_' or '-' separators, the subset the config has always accepted.
_IMAGE_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
IMAGE_NAME = rf"{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
DOMAIN = rf"{HOST}(?::[0-9]+)?"  # host[:port]
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_PATH_COMPONENT = re.compile(PATH_COMPONENT)
_DOMAIN = re.compile(DOMAIN)
_TAG = re.compile(TAG)
_DIGEST = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,})")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


def validate_tag(tag: str) -> str:
    """Return `tag` or raise ValueError saying why it cannot be a tag."""
    if not _TAG.fullmatch(tag):
        raise ValueError(
            f"invalid tag {tag!r}: use up to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return tag


def validate_digest(digest: str) -> str:
    """Return `digest` or raise ValueError saying why it cannot be a content digest."""
    match = _DIGEST.fullmatch(digest)
    if not match:
        raise ValueError(f"invalid digest {digest!r}: expected ALGORITHM:HEX, e.g. sha256:<64 hex>")
    algorithm, encoded = match.groups()
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is not None and (len(encoded) != expected or encoded != encoded.lower()):
        raise ValueError(f"invalid digest {digest!r}: {algorithm} needs {expected} lowercase hex")
    return digest


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's rule: the first component is a registry only if it looks like a host."""
    first, sep, rest = name.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost" or first.lower() != first
    if not sep or not looks_like_host:
        return DOCKER_HUB, name
    return first, rest


@dataclass(frozen=True)
class ImageRef:
    """A fully-qualified image reference: REGISTRY/REPOSITORY[:TAG][@DIGEST].

    `registry` is the name users write (and docker config keys on), e.g. "docker.io";
    `api_host` is where the HTTP API lives.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = DEFAULT_TAG) -> ImageRef:
        """Parse and normalize; `default_tag` applies only when there is neither tag nor digest.

        Raises ValueError with the reason when `text` is not a valid reference.
        """
        try:
            return cls._parse(text, default_tag)
        except ValueError as exc:
            raise ValueError(f"invalid image reference {text!r}: {exc}") from None

    @classmethod
    def _parse(cls, text: str, default_tag: str | None) -> ImageRef:
        if not text:
            raise ValueError("empty")
        if "://" in text:
            raise ValueError("must not contain a scheme (write HOST/NAME, not https://HOST/NAME)")
        name, at, digest = text.partition("@")
        if at:
            validate_digest(digest)
        tag: str | None = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], name[colon + 1 :]
            validate_tag(tag)
        registry, repository = _split_domain(name)
        if not _DOMAIN.fullmatch(registry):
            raise ValueError(f"invalid registry host {registry!r}")
        if registry == "index.docker.io":
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not repository:
            raise ValueError("missing repository name")
        if repository != repository.lower():
            raise ValueError("repository name must be lowercase")
        for component in repository.split("/"):
            if not _PATH_COMPONENT.fullmatch(component):
                raise ValueError(
                    f"invalid repository component {component!r}: use lowercase letters and "
                    "digits separated by '.', '_', '__' or '-'"
                )
        if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH:
            raise ValueError(f"name longer than {MAX_NAME_LENGTH} characters")
        if tag is None and not at:
            tag = default_tag
        return cls(registry, repository, tag, digest if at else None)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """REGISTRY/REPOSITORY, the part shared by every tag of the image."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """host[:port] serving the distribution API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes in /v2/NAME/manifests/<reference>: the digest wins over the tag."""
        ref = self.digest or self.tag
        if ref is None:
            raise ValueError(f"{self} has neither a tag nor a digest")
        return ref

    @property
    def repository_ref(self) -> ImageRef:
        """The same repository without tag or digest (for tag listing, deletes, blobs)."""
        return replace(self, tag=None, digest=None)

    def with_tag(self, tag: str) -> ImageRef:
        """Point at `tag` instead; drops the digest, which pinned the old content."""
        return replace(self, tag=validate_tag(tag), digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        """Pin `digest`, keeping the tag for readability (docker's NAME:TAG@DIGEST form)."""
        return replace(self, digest=validate_digest(digest))


# -- hosts and platforms: how a ref is reached and which image of an index it means --


def is_loopback(host: str) -> bool:
    """host[:port] on this machine: served over plain HTTP like docker does."""
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_ARCH_ALIASES |= {"armv7l": "arm/v7", "armv6l": "arm/v6", "armhf": "arm/v7", "armel": "arm/v6"}


def normalize_platform(os_name: str, arch: str, variant: str = "") -> str:
    """Canonical "os/arch[/variant]", with containerd's default variants folded away."""
    arch = _ARCH_ALIASES.get(arch.lower(), arch.lower())
    arch, _, implied = arch.partition("/")
    variant = (variant or implied).lower()
    if (arch, variant) in (("arm64", "v8"), ("amd64", "v1")) or (arch == "arm" and not variant):
        variant = "v7" if arch == "arm" else ""
    return "/".join(p for p in (os_name.lower(), arch, variant) if p)


def parse_platform(text: str) -> str:
    """ "linux/arm64/v8" -> "linux/arm64"; a bare OS ("linux") means this machine's arch."""
    parts = text.strip().split("/")
    if len(parts) == 1 and parts[0]:
        parts.append(host_platform.machine())
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT]")
    return normalize_platform(*parts)


def match_platform(
    entries: list[dict[str, Any]], platform: str | None
) -> tuple[dict[str, Any] | None, list[str]]:
    """The index entry for `platform` (None: the first real image) and the platforms listed.

    Attestation manifests (platform unknown/unknown) never match.
    """
    wanted = parse_platform(platform) if platform else None
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        p = entry.get("platform") or {}
        if not isinstance(p, dict) or p.get("os", "unknown") == "unknown":
            continue
        key = normalize_platform(
            str(p.get("os")), str(p.get("architecture", "")), p.get("variant", "")
        )
        found.setdefault(key, entry)
    if wanted is None:
        return next(iter(found.values()), None), list(found)
    return found.get(wanted), list(found)
