"""Push a small OCI artifact (one JSON blob) to a registry: the report history's storage.

Monolithic blob uploads (POST, then PUT with the digest) and an OCI image manifest whose
config is the OCI empty descriptor and whose `artifactType` names what it holds (the OCI 1.1
artifact guidance; registries that predate it, such as distribution 2.8, store it as a plain
image manifest). Uses the client's request path so auth, retries and the deadline are shared.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode, urljoin

from prebuild.registry.budget import Call as _Call
from prebuild.registry.client import RegistryClient
from prebuild.registry.media_types import OCI_EMPTY, OCI_MANIFEST
from prebuild.registry.refs import ImageRef

EMPTY_CONFIG = b"{}"


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def push_blob(client: RegistryClient, repo: ImageRef, data: bytes, call: _Call) -> str:
    """Upload `data` unless the registry has it already; returns its digest."""
    digest = _digest(data)
    head = client._request(call, "HEAD", repo, f"blobs/{digest}", None)
    if head.status_code == 200:
        return digest
    start = client._request(call, "POST", repo, "blobs/uploads/", None, b"")
    client._expect(start, repo, 202)
    location = urljoin(start.url, start.headers.get("Location", ""))
    joiner = "&" if "?" in location else "?"
    put = client._request(
        call,
        "PUT",
        repo,
        f"{location}{joiner}{urlencode({'digest': digest})}",
        None,
        data,
        "application/octet-stream",
    )
    client._expect(put, repo, 201)
    return digest


def push_json_artifact(
    client: RegistryClient,
    ref: ImageRef,
    payload: bytes,
    *,
    media_type: str,
    annotations: dict[str, str] | None = None,
) -> str:
    """Push `payload` as a one-layer artifact tagged `ref`; returns the manifest digest."""
    call = _Call(client.deadline)
    repo = ref.repository_ref
    layer = push_blob(client, repo, payload, call)
    config = push_blob(client, repo, EMPTY_CONFIG, call)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": media_type,
        "config": {"mediaType": OCI_EMPTY, "digest": config, "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": media_type, "digest": layer, "size": len(payload)}],
        "annotations": annotations or {},
    }
    raw = json.dumps(manifest, sort_keys=True).encode()
    resp = client._request(call, "PUT", ref, f"manifests/{ref.reference}", None, raw, OCI_MANIFEST)
    client._expect(resp, ref, 201)
    return _digest(raw)
