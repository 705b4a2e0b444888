"""Pure conversions between BuildKit's `type=local` cache (OCI layout) and its `type=s3` layout.

Why: the default `docker` buildx driver cannot export `type=s3`, so backend `s3-sync` exports
`type=local` and uploads it in exactly the layout BuildKit's own s3 cache uses; the bucket stays
readable by `--cache-from type=s3` on a capable builder, and vice versa.

Verified against moby/buildkit sources:
- cache/remotecache/s3/s3.go: blob key = prefix + "blobs/" + digest, manifest key = prefix +
  "manifests/" + name (prefix concatenated verbatim; ";" separates names). Finalize uploads the
  blobs, THEN writes json.Marshal(CacheConfig) with each layer's annotations set from its
  descriptor: diffID <- "containerd.io/uncompressed" (required), size, mediaType,
  createdAt <- "buildkit/createdat" (as UTC). Its importer requires annotations.diffID.
- cache/remotecache/v1/spec.go: JSON names layers[]{blob, parent, annotations{mediaType, diffID,
  size, createdAt}}, records[]{digest, layers[]{layer, createdAt}, chains, inputs[][]{selector,
  link}}; parent/size/mediaType are omitempty, a time.Time never is.
- cache/remotecache/v1/utils.go: a root layer has parent -1 ("parent" is absent only for 0).
- cache/remotecache/export.go + local/local.go: the local exporter writes the cacheconfig WITHOUT
  layer annotations as the config of an OCI image manifest (image-manifest=true, default) or as
  the cacheconfig entry of an index (image-manifest=false); layer descriptors carry the two
  annotations. cache/remotecache/import.go reads layer descriptors from that manifest.
- client/ociindex/ociindex.go: index.json names the manifest by "org.opencontainers.image.ref.name"
  (tag, default "latest") or "io.containerd.image.name"; oci-layout {"imageLayoutVersion":"1.0.0"}.

The shared vocabulary (digests, S3 keys, error types) lives in prebuild.cache.s3.format, the
media types in prebuild.registry.media_types; both are re-exported here for callers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prebuild.cache.s3.format import (
    ANNOTATION_CREATED_AT,
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    BLOBS_PREFIX,
    DEFAULT_TAG,
    GO_ZERO_TIME,
    LABEL_UNCOMPRESSED,
    MANIFESTS_PREFIX,
    OCI_LAYOUT,
    BlobRef,
    CacheLayoutError,
    S3CacheError,
    blob_key,
    blob_relpath,
    blobs_prefix,
    check_digest,
    digest_of,
    encode_json,
    go_utc_time,
    is_digest,
    manifest_key,
    manifest_names,
    manifests_prefix,
)
from prebuild.registry.media_types import BUILDKIT_CACHE_CONFIG as CACHE_CONFIG_MEDIA_TYPE
from prebuild.registry.media_types import OCI_INDEX, OCI_MANIFEST

__all__ = [
    "ANNOTATION_CREATED_AT",
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "BLOBS_PREFIX",
    "BlobRef",
    "CACHE_CONFIG_MEDIA_TYPE",
    "CacheLayoutError",
    "DEFAULT_TAG",
    "GO_ZERO_TIME",
    "LABEL_UNCOMPRESSED",
    "MANIFESTS_PREFIX",
    "OCI_INDEX",
    "OCI_LAYOUT",
    "OCI_MANIFEST",
    "S3CacheError",
    "Writer",
    "blob_key",
    "blob_relpath",
    "blobs_prefix",
    "check_digest",
    "digest_of",
    "encode_json",
    "go_utc_time",
    "is_digest",
    "layer_blobs",
    "local_layout_to_s3_manifest",
    "manifest_key",
    "manifest_names",
    "manifests_prefix",
    "parse_s3_manifest",
    "referenced_blobs",
    "s3_manifest_to_local_layout",
]

Writer = Callable[[str, bytes], None]
"""Writes `data` at a layout-relative path ("index.json", "blobs/sha256/<hex>")."""


# ---------------------------------------------------------------- local OCI layout -> s3 manifest


def local_layout_to_s3_manifest(
    layout_dir: Path, *, tag: str = DEFAULT_TAG
) -> tuple[dict[str, Any], list[BlobRef]]:
    """The s3 manifest BuildKit's s3 exporter would write for this cache, and the blobs it names."""
    root = Path(layout_dir)
    index = _load_json((root / "index.json"), "index.json")
    manifest = _read_json_blob(root, _select_manifest(index, tag), "cache manifest")
    config_desc, layer_descs = _split_manifest(manifest)
    config = _read_json_blob(root, config_desc, "cache config")
    if not isinstance(config, dict) or not isinstance(config.get("layers", []), list):
        raise CacheLayoutError("cache config is not a BuildKit CacheConfig object")
    by_digest = {d["digest"]: d for d in layer_descs}
    layers: list[dict[str, Any]] = []
    blobs: dict[str, BlobRef] = {}
    for i, layer in enumerate(config.get("layers") or []):
        if not isinstance(layer, dict):
            raise CacheLayoutError(f"cache config layer {i} is not an object")
        blob = check_digest(layer.get("blob"), f"cache config layer {i}")
        desc = by_digest.get(blob)
        if desc is None:
            raise CacheLayoutError(f"missing blob {blob}: not in the cache manifest")
        annotations = desc.get("annotations") or {}
        diff_id = annotations.get(LABEL_UNCOMPRESSED)
        if not is_digest(diff_id):
            raise CacheLayoutError(f"blob {blob}: descriptor without uncompressed annotation")
        created = annotations.get(ANNOTATION_CREATED_AT)
        converted = {k: v for k, v in layer.items() if k != "annotations"}
        converted["annotations"] = _layer_annotations(
            desc["mediaType"], diff_id, desc["size"], go_utc_time(created) if created else None
        )
        layers.append(converted)
        if blob not in blobs:
            path = root / blob_relpath(blob)
            if not path.is_file() or path.stat().st_size != desc["size"]:
                raise CacheLayoutError(f"blob {blob} is missing from {root} or has the wrong size")
            blobs[blob] = BlobRef(blob, desc["size"], desc["mediaType"])
    return {**config, "layers": layers}, list(blobs.values())


