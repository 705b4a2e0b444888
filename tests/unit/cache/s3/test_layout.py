"""Layout conversion against a cache shaped exactly like BuildKit writes it.

The fixture follows moby/buildkit cache/remotecache/export.go (local exporter: OCI image manifest
whose config is the cacheconfig, or an index), v1/spec.go + v1/utils.go (CacheConfig JSON, root
layers have parent -1, omitempty fields) and client/ociindex/ociindex.go (index.json, oci-layout).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prebuild.cache.s3.layout import (
    CACHE_CONFIG_MEDIA_TYPE,
    GO_ZERO_TIME,
    OCI_INDEX,
    OCI_MANIFEST,
    CacheLayoutError,
    blob_key,
    blob_relpath,
    go_utc_time,
    layer_blobs,
    local_layout_to_s3_manifest,
    manifest_key,
    manifest_names,
    parse_s3_manifest,
    referenced_blobs,
    s3_manifest_to_local_layout,
)
from prebuild.cache.s3.sync import dir_writer
from prebuild.model import S3Settings

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CREATED = ["2024-05-01T10:00:00.123456789Z", "2024-05-01T10:01:02Z", "2024-05-01T10:02:03.5Z"]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """(gzip blob, diffID): a real tar, compressed, like a BuildKit layer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), sha(raw)


@dataclass
class LocalCache:
    root: Path
    config: dict[str, Any]  # the cacheconfig blob, parsed
    blobs: dict[str, bytes]  # layer digest -> bytes
    descriptors: dict[str, dict[str, Any]]  # layer digest -> manifest layer descriptor


def write_blob(root: Path, data: bytes) -> str:
    digest = sha(data)
    path = root / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def build_local_cache(root: Path, *, image_manifest: bool = True, created=CREATED) -> LocalCache:
    """A `--cache-to type=local,mode=max` directory for base -> apt -> app (+ a context record)."""
    chain = [
        layer({"etc/os-release": b"ID=debian\n"}),
        layer({"usr/bin/tool": b"\x7fELF" + b"x" * 300}),
        layer({"app/main.py": b"print('hi')\n"}),
    ]
    blobs = {sha(blob): blob for blob, _ in chain}
    order = sorted(blobs)  # v1/utils.go sortConfig: layers sorted by blob digest
    pos = {sha(blob): order.index(sha(blob)) for blob, _ in chain}
    layers: list[dict[str, Any]] = []
    for digest in order:
        i = [sha(b) for b, _ in chain].index(digest)
        entry: dict[str, Any] = {"blob": digest}
        parent = -1 if i == 0 else pos[sha(chain[i - 1][0])]
        if parent != 0:  # `parent,omitempty`: 0 is simply absent
            entry["parent"] = parent
        layers.append(entry)
    key = [sha(f"cache-key-{n}".encode()) for n in range(4)]
    records = [
        {"digest": key[0], "layers": [{"layer": pos[sha(chain[0][0])], "createdAt": created[0]}]},
        {
            "digest": key[1],
            "layers": [{"layer": pos[sha(chain[1][0])], "createdAt": created[1]}],
            "inputs": [[{"link": 0}]],
        },
        {"digest": key[2]},  # the build context: a record without a result
        {
            "digest": key[3],
            "layers": [{"layer": pos[sha(chain[2][0])], "createdAt": created[2]}],
            "inputs": [[{"link": 1}], [{"selector": "sha256:" + "c" * 64, "link": 2}]],
        },
    ]
    config = {"layers": layers, "records": records}
    root.mkdir(parents=True, exist_ok=True)
    for data in blobs.values():
        write_blob(root, data)
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_desc = {
        "mediaType": CACHE_CONFIG_MEDIA_TYPE,
        "digest": write_blob(root, config_bytes),
        "size": len(config_bytes),
    }
    descriptors = {}
    for i, (blob, diff_id) in enumerate(chain):
        annotations = {"containerd.io/uncompressed": diff_id}
        if created[i]:
            annotations["buildkit/createdat"] = created[i]
        descriptors[sha(blob)] = {
            "mediaType": LAYER_TYPE,
            "digest": sha(blob),
            "size": len(blob),
            "annotations": dict(sorted(annotations.items())),
        }
    layer_descs = [descriptors[entry["blob"]] for entry in layers]
    if image_manifest:
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc}
        manifest["layers"] = layer_descs
    else:
        manifest = {"schemaVersion": 2, "mediaType": OCI_INDEX}
        manifest["manifests"] = [*layer_descs, config_desc]
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": write_blob(root, manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index, separators=(",", ":")))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "ingest").mkdir()
    return LocalCache(root, config, blobs, descriptors)


