"""The report history: stores, retention like the images', and finding the previous key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prebuild.model import HistorySettings, Project, Settings
from prebuild.report import history
from prebuild.report.document import previous_materials

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def project(tmp_path: Path, *, keep: int = 3, max_age: int | None = None, **kw) -> Project:
    settings = Settings(
        registry="127.0.0.1:1/ci",
        keep=keep,
        max_age_seconds=max_age,
        history=HistorySettings(**kw),
    )
    return Project(tmp_path / "prebuild.toml", tmp_path, settings, ())


def test_entry_names_sort_by_time_and_round_trip() -> None:
    names = [history.entry_name(NOW + timedelta(milliseconds=ms)) for ms in (5, 1000, 1)]
    assert sorted(names) == [names[2], names[0], names[1]]
    assert history.entry_time(names[1]) == NOW + timedelta(seconds=1)


def test_dir_store_records_and_prunes_to_keep(tmp_path: Path) -> None:
    proj = project(tmp_path, keep=3, store="dir")
    store = history.open_store(proj)
    assert isinstance(store, history.DirStore)
    assert store.path == tmp_path / ".prebuild" / "history"
    for night in range(5):
        history.record(proj, store, {"night": night}, now=NOW + timedelta(days=night))
    assert [doc["night"] for doc in history.load_all(store)] == [2, 3, 4]
    assert not list(store.path.glob(".*"))  # no temporary files left behind


def test_max_age_keeps_younger_reports_beyond_keep(tmp_path: Path) -> None:
    names = [history.entry_name(NOW - timedelta(days=d)) for d in range(6)]
    kept = history.retained(names, keep=2, max_age_seconds=4 * 86400, now=NOW)
    assert kept == set(names[:4])


def test_unreadable_report_is_skipped(tmp_path: Path) -> None:
    store = history.DirStore(tmp_path)
    store.write(history.entry_name(NOW), b"not json")
    store.write(history.entry_name(NOW - timedelta(days=1)), b'{"ok": 1}')
    assert history.load_all(store) == [{"ok": 1}]


def test_previous_material_is_the_newest_present_key() -> None:
    reports = [  # newest first
        {"images": [{"name": "a", "status": "failed", "material": {"m": "failed"}}]},
        {"images": [{"name": "a", "status": "skipped", "material": {"m": "present"}}]},
        {"images": [{"name": "a", "status": "built", "material": {"m": "older"}}]},
    ]
    assert previous_materials(reports, {"a", "b"}) == {"a": {"m": "present"}}


@pytest.mark.parametrize("store", ["dir"])
def test_documents_round_trip_exactly(tmp_path: Path, store: str) -> None:
    proj = project(tmp_path, store=store)
    doc = {"images": [{"name": "a", "why": ["x changed"]}], "storage": {"registry": 1}}
    history.record(proj, history.open_store(proj), doc, now=NOW)
    name = history.open_store(proj).names()[0]
    assert json.loads((tmp_path / ".prebuild" / "history" / f"{name}.json").read_text()) == doc


def test_s3_store_keeps_reports_under_the_cache_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from moto import mock_aws

    from prebuild.model import CacheSettings, ImageSpec, S3Settings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="ci-cache")
        s3 = S3Settings(bucket="ci-cache", prefix="buildkit/")
        spec = ImageSpec(
            name="a",
            repo_root=tmp_path,
            context=tmp_path,
            dockerfile=tmp_path / "Dockerfile",
            cache=CacheSettings(backend="s3-sync", s3=s3),
        )
        base = project(tmp_path, keep=2, store="s3")
        proj = Project(base.config_file, tmp_path, base.settings, (spec,))
        store = history.open_store(proj)
        assert store.where == "s3://ci-cache/buildkit/prebuild-history/"
        for n in range(3):
            history.record(proj, store, {"night": n}, now=NOW + timedelta(days=n))
        assert [doc["night"] for doc in history.load_all(store)] == [1, 2]
        keys = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="ci-cache")
        assert all(o["Key"].startswith("buildkit/prebuild-history/") for o in keys["Contents"])


def test_s3_store_without_a_bucket_is_a_usage_error(tmp_path: Path) -> None:
    from prebuild.errors import UsageError

    with pytest.raises(UsageError, match=r"store = \"s3\" needs a \[cache.s3\] bucket"):
        history.open_store(project(tmp_path, store="s3"))


def test_gc_amends_the_newest_report_with_the_storage_it_left(tmp_path: Path) -> None:
    from prebuild.gc.run import GcRun
    from prebuild.registry.retention import RegistryGcReport
    from prebuild.report.nightly import record_storage

    def report(blobs: dict[str, int]) -> RegistryGcReport:
        return RegistryGcReport("r", [], [], False, 0, False, kept_blobs=blobs)

    run = GcRun(
        [
            ("a", "r/a", report({"sha256:1": 10, "sha256:2": 5})),
            ("b", "r/b", report({"sha256:1": 10})),
        ],
        [],
        dry_run=False,
        grace_seconds=0,
    )
    assert run.storage() == {"registry": 15, "s3": None}  # a blob shared by two images counts once
    proj = project(tmp_path, store="dir")
    store = history.open_store(proj)
    history.record(proj, store, {"night": 1, "storage": {"registry": None}}, now=NOW)
    record_storage(proj, run.storage(), warn=pytest.fail)
    assert history.load_all(store) == [
        {"night": 1, "storage": {"registry": 15, "s3": None}, "storage_after": "gc"}
    ]
