"""`build --metrics FILE`: the run as a Prometheus textfile for node_exporter's collector.

Written with prometheus_client (its own exposition code, so escaping and the format are
Prometheus's), atomically: node_exporter may read the file at any moment. The last success
time survives failed runs: it is taken from the newest successful report in the history.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prebuild.report.document import cache_ratio, parse_time
from prebuild.report.results import OUTCOMES


def write_textfile(
    path: Path, doc: Mapping[str, Any], earlier: Iterable[Mapping[str, Any]] = ()
) -> None:
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, help_text, labelnames=labels, registry=registry)

    seconds = gauge("prebuild_image_build_seconds", "Build time of each image", ["image"])
    status = gauge(
        "prebuild_image_status", "1 for the image's status in the last run", ["image", "status"]
    )
    images = doc.get("images") or []
    for image in images:
        name = str(image.get("name"))
        seconds.labels(image=name).set(float(image.get("seconds") or 0))
        for outcome in (*OUTCOMES, "planned"):
            status.labels(image=name, status=outcome).set(int(image.get("status") == outcome))
    by_status = gauge("prebuild_images", "Images by status in the last run", ["status"])
    for outcome in OUTCOMES:
        by_status.labels(status=outcome).set(sum(1 for i in images if i.get("status") == outcome))
    ratio = cache_ratio(images)
    hits = gauge("prebuild_cache_hit_ratio", "Cached build steps / all steps of built images")
    hits.set(ratio if ratio is not None else float("nan"))
    storage = gauge("prebuild_storage_bytes", "Bytes stored per backend", ["backend"])
    for backend, size in (doc.get("storage") or {}).items():
        if size is not None:
            storage.labels(backend=backend).set(size)
    gauge("prebuild_run_seconds", "Wall time of the last run").set(float(doc.get("seconds") or 0))
    if (finished := parse_time(doc.get("finished"))) is not None:
        gauge("prebuild_last_run_timestamp_seconds", "End of the last run").set(
            finished.timestamp()
        )
    if (success := last_success(doc, earlier)) is not None:
        gauge(
            "prebuild_last_success_timestamp_seconds", "End of the last run where nothing failed"
        ).set(success)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # writes a temp file, then renames it


def last_success(doc: Mapping[str, Any], earlier: Iterable[Mapping[str, Any]]) -> float | None:
    for report in itertools.chain([doc], earlier):  # stops reading at the newest success
        if report.get("exit_code") == 0 and (when := parse_time(report.get("finished"))):
            return when.timestamp()
    return None