def read_local_config(root: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(cacheconfig, layer descriptors) the way the local importer finds them."""
    index = json.loads((root / "index.json").read_bytes())
    top = json.loads((root / blob_relpath(index["manifests"][0]["digest"])).read_bytes())
    if "manifests" in top:
        config_desc = next(m for m in top["manifests"] if m["mediaType"] == CACHE_CONFIG_MEDIA_TYPE)
        layers = [m for m in top["manifests"] if m is not config_desc]
    else:
        config_desc, layers = top["config"], top["layers"]
    return json.loads((root / blob_relpath(config_desc["digest"])).read_bytes()), layers


def expected_s3_manifest(cache: LocalCache) -> dict[str, Any]:
    """What s3.go Finalize marshals: the cacheconfig, each layer annotated from its descriptor."""
    layers = []
    for entry in cache.config["layers"]:
        desc = cache.descriptors[entry["blob"]]
        ann = desc["annotations"]
        created = ann.get("buildkit/createdat")
        layers.append(
            {
                **entry,
                "annotations": {
                    "mediaType": desc["mediaType"],
                    "diffID": ann["containerd.io/uncompressed"],
                    "size": desc["size"],
                    "createdAt": go_utc_time(created) if created else GO_ZERO_TIME,
                },
            }
        )
    return {"layers": layers, "records": cache.config["records"]}


def test_keys_are_buildkit_s3_keys() -> None:
    settings = S3Settings(bucket="b", prefix="ci/cache/")
    digest = "sha256:" + "a" * 64
    assert blob_key(settings, digest) == f"ci/cache/blobs/{digest}"
    assert manifest_key(settings, "app") == "ci/cache/manifests/app"
    # s3.go concatenates the prefix verbatim: no slash is added
    assert blob_key(S3Settings(bucket="b", prefix="x"), digest) == f"xblobs/{digest}"
    assert manifest_key(S3Settings(bucket="b"), "org/app") == "manifests/org/app"
    assert manifest_names("a;b") == ["a", "b"]
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, ""):
        with pytest.raises(CacheLayoutError):
            blob_key(settings, bad)
    for bad_name in ("", "a;b"):
        with pytest.raises(ValueError):
            manifest_key(settings, bad_name)


@pytest.mark.parametrize("image_manifest", [True, False])
def test_local_layout_converts_to_the_s3_exporter_format(tmp_path: Path, image_manifest) -> None:
    cache = build_local_cache(tmp_path / "local", image_manifest=image_manifest)
    manifest, blobs = local_layout_to_s3_manifest(cache.root)
    assert manifest == expected_s3_manifest(cache)
    assert manifest["layers"][0]["annotations"]["createdAt"] in CREATED
    assert {b.digest for b in blobs} == set(cache.blobs)
    assert all(b.size == len(cache.blobs[b.digest]) and b.media_type == LAYER_TYPE for b in blobs)
    assert list(manifest["layers"][0]["annotations"]) == [
        "mediaType",
        "diffID",
        "size",
        "createdAt",
    ]
    assert referenced_blobs(json.dumps(manifest)) == set(cache.blobs)


def test_round_trip_local_s3_local_keeps_cacheconfig_and_blobs(tmp_path: Path) -> None:
    cache = build_local_cache(tmp_path / "local")
    manifest, _ = local_layout_to_s3_manifest(cache.root)
    wire = json.dumps(manifest, separators=(",", ":")).encode()  # as stored on S3
    out = tmp_path / "imported"
    for blob in layer_blobs(wire):  # the caller puts the blobs first ...
        dest = out / blob_relpath(blob.digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache.root / blob_relpath(blob.digest), dest)
    desc = s3_manifest_to_local_layout(wire, dir_writer(out))  # ... then the metadata
    config, layer_descs = read_local_config(out)
    assert config == cache.config
    assert {d["digest"]: d for d in layer_descs} == cache.descriptors
    for digest, data in cache.blobs.items():
        assert (out / blob_relpath(digest)).read_bytes() == data
    assert json.loads((out / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((out / "index.json").read_bytes())
    assert index["manifests"] == [desc]
    assert desc["mediaType"] == OCI_MANIFEST
    assert desc["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    assert local_layout_to_s3_manifest(out)[0] == manifest


def test_index_style_output_for_older_importers(tmp_path: Path) -> None:
    cache = build_local_cache(tmp_path / "local")
    manifest, blobs = local_layout_to_s3_manifest(cache.root)
    out = tmp_path / "imported"
    for blob in blobs:
        (out / blob_relpath(blob.digest)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache.root / blob_relpath(blob.digest), out / blob_relpath(blob.digest))
    desc = s3_manifest_to_local_layout(manifest, dir_writer(out), image_manifest=False)
    assert desc["mediaType"] == OCI_INDEX
    assert read_local_config(out)[0] == cache.config
    assert local_layout_to_s3_manifest(out)[0] == manifest


def test_created_at_is_utc_like_go_and_zero_time_is_not_restored(tmp_path: Path) -> None:
    assert go_utc_time("2024-05-01T12:00:00.123456780+02:00") == "2024-05-01T10:00:00.12345678Z"
    assert go_utc_time("2024-05-01T00:30:00.000Z") == "2024-05-01T00:30:00Z"
    assert go_utc_time("2024-05-01T00:30:00-01:00") == "2024-05-01T01:30:00Z"
    cache = build_local_cache(tmp_path / "local", created=["", CREATED[1], CREATED[2]])
    manifest, _ = local_layout_to_s3_manifest(cache.root)
    created = {x["annotations"]["createdAt"] for x in manifest["layers"]}
    assert GO_ZERO_TIME in created
    out = tmp_path / "out"
    s3_manifest_to_local_layout(manifest, dir_writer(out))
    no_date = [d for d in read_local_config(out)[1] if "buildkit/createdat" not in d["annotations"]]
    assert len(no_date) == 1


def test_broken_local_layouts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CacheLayoutError, match="index.json"):
        local_layout_to_s3_manifest(tmp_path / "nothing")
    cache = build_local_cache(tmp_path / "missing-blob")
    (cache.root / blob_relpath(next(iter(cache.blobs)))).unlink()
    with pytest.raises(CacheLayoutError, match="missing"):
        local_layout_to_s3_manifest(cache.root)
    cache = build_local_cache(tmp_path / "no-diffid")
    index = json.loads((cache.root / "index.json").read_bytes())
    manifest_path = cache.root / blob_relpath(index["manifests"][0]["digest"])
    manifest = json.loads(manifest_path.read_bytes())
    del manifest["layers"][0]["annotations"]["containerd.io/uncompressed"]
    data = json.dumps(manifest).encode()
    index["manifests"][0].update(digest=write_blob(cache.root, data), size=len(data))
    (cache.root / "index.json").write_text(json.dumps(index))
    with pytest.raises(CacheLayoutError, match="uncompressed"):
        local_layout_to_s3_manifest(cache.root)
    manifest_path.write_bytes(b"{}")  # tampered blob: digest no longer matches
    index["manifests"][0].update(digest=sha(b"nope"), size=2)
    (cache.root / "index.json").write_text(json.dumps(index))
    with pytest.raises(CacheLayoutError):
        local_layout_to_s3_manifest(cache.root)


def test_s3_manifest_validation(tmp_path: Path) -> None:
    manifest, _ = local_layout_to_s3_manifest(build_local_cache(tmp_path / "l").root)
    assert parse_s3_manifest(json.dumps(manifest)) == manifest
    assert referenced_blobs(b'{"layers":[],"records":[]}') == set()
    assert referenced_blobs(b"{}") == set()
    bad: list[Any] = [b"not json", b"[]", b'{"layers":{}}']
    for mutate in (
        lambda m: m["layers"][0].pop("annotations"),
        lambda m: m["layers"][0]["annotations"].pop("diffID"),
        lambda m: m["layers"][0].update(blob="sha256:../../x"),
        lambda m: m["layers"][0].update(parent=7),
        lambda m: m["layers"][0]["annotations"].update(createdAt="yesterday"),
        lambda m: m["records"][0]["layers"][0].update(layer=9),
        lambda m: m["records"][1]["inputs"][0][0].update(link=99),
    ):
        broken = json.loads(json.dumps(manifest))
        mutate(broken)
        bad.append(json.dumps(broken).encode())
    for data in bad:
        with pytest.raises(CacheLayoutError):
            referenced_blobs(data)