def _layer_annotations(
    media_type: str, diff_id: str, size: int, created_at: str | None
) -> dict[str, Any]:
    """spec.go LayerAnnotations in field order; omitempty fields dropped like Go does."""
    out: dict[str, Any] = {}
    if media_type:
        out["mediaType"] = media_type
    out["diffID"] = diff_id
    if size:
        out["size"] = size
    out["createdAt"] = created_at or GO_ZERO_TIME
    return out


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise CacheLayoutError(f"{what} not found in the cache layout ({path})") from exc
    except (OSError, ValueError) as exc:
        raise CacheLayoutError(f"{what} is unreadable: {exc}") from exc


def _check_descriptor(desc: object, what: str) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise CacheLayoutError(f"{what}: descriptor is not an object")
    check_digest(desc.get("digest"), what)
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise CacheLayoutError(f"{what}: invalid size {size!r}")
    if not isinstance(desc.get("mediaType", ""), str):
        raise CacheLayoutError(f"{what}: invalid mediaType")
    return {**desc, "mediaType": desc.get("mediaType", "")}


def _select_manifest(index: object, tag: str) -> dict[str, Any]:
    """ociindex.Get: io.containerd.image.name first, then org.opencontainers.image.ref.name."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise CacheLayoutError("index.json lists no manifest")
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        for desc in manifests:
            if isinstance(desc, dict) and (desc.get("annotations") or {}).get(key) == tag:
                return _check_descriptor(desc, "index.json manifest")
    if len(manifests) == 1:
        return _check_descriptor(manifests[0], "index.json manifest")
    raise CacheLayoutError(f"index.json has no manifest tagged {tag!r}")


def _read_json_blob(root: Path, desc: dict[str, Any], what: str) -> Any:
    path = root / blob_relpath(desc["digest"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CacheLayoutError(f"{what} blob {desc['digest']} is unreadable: {exc}") from exc
    algo = desc["digest"].split(":", 1)[0]
    if len(data) != desc["size"] or digest_of(data, algo) != desc["digest"]:
        raise CacheLayoutError(f"{what} blob {desc['digest']} does not match its descriptor")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise CacheLayoutError(f"{what} blob {desc['digest']} is not JSON: {exc}") from exc


def _split_manifest(manifest: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(cacheconfig descriptor, layer descriptors) from an image manifest or an index."""
    if not isinstance(manifest, dict):
        raise CacheLayoutError("cache manifest is not an object")
    if isinstance(manifest.get("manifests"), list):  # index / manifest list (image-manifest=false)
        descs = [_check_descriptor(d, "cache manifest entry") for d in manifest["manifests"]]
        configs = [d for d in descs if d["mediaType"] == CACHE_CONFIG_MEDIA_TYPE]
        layers = [d for d in descs if d["mediaType"] != CACHE_CONFIG_MEDIA_TYPE]
        if len(configs) != 1:
            raise CacheLayoutError("cache index does not hold exactly one cache config")
        return configs[0], layers
    config = _check_descriptor(manifest.get("config"), "cache manifest config")
    if config["mediaType"] != CACHE_CONFIG_MEDIA_TYPE:
        raise CacheLayoutError(f"manifest config is {config['mediaType']!r}, not a cache config")
    raw_layers = manifest.get("layers") or []
    if not isinstance(raw_layers, list):
        raise CacheLayoutError("cache manifest layers is not a list")
    return config, [_check_descriptor(d, "cache manifest layer") for d in raw_layers]


