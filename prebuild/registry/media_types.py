"""The media types prebuild reads and writes: one list for the registry client and the S3 cache.

Both speak the same OCI image format (a registry's manifests, BuildKit's cache layout), so a
type named twice could drift apart in one of them.
"""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"  # the `{}` config of an artifact manifest
BUILDKIT_CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"
PREBUILD_REPORT = "application/vnd.dev.prebuild.report.v1+json"  # a run report in the history

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
