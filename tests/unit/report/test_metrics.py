"""The Prometheus textfile: parsed back with prometheus_client's own parser."""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from prebuild.report.metrics import write_textfile

DOC = {
    "finished": "2026-12-01T03:10:00Z",
    "seconds": 600.5,
    "exit_code": 1,
    "storage": {"registry": 5_000_000, "s3": None},
    "images": [
        {"name": "base", "status": "built", "seconds": 42.0, "cache_hits": 3, "cache_steps": 4},
        {"name": "app", "status": "failed", "seconds": 7.5, "cache_hits": 0, "cache_steps": 0},
        {"name": "docs", "status": "skipped", "seconds": 0, "cache_hits": 0, "cache_steps": 0},
    ],
}
EARLIER = [{"exit_code": 0, "finished": "2026-11-30T03:00:00Z"}]


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(path.read_text())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_metrics_parse_and_carry_the_run(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "prebuild.prom"
    write_textfile(path, DOC, EARLIER)
    got = samples(path)
    assert got[("prebuild_image_build_seconds", (("image", "base"),))] == 42.0
    assert got[("prebuild_image_status", (("image", "app"), ("status", "failed")))] == 1
    assert got[("prebuild_image_status", (("image", "app"), ("status", "built")))] == 0
    assert got[("prebuild_images", (("status", "built"),))] == 1
    assert got[("prebuild_images", (("status", "failed"),))] == 1
    assert got[("prebuild_cache_hit_ratio", ())] == 0.75
    assert got[("prebuild_storage_bytes", (("backend", "registry"),))] == 5_000_000
    assert ("prebuild_storage_bytes", (("backend", "s3"),)) not in got
    # this run failed: the last success is the earlier run's
    assert got[("prebuild_last_success_timestamp_seconds", ())] == 1796007600.0
    assert [p.name for p in path.parent.iterdir()] == ["prebuild.prom"]  # written atomically


def test_nothing_built_has_no_ratio(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_textfile(path, {**DOC, "images": DOC["images"][2:], "exit_code": 0})
    got = samples(path)
    assert math.isnan(got[("prebuild_cache_hit_ratio", ())])
    assert got[("prebuild_last_success_timestamp_seconds", ())] == 1796094600.0