# ---------------------------------------------------------------- s3 manifest -> local OCI layout


def parse_s3_manifest(manifest_json: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Validate an s3 cache manifest far enough that BuildKit (and gc) can rely on it."""
    if isinstance(manifest_json, bytes | bytearray | str):
        try:
            obj = json.loads(manifest_json)
        except ValueError as exc:
            raise CacheLayoutError(f"cache manifest is not JSON: {exc}") from exc
    else:
        obj = dict(manifest_json)
    if not isinstance(obj, dict):
        raise CacheLayoutError("cache manifest is not a JSON object")
    layers, records = _list_at(obj, "layers"), _list_at(obj, "records")
    for i, layer in enumerate(layers):
        what = f"cache manifest layer {i}"
        if not isinstance(layer, dict):
            raise CacheLayoutError(f"{what} is not an object")
        check_digest(layer.get("blob"), what)
        _check_index(layer.get("parent", 0), -1, len(layers), f"{what} parent")
        ann = layer.get("annotations")
        if not isinstance(ann, dict):  # s3.go importer: "cache layer with missing annotations"
            raise CacheLayoutError(f"{what} has no annotations")
        check_digest(ann.get("diffID"), f"{what} diffID")
        _check_index(ann.get("size", 0), 0, None, f"{what} size")
        if not isinstance(ann.get("mediaType", ""), str):
            raise CacheLayoutError(f"{what} mediaType is not a string")
        if "createdAt" in ann:
            go_utc_time(ann["createdAt"])
    for i, rec in enumerate(records):
        for res in _list_at(rec, "layers"):
            _check_index(_field(res, "layer"), 0, len(layers), f"record {i} result layer")
        for chain in _list_at(rec, "chains"):
            for idx in _list_at(chain, "layers"):
                _check_index(idx, 0, len(layers), f"record {i} chain layer")
        for inputs in _list_at(rec, "inputs"):
            for inp in inputs if isinstance(inputs, list) else [None]:
                _check_index(_field(inp, "link"), 0, len(records), f"record {i} input link")
    return obj


def _list_at(obj: object, key: str) -> list[Any]:
    """obj[key] as a list; absent or null is empty, like Go's json.Unmarshal."""
    value = _field(obj, key, None)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CacheLayoutError(f"cache manifest: {key!r} is not a list")
    return value


def _field(obj: object, key: str, default: object = 0) -> Any:
    if not isinstance(obj, dict):
        raise CacheLayoutError(f"cache manifest: expected an object, got {obj!r}")
    return obj.get(key, default)


def _check_index(value: object, low: int, high: int | None, what: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and isinstance(value, int) and value >= high):
        raise CacheLayoutError(f"{what}: invalid value {value!r}")


def referenced_blobs(manifest_json: bytes | str | Mapping[str, Any]) -> set[str]:
    """Every blob digest an s3 cache manifest needs (what gc must keep)."""
    return {layer["blob"] for layer in parse_s3_manifest(manifest_json).get("layers") or []}


def layer_blobs(manifest_json: bytes | str | Mapping[str, Any]) -> list[BlobRef]:
    """The distinct blobs of an s3 manifest, in first-use order, with their expected size."""
    blobs: dict[str, BlobRef] = {}
    for layer in parse_s3_manifest(manifest_json).get("layers") or []:
        ann = layer["annotations"]
        ref = BlobRef(layer["blob"], ann.get("size", 0), ann.get("mediaType", ""))
        seen = blobs.setdefault(ref.digest, ref)
        if seen.size != ref.size:
            raise CacheLayoutError(f"blob {ref.digest} is listed with two sizes")
    return list(blobs.values())


def s3_manifest_to_local_layout(
    manifest_json: bytes | str | Mapping[str, Any],
    write: Writer,
    *,
    tag: str = DEFAULT_TAG,
    image_manifest: bool = True,
) -> dict[str, Any]:
    """Write the metadata of the OCI layout BuildKit's local exporter would have written.

    Layer blobs are NOT written here (they come from S3): the caller puts each of
    `layer_blobs(manifest)` at `blob_relpath(digest)` BEFORE calling this, because index.json is
    written last and a layout without it is simply ignored by `--cache-from type=local`.
    Returns the manifest descriptor listed in index.json.
    """
    manifest = parse_s3_manifest(manifest_json)
    layers = manifest.get("layers") or []
    descs: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if layer["blob"] in descs:
            continue
        ann = layer["annotations"]
        annotations = {LABEL_UNCOMPRESSED: ann["diffID"]}
        created = go_utc_time(ann["createdAt"]) if ann.get("createdAt") else GO_ZERO_TIME
        if created != GO_ZERO_TIME:  # s3.go importer: only a non-zero CreatedAt is restored
            annotations[ANNOTATION_CREATED_AT] = created
        descs[layer["blob"]] = {
            "mediaType": ann.get("mediaType", ""),
            "digest": layer["blob"],
            "size": ann.get("size", 0),
            "annotations": dict(sorted(annotations.items())),  # Go marshals maps sorted
        }
    local_config = dict(manifest)  # the local exporter's cacheconfig has no layer annotations
    if "layers" in manifest:
        local_config["layers"] = [
            {k: v for k, v in layer.items() if k != "annotations"} for layer in layers
        ]
    config_bytes = encode_json(local_config)
    config_desc: dict[str, Any] = {
        "mediaType": CACHE_CONFIG_MEDIA_TYPE,
        "digest": digest_of(config_bytes),
        "size": len(config_bytes),
    }
    if image_manifest:
        top: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
        top.update(config=config_desc, layers=list(descs.values()))
    else:
        top = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [*descs.values(), config_desc],
        }
    top_bytes = encode_json(top)
    top_desc = {
        "mediaType": top["mediaType"],
        "digest": digest_of(top_bytes),
        "size": len(top_bytes),
    }
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**top_desc, "annotations": {ANNOTATION_REF_NAME: tag}}],
    }
    write(blob_relpath(config_desc["digest"]), config_bytes)
    write(blob_relpath(top_desc["digest"]), top_bytes)
    write("oci-layout", encode_json(OCI_LAYOUT))
    write("index.json", encode_json(index))
    descriptor: dict[str, Any] = index["manifests"][0]
    return descriptor
