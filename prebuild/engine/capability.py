"""Which platforms a builder can build, asked from buildx itself (`docker buildx inspect`).

Checked before any build starts: a platform the builder lacks would otherwise fail minutes
into the build with `exec format error`, or not at all on a builder that silently skips it.
The engine's BuildKit probes its qemu emulators once, when it starts: emulation enabled
afterwards shows only after the engine restarts, which the hint says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prebuild.engine import buildx


def builder_platforms(builder: str | None) -> tuple[str, ...]:
    """Every platform any node of `builder` (None: the current one) reports, in its order."""
    argv = ["docker", "buildx", "inspect", "--bootstrap", *([builder] if builder else [])]
    buildx.echo(argv)
    return parse_inspect(buildx._run(argv, " ".join(argv)))


def parse_inspect(text: str) -> tuple[str, ...]:
    """The `Platforms:` lines of `docker buildx inspect` output (one per node), merged."""
    found: dict[str, None] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label.strip() == "Platforms":
            for item in value.split(","):
                if item.strip():
                    found[item.strip().rstrip("*")] = None  # `*`: set by --platform at create
    return tuple(found)


def _parts(platform: str) -> tuple[str, str, str]:
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    if arch == "arm64" and variant == "v8":  # the same platform, spelled two ways
        variant = ""
    return os_name, arch, variant


def can_build(wanted: str, available: Iterable[str]) -> bool:
    """`linux/arm64` is met by `linux/arm64`; a platform without a variant by any variant of
    its architecture (`linux/arm` by `linux/arm/v7`); with a variant only by that variant."""
    os_name, arch, variant = _parts(wanted)
    for have in available:
        h_os, h_arch, h_variant = _parts(have)
        if (h_os, h_arch) == (os_name, arch) and (not variant or variant == h_variant):
            return True
    return False


def missing(wanted: Sequence[str], available: Sequence[str]) -> list[str]:
    return [p for p in wanted if not can_build(p, available)]


def hint(builder: str | None, lacking: Sequence[str], available: Sequence[str]) -> str:
    """One line: what is missing, what the builder has, and the two ways to get it."""
    arches = ",".join(_parts(p)[1] for p in lacking)
    # the engine's own builder takes no extra nodes: a named builder does
    name = builder or "multi"
    native = (
        f"docker buildx create --append --name {name} --platform {','.join(lacking)} ssh://HOST"
    )
    return (
        f"builder '{builder or 'default'}' cannot build {', '.join(lacking)} (it builds "
        f"{', '.join(available) or 'nothing'}): enable qemu emulation on the build host "
        f"(Debian: apt-get install qemu-user-static binfmt-support; or "
        f"docker run --privileged --rm tonistiigi/binfmt --install {arches}) and restart the "
        f"engine, or append a native node: {native}"
        + ("" if builder else f" (then build with --builder {name})")
    )
