"""What the build itself measures after a run, and what it carries from the history."""

from __future__ import annotations

from pathlib import Path

from prebuild.model import Project, Settings
from prebuild.report.nightly import _measure
from prebuild.report.results import ImageResult

NEWEST = {
    "storage": {"registry": 123, "s3": None},
    "images": [{"name": "a", "key": "k1", "size": 7}],
}


def project(tmp_path: Path, *, gc_after_build: bool = False) -> Project:
    settings = Settings(registry="127.0.0.1:1/ci", gc_after_build=gc_after_build)  # unreachable
    return Project(tmp_path / "prebuild.toml", tmp_path, settings, ())


def test_a_night_that_pushed_nothing_carries_storage_and_sizes(tmp_path: Path) -> None:
    results = [ImageResult("a", "skipped", key="k1", ref="127.0.0.1:1/ci/a:k1")]
    storage = _measure(project(tmp_path), results, [NEWEST], metrics=False)
    assert storage == {"registry": 123, "s3": None}  # nothing asked of the (unreachable) registry
    assert results[0].size == 7


def test_gc_after_build_measures_instead(tmp_path: Path) -> None:
    results = [ImageResult("a", "skipped", key="k2", ref="127.0.0.1:1/ci/a:k2")]
    storage = _measure(project(tmp_path, gc_after_build=True), results, [NEWEST], metrics=False)
    assert storage == {"registry": None, "s3": None}  # gc records it (record_storage)
    assert results[0].size is None  # another key: its size is not known
