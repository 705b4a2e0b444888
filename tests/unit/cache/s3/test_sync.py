"""s3-sync export/import against moto: order of writes, skipping, verification, cold caches."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from prebuild.cache.s3.client import make_client
from prebuild.cache.s3.layout import (
    CACHE_CONFIG_MEDIA_TYPE,
    OCI_INDEX,
    OCI_MANIFEST,
    S3CacheError,
    blob_key,
    blob_relpath,
    local_layout_to_s3_manifest,
    manifest_key,
)
from prebuild.cache.s3.sync import export_to_s3, import_from_s3, touch_refresh
from prebuild.errors import ConfigError
from prebuild.model import S3Settings

SECRET = "secret-marker-never-logged"
SETTINGS = S3Settings(bucket="ci-cache", region="eu-west-1", prefix="ci/", upload_parallelism=3)
WRITES = {
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "CopyObject",
}


@pytest.fixture
def aws_secret() -> str:
    """A marked secret key (see conftest's fake_aws), so tests can check it never leaks."""
    return SECRET


@pytest.fixture
def client() -> Any:
    client = make_client(SETTINGS)
    client.create_bucket(
        Bucket=SETTINGS.bucket, CreateBucketConfiguration={"LocationConstraint": SETTINGS.region}
    )
    return client


def record_writes(client: Any) -> list[tuple[str, str]]:
    """(operation, key) of every write, in the order the client issues them."""
    calls: list[tuple[str, str]] = []

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in WRITES:
            calls.append((model.name, params.get("Key", "")))

    client.meta.events.register("before-parameter-build.s3", hook)
    return calls


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put(root: Path, data: bytes) -> dict[str, Any]:
    path = root / blob_relpath(sha(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": sha(data), "size": len(data)}


def local_cache(root: Path, seed: str = "a") -> dict[str, Any]:
    """A two-layer `--cache-to type=local` directory as BuildKit's local exporter writes it."""
    raws = [f"{seed}-base-layer-tar".encode() * 50, f"{seed}-run-layer-tar".encode() * 80]
    descs = []
    for n, raw in enumerate(raws):
        desc = put(root, gzip.compress(raw, mtime=0))
        desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        desc["annotations"] = {
            "buildkit/createdat": f"2024-06-0{n + 1}T08:00:00.25Z",
            "containerd.io/uncompressed": sha(raw),
        }
        descs.append(desc)
    order = sorted(range(2), key=lambda i: descs[i]["digest"])
    layers = [{"blob": descs[i]["digest"], "parent": -1} for i in order]
    if order[0] == 0:  # base sorts first: the run layer's parent 0 is omitted (omitempty)
        del layers[1]["parent"]
    else:
        layers[0]["parent"] = 1
    config = {
        "layers": layers,
        "records": [
            {
                "digest": sha(b"k0"),
                "layers": [{"layer": order.index(0), "createdAt": "2024-06-01T08:00:00Z"}],
            },
            {
                "digest": sha(b"k1"),
                "layers": [{"layer": order.index(1), "createdAt": "2024-06-02T08:00:00Z"}],
                "inputs": [[{"selector": "sha256:" + "e" * 64, "link": 0}]],
            },
        ],
    }
    config_desc = put(root, json.dumps(config, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CACHE_CONFIG_MEDIA_TYPE, **config_desc},
        "layers": [descs[i] for i in order],
    }
    top = put(root, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **top,
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return {"config": config, "blobs": {d["digest"]: d for d in descs}}


def local_config(root: Path) -> dict[str, Any]:
    index = json.loads((root / "index.json").read_text())
    top = json.loads((root / blob_relpath(index["manifests"][0]["digest"])).read_text())
    return json.loads((root / blob_relpath(top["config"]["digest"])).read_text())


def test_make_client_honours_settings_and_takes_no_credentials() -> None:
    assert list(inspect.signature(make_client).parameters) == ["settings"]
    settings = S3Settings(
        bucket="b", region="eu-central-1", endpoint_url="http://127.0.0.1:9000", use_path_style=True
    )
    client = make_client(settings)
    assert client.meta.endpoint_url == "http://127.0.0.1:9000"
    assert client.meta.region_name == "eu-central-1"
    assert client.meta.config.s3["addressing_style"] == "path"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5.0, 30.0)
    assert make_client(SETTINGS).meta.config.s3["addressing_style"] == "auto"


def test_export_then_import_round_trip(client: Any, tmp_path: Path) -> None:
    cache = local_cache(tmp_path / "out")
    stats = export_to_s3(tmp_path / "out", SETTINGS, "app", client=client)
    assert (stats.uploaded, stats.skipped) == (2, 0)
    assert stats.bytes == sum(d["size"] for d in cache["blobs"].values())
    assert stats.manifest_keys == ("ci/manifests/app",)
    for digest in cache["blobs"]:
        assert client.head_object(Bucket=SETTINGS.bucket, Key=f"ci/blobs/{digest}")
    stored = client.get_object(Bucket=SETTINGS.bucket, Key="ci/manifests/app")["Body"].read()
    assert json.loads(stored) == local_layout_to_s3_manifest(tmp_path / "out")[0]

    dest = tmp_path / "in"
    assert import_from_s3(SETTINGS, "app", dest, client=client) is True
    assert local_config(dest) == cache["config"]
    for digest in cache["blobs"]:
        assert (dest / blob_relpath(digest)).read_bytes() == (
            tmp_path / "out" / blob_relpath(digest)
        ).read_bytes()
    assert local_layout_to_s3_manifest(dest)[0] == json.loads(stored)


def test_export_skips_blobs_already_in_the_bucket(client: Any, tmp_path: Path) -> None:
    local_cache(tmp_path / "first")
    export_to_s3(tmp_path / "first", SETTINGS, "app", client=client)
    writes = record_writes(client)
    stats = export_to_s3(tmp_path / "first", SETTINGS, "app", client=client)
    assert (stats.uploaded, stats.skipped, stats.bytes, stats.touched) == (0, 2, 0, 0)
    assert writes == [("PutObject", "ci/manifests/app")]


def test_manifest_is_written_last(client: Any, tmp_path: Path) -> None:
    cache = local_cache(tmp_path / "out")
    writes = record_writes(client)
    export_to_s3(tmp_path / "out", SETTINGS, "app;app-main", client=client)
    blob_keys = {blob_key(SETTINGS, d) for d in cache["blobs"]}
    assert {key for _, key in writes[:2]} == blob_keys
    assert writes[2:] == [("PutObject", "ci/manifests/app"), ("PutObject", "ci/manifests/app-main")]


def test_failed_blob_upload_writes_no_manifest(client: Any, tmp_path: Path) -> None:
    cache = local_cache(tmp_path / "out")
    doomed = blob_key(SETTINGS, sorted(cache["blobs"])[0])

    def fail(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("Key") == doomed:
            raise ClientError({"Error": {"Code": "AccessDenied"}}, model.name)

    client.meta.events.register("before-parameter-build.s3.PutObject", fail)
    with pytest.raises(S3CacheError, match="AccessDenied") as info:
        export_to_s3(tmp_path / "out", SETTINGS, "app", client=client)
    assert info.value.hint and "credentials" in info.value.hint
    with pytest.raises(ClientError):
        client.head_object(Bucket=SETTINGS.bucket, Key="ci/manifests/app")


def test_old_blobs_are_touched_like_buildkit(client: Any, tmp_path: Path) -> None:
    local_cache(tmp_path / "out")
    export_to_s3(tmp_path / "out", SETTINGS, "app", client=client)
    writes = record_writes(client)
    later = datetime.now(UTC) + timedelta(days=2)
    stats = export_to_s3(tmp_path / "out", SETTINGS, "app", client=client, now=later)
    assert (stats.uploaded, stats.touched) == (0, 2)
    assert [op for op, _ in writes] == ["CopyObject", "CopyObject", "PutObject"]


def test_an_empty_export_uploads_nothing(client: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    writes = record_writes(client)
    assert export_to_s3(tmp_path / "empty", SETTINGS, "app", client=client).manifest_keys == ()
    assert writes == []


def test_import_of_a_cold_cache_is_false_not_an_error(client: Any, tmp_path: Path) -> None:
    assert import_from_s3(SETTINGS, "app", tmp_path / "in", client=client) is False
    assert list((tmp_path / "in").iterdir()) == []


@pytest.mark.parametrize("damage", ["missing", "corrupt", "truncated", "manifest"])
def test_import_refuses_a_broken_cache(client: Any, tmp_path: Path, damage: str, caplog) -> None:
    cache = local_cache(tmp_path / "out")
    export_to_s3(tmp_path / "out", SETTINGS, "app", client=client)
    key = blob_key(SETTINGS, sorted(cache["blobs"])[1])
    size = cache["blobs"][sorted(cache["blobs"])[1]]["size"]
    if damage == "missing":
        client.delete_object(Bucket=SETTINGS.bucket, Key=key)
    elif damage == "corrupt":  # same size, other bytes
        client.put_object(Bucket=SETTINGS.bucket, Key=key, Body=b"x" * size)
    elif damage == "truncated":
        client.put_object(Bucket=SETTINGS.bucket, Key=key, Body=b"x")
    else:
        client.put_object(Bucket=SETTINGS.bucket, Key="ci/manifests/app", Body=b'{"layers": 3')
    dest = tmp_path / "in"
    with caplog.at_level(logging.WARNING, logger="prebuild.cache.s3.sync"):
        assert import_from_s3(SETTINGS, "app", dest, client=client) is False
    assert "not using the S3 cache" in caplog.text
    assert list(dest.iterdir()) == []  # BuildKit never sees half a layout


def test_import_needs_an_empty_destination(client: Any, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "keep.txt").write_text("user data")
    with pytest.raises(ValueError):
        import_from_s3(SETTINGS, "app", tmp_path / "in", client=client)
    assert (tmp_path / "in" / "keep.txt").exists()


def test_s3_failures_are_user_facing_and_never_show_credentials(tmp_path: Path, caplog) -> None:
    client = make_client(SETTINGS)  # bucket never created
    local_cache(tmp_path / "out")
    with caplog.at_level(logging.DEBUG), pytest.raises(S3CacheError) as info:
        export_to_s3(tmp_path / "out", SETTINGS, "app", client=client)
    assert "NoSuchBucket" in str(info.value) and info.value.hint
    assert SECRET not in caplog.text and SECRET not in str(info.value)


def test_touch_refresh_parsing() -> None:
    def parse(text: str | None) -> timedelta:
        return touch_refresh(S3Settings(bucket="b", touch_refresh=text))

    assert parse(None) == timedelta(hours=24)
    assert parse("1h30m") == timedelta(minutes=90)
    assert parse("2d") == timedelta(days=2)
    assert parse("1d12h") == timedelta(hours=36)
    for bad in ("soon", "1.5h", "30", "0s"):  # one grammar with the config: errors, never 24h
        with pytest.raises(ConfigError, match="cache.s3.touch_refresh.*invalid duration"):
            parse(bad)
    assert manifest_key(SETTINGS, "app") == "ci/manifests/app"
