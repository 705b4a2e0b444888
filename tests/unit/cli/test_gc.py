"""`prebuild gc` through the real entry point, against the fake registry and moto's S3."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from moto import mock_aws

from prebuild.cache.s3.client import make_client as make_s3_client
from prebuild.cache.s3.layout import blob_key
from prebuild.cli import main
from prebuild.cli.commands import ALL
from prebuild.cli.gc import gc
from prebuild.model import S3Settings
from prebuild.sizes import human_bytes
from tests.unit.registry import test_retention as test_gc_registry
from tests.unit.registry.test_client import FakeRegistry
from tests.unit.registry.test_retention import key

NOW = datetime.now(UTC)


def push(fake: FakeRegistry, *tags: str, days_old: float | None, layers: dict[str, int]):
    return test_gc_registry.push(
        fake, *tags, days_old=days_old, layers=layers, repo="ci/app", now=NOW
    )


def write_config(root: Path, fake: FakeRegistry, extra: str = "") -> None:
    (root / "ci" / "app").mkdir(parents=True, exist_ok=True)
    (root / "ci" / "app" / "Dockerfile").write_text("FROM scratch\n")
    text = f"""
        registry = "{fake.host}/ci"
        {extra}
        [[image]]
        name = "app"
        context = "ci/app"
    """
    (root / "prebuild.toml").write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeRegistry) -> dict:
    """ci/app with 4 key tags (2 old), latest on the newest, buildcache; cwd = the repo."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, fake)
    images = {}
    for n, days in enumerate((1, 2, 30, 40)):
        tags = (key(n), "latest") if n == 0 else (key(n),)
        images[n] = push(fake, *tags, days_old=days, layers={f"l{n}": 1000})
    images["cache"] = push(fake, "buildcache", days_old=None, layers={"c": 5})
    return images


def deletes(fake: FakeRegistry) -> list[str]:
    return [p for p in fake.paths() if p.startswith("DELETE")]


def test_registered() -> None:
    assert gc in ALL


def test_dry_run_reports_and_deletes_nothing(fake, project, run_main) -> None:
    code, out, err = run_main(["gc", "--keep", "2"])
    assert (code, err) == (0, "")
    assert deletes(fake) == []
    lines = out.splitlines()
    assert lines[0] == "gc: dry run, nothing is deleted (run with --apply to delete)"
    size3, size2 = project[3][1], project[2][1]
    assert lines[1] == (
        f"registry {fake.host}/ci/app: kept 4 tags, would delete 2 tags "
        f"(2 manifests, ~{human_bytes(size3 + size2)})"
    )
    width = len(key(0))
    assert lines[2:6] == [
        f"  kept          {'buildcache':<{width}}  moving tag",
        f"  kept          {'latest':<{width}}  moving tag",
        f"  kept          {key(0)}  newest 2",
        f"  kept          {key(1)}  newest 2",
    ]
    created = (NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lines[6] == f"  would delete  {key(3)}  created {created}  {human_bytes(size3)}"
    assert lines[7].startswith(f"  would delete  {key(2)}  created ")
    assert lines[8].startswith("note: deleting manifests frees no storage until the registry")
    assert len(lines) == 9


def test_apply_deletes_old_digests(fake, project, run_main) -> None:
    code, out, _ = run_main(["gc", "--apply", "--keep", "2", "app"])
    assert code == 0
    assert sorted(deletes(fake)) == sorted(
        f"DELETE /v2/ci/app/manifests/{project[n][0]}" for n in (2, 3)
    )
    assert "dry run" not in out and f"  deleted       {key(3)}" in out


def test_max_age_and_config_defaults(fake, project, run_main, tmp_path) -> None:
    code, out, _ = run_main(["gc", "--keep", "1", "--max-age", "35d", "--json"])
    assert code == 0
    (image,) = json.loads(out)["registry"]
    assert [d["tag"] for d in image["deleted"]] == [key(3)]
    assert {k["tag"]: k["why"] for k in image["kept"]}[key(2)] == "younger than 5w"
    write_config(tmp_path, fake, "[gc]\nkeep = 3\n")
    code, out, _ = run_main(["gc", "--json"])
    assert [d["tag"] for d in json.loads(out)["registry"][0]["deleted"]] == [key(3)]


def test_json_shape(fake, project, run_main) -> None:
    code, out, _ = run_main(["gc", "--json", "--keep", "3"])
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"dry_run", "registry", "s3"} and doc["dry_run"] is True
    assert doc["s3"] == []
    (image,) = doc["registry"]
    assert image["name"] == "app" and image["image"] == f"{fake.host}/ci/app"
    assert image["refused"] is False and image["dry_run"] is True
    assert image["not_deleted"] == []
    (deleted,) = image["deleted"]
    assert deleted == {
        "tag": key(3),
        "digest": project[3][0],
        "created": deleted["created"],
        "size": project[3][1],
    }
    assert datetime.fromisoformat(deleted["created"]) < NOW - timedelta(days=39)
    assert image["bytes_freed"] == project[3][1]
    assert {"tag": "latest", "why": "moving tag"} in image["kept"]
    assert deletes(fake) == []


