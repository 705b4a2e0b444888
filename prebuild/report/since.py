"""`explain NAME --since REF`: the material of an earlier key, found without its checkout.

REF is a key (or its 24-hex tag) or any tag in the registry such as `latest`, whose image's
`dev.prebuild.key` label names its key. The material comes from the report history and is
checked against the key it claims (its canonical hash must be that key).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from prebuild.errors import UsageError
from prebuild.registry.client import RegistryClient
from prebuild.registry.refs import ImageRef, match_platform
from prebuild.report import history, why

KEY_LABEL = "dev.prebuild.key"
_HEX = re.compile(r"^[0-9a-f]{24}([0-9a-f]{40})?$")


@dataclass(frozen=True)
class Earlier:
    key: str
    material: dict[str, Any]
    report: str  # the history entry it was found in


def key_of_tag(client: RegistryClient, ref: ImageRef, platform: str | None) -> str | None:
    """The key label of the image a tag points at (None if the tag or the label is missing)."""
    manifest = client.get_manifest(ref)
    if manifest is None:
        return None
    if manifest.is_index:
        entries = [e for e in manifest.json.get("manifests") or [] if isinstance(e, dict)]
        entry, _ = match_platform(entries, platform)
        if entry is None:
            return None
        manifest = client.get_manifest(ref.with_digest(entry["digest"]))
        if manifest is None:
            return None
    digest = (manifest.json.get("config") or {}).get("digest")
    if not isinstance(digest, str):
        return None
    config = json.loads(client.get_blob(ref, digest))
    labels = (config.get("config") or {}).get("Labels") or {}
    key = labels.get(KEY_LABEL)
    return key if isinstance(key, str) and key else None


def find(
    name: str,
    since: str,
    *,
    repository: str,
    client: RegistryClient,
    store: history.Store,
    platform: str | None = None,
) -> Earlier:
    prefix = since.lower()
    if not _HEX.match(prefix):
        ref = ImageRef.parse(f"{repository}:{since}")
        found = key_of_tag(client, ref, platform)
        if found is None:
            raise UsageError(
                f"--since {since}: {ref} is not in the registry or carries no {KEY_LABEL} label"
            )
        prefix = found
    for entry, doc in history.newest_first(store):
        for image in doc.get("images") or []:
            key, material = image.get("key") or "", image.get("material")
            if image.get("name") != name or not key.startswith(prefix) or not material:
                continue
            if why.key_of(material) == key:  # the stored material really is that key's
                return Earlier(key=key, material=material, report=entry)
    raise UsageError(
        f"--since {since}: no report in the history ({store.where}) holds {name}'s key {prefix}",
        hint="the history keeps as many runs as [gc] keeps key tags (keep, max_age)",
    )
