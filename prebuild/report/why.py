"""Why an image rebuilt: the difference between two keys' material, in words a maintainer reads.

A key is the sha256 of its canonical material (prebuild.key.material), and every pushed image
carries the key as its `dev.prebuild.key` label. The material itself is kept in the nightly
report history (prebuild.report.history), so an old key can be explained without the checkout
that made it: hashing the stored material again gives the key back, which proves it is that
key's material.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from prebuild.key.material import KeyMaterial

Doc = Mapping[str, Any]
FIRST_BUILD = "first build: no earlier key of this image in the report history"


def material_doc(material: KeyMaterial) -> dict[str, Any]:
    """The material as the JSON object whose canonical bytes hash to the key."""
    doc: dict[str, Any] = json.loads(material.canonical())
    return doc


def key_of(doc: Doc) -> str:
    """The key a stored material document hashes to (what it claims to be is not trusted)."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def differences(old: Doc, new: Doc) -> list[str]:
    """Every difference between two materials, one line each: files, args, bases, the rest."""
    lines: list[str] = []
    if old.get("version") != new.get("version"):
        lines.append(f"key format changed (version {old.get('version')} -> {new.get('version')})")
    old_df, new_df = old.get("dockerfile") or {}, new.get("dockerfile") or {}
    if old_df.get("path") != new_df.get("path"):
        lines.append(f"Dockerfile is now {new_df.get('path')} (was {old_df.get('path')})")
    elif old_df.get("digest") != new_df.get("digest"):
        lines.append(f"{new_df.get('path')} changed")
    lines += _files(old, new)
    if old.get("context_mode") != new.get("context_mode"):
        lines.append(f"context mode {old.get('context_mode')} -> {new.get('context_mode')}")
    if old.get("target") != new.get("target"):
        lines.append(f"target {old.get('target') or '(last stage)'} -> "
                     f"{new.get('target') or '(last stage)'}")  # fmt: skip
    for platform in sorted(set(new.get("platforms") or ()) - set(old.get("platforms") or ())):
        lines.append(f"platform {platform} added")
    for platform in sorted(set(old.get("platforms") or ()) - set(new.get("platforms") or ())):
        lines.append(f"platform {platform} removed")
    lines += _mapping("build arg", old.get("build_args") or {}, new.get("build_args") or {})
    lines += _mapping("label", old.get("labels") or {}, new.get("labels") or {})
    lines += _bases(old.get("bases") or [], new.get("bases") or [])
    return lines


def _files(old: Doc, new: Doc) -> list[str]:
    def table(doc: Doc) -> dict[str, tuple[bool, str]]:
        rows = [*(doc.get("inputs") or []), *(doc.get("extra_inputs") or [])]
        return {str(path): (bool(executable), str(digest)) for path, executable, digest in rows}

    before, after = table(old), table(new)
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            lines.append(f"{path} added")
        elif path not in after:
            lines.append(f"{path} removed")
        elif before[path][1] != after[path][1]:
            lines.append(f"{path} changed")
        elif before[path][0] != after[path][0]:
            lines.append(f"{path} mode changed ({'+x' if after[path][0] else '-x'})")
    return lines


def _mapping(kind: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            lines.append(f"{kind} {name}={new[name]} added")
        elif name not in new:
            lines.append(f"{kind} {name} removed (was {old[name]})")
        elif old[name] != new[name]:
            lines.append(f"{kind} {name}: {old[name]} -> {new[name]}")
    return lines


def _bases(old: list[Doc], new: list[Doc]) -> list[str]:
    before = {str(b.get("ref")): b for b in old}
    after = {str(b.get("ref")): b for b in new}
    lines = []
    for ref in sorted(before.keys() | after.keys()):
        if ref not in before:
            lines.append(f"base {ref} added")
        elif ref not in after:
            lines.append(f"base {ref} removed")
        elif (sibling := after[ref].get("sibling")) and before[ref].get("key") != after[ref].get(
            "key"
        ):
            lines.append(f"base image {sibling} rebuilt")
        elif not sibling and before[ref].get("digest") != after[ref].get("digest"):
            was, now = _digest(before[ref]), _digest(after[ref])
            lines.append(f"base {ref} moved to {now} (was {was})")
    return lines


def _digest(base: Doc) -> str:
    """`linux/amd64=sha256:...` per platform; a single platform shows the bare digest."""
    text = str(base.get("digest") or "(by reference)")
    parts = text.split(",")
    return parts[0].split("=", 1)[-1] if len(parts) == 1 else text


def reasons(
    old: Doc | None, new: Doc | None, *, status: str = "missing", detail: str = ""
) -> list[str]:
    """Why the image was (re)built, for the report: differences, else why the same key rebuilt."""
    if new is None:
        return [detail] if detail else []
    if old is None:
        return [FIRST_BUILD]
    if changed := differences(old, new):
        return changed
    if status == "stale":
        return [f"refresh age passed ({detail})" if detail else "refresh age passed"]
    if status == "present":
        return ["--force"]
    return ["same key as before, but its tag was not in the registry"]