def test_refusal_is_reported_not_an_error(fake, project, run_main) -> None:
    fake.delete_status = 405
    code, out, _ = run_main(["gc", "--apply", "--keep", "2"])
    assert code == 0 and len(deletes(fake)) == 1
    assert "  refused: the registry does not allow deletes (405/UNSUPPORTED); 2 tags left" in out
    assert f"  left          {key(3)}" in out
    assert "kept 4 tags, deleted 0 tags (0 manifests, ~0 B)" in out


def test_after_build_is_a_no_op_unless_configured(fake, project, run_main, tmp_path) -> None:
    code, out, _ = run_main(["gc", "--after-build"])
    assert (code, out) == (0, "gc: not configured to run after builds\n")
    assert fake.log == []
    code, out, err = run_main(["gc", "--after-build", "--json"])
    assert json.loads(out) == {"dry_run": True, "registry": [], "s3": []}
    assert "not configured" in err
    write_config(tmp_path, fake, "[gc]\nkeep = 2\nafter_build = true\n")
    code, out, _ = run_main(["gc", "--after-build"])
    assert code == 0 and len(deletes(fake)) == 2  # configured: applies


@pytest.mark.parametrize("option", ["--max-age", "--grace"])
def test_bad_duration_is_a_usage_error(fake, project, run_main, option) -> None:
    code, _, err = run_main(["gc", option, "7days"])
    assert code == 2 and "invalid duration '7days'" in err and option in err
    assert fake.log == []


def test_bad_keep_and_unknown_image_are_usage_errors(fake, project, run_main) -> None:
    assert run_main(["gc", "--keep", "0"])[0] == 2
    code, _, err = run_main(["gc", "ap"])
    assert code == 2 and "no image named 'ap'" in err


def test_registry_error_exits_1_after_reporting(fake, project, run_main) -> None:
    fake.fail("/v2/ci/app/tags/list", 400)
    code, out, err = run_main(["gc", "--json"])
    assert code == 1
    (image,) = json.loads(out)["registry"]
    assert "HTTP 400" in image["error"]
    assert err.startswith("error: gc failed for 1 target(s): app")


def test_cache_refs_in_the_repository_are_protected(fake, project, run_main, tmp_path) -> None:
    branch = push(fake, "cache-main", days_old=99, layers={"x": 1})[0]
    fake.manifests[("ci/app", key(3))] = fake.manifests[("ci/app", branch)]
    cache = '[cache]\nref = "{registry}/{name}:cache-main"\n'
    write_config(tmp_path, fake, cache)
    code, out, _ = run_main(["gc", "--json", "--keep", "1"])
    kept = {k["tag"]: k["why"] for k in json.loads(out)["registry"][0]["kept"]}
    assert kept["cache-main"] == "moving tag"
    assert kept[key(3)] == "same manifest as 'cache-main'"


# -- S3 ---------------------------------------------------------------------------------------

S3_CONFIG = """
[cache]
backend = "s3-sync"
[cache.s3]
bucket = "ci-cache"
prefix = "ci/"
"""


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Settings]:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    settings = S3Settings(bucket="ci-cache", prefix="ci/")
    with mock_aws():
        client = make_s3_client(settings)
        client.create_bucket(Bucket=settings.bucket)
        old = (NOW - timedelta(days=9)).replace(tzinfo=None)
        with mock.patch("moto.s3.models.utcnow", return_value=old):
            digest = "sha256:" + "ab" * 32
            client.put_object(Bucket="ci-cache", Key=blob_key(settings, digest), Body=b"x" * 7)
        yield settings


def test_s3_gc_once_per_bucket(fake, project, bucket, run_main, tmp_path) -> None:
    write_config(tmp_path, fake, S3_CONFIG)
    with (tmp_path / "prebuild.toml").open("a") as f:
        f.write('[[image]]\nname = "tools"\ncontext = "ci/app"\n')
    code, out, _ = run_main(["gc", "--keep", "9"])
    assert code == 0
    s3_lines = [line for line in out.splitlines() if line.startswith("s3 ")]
    assert s3_lines == [
        "s3 s3://ci-cache/ci/ (app, tools): 0 manifests name 0 blobs; would delete 1 "
        "unreferenced blobs (7 B); kept 0 younger than 2d"
    ]
    code, out, _ = run_main(["gc", "--json", "--apply", "--setup-lifecycle", "app"])
    (s3,) = json.loads(out)["s3"]
    assert s3["images"] == ["app"] and s3["lifecycle"] == "set" and s3["dry_run"] is False
    assert s3["deleted"] == [{"key": blob_key(bucket, "sha256:" + "ab" * 32), "size": 7}]
    assert s3["bytes_deleted"] == 7 and s3["bucket"] == "ci-cache" and s3["prefix"] == "ci/"
    code, out, _ = run_main(["gc", "--setup-lifecycle", "--grace", "1h"])
    assert "s3 s3://ci-cache/ci/ (app, tools): lifecycle rule already set" in out
    assert "would delete 0 unreferenced blobs (0 B); kept 0 younger than 1h" in out


def test_apply_refuses_in_a_pull_request(tmp_path, monkeypatch, capsys) -> None:

    (tmp_path / "prebuild.toml").write_text('registry = "127.0.0.1:9/ci"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setattr("sys.argv", ["prebuild", "gc", "--apply"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "refusing to delete registry tags or cache from an untrusted run" in err
    assert "GitHub Actions event 'pull_request'" in err
