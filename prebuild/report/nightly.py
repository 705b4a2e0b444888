"""After a build run: say why each image rebuilt, measure storage, write every report, keep it.

Reporting never fails the build: a history or registry problem becomes a warning line, the
exit code stays the build's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prebuild.errors import PrebuildError
from prebuild.model import Project
from prebuild.outfiles import Target
from prebuild.plan.planner import Plan, make_client
from prebuild.report import document as docs
from prebuild.report import history, why
from prebuild.report.results import ImageResult, exit_code

REBUILT = ("built", "planned", "failed", "blocked")  # statuses whose report says why


@dataclass(frozen=True)
class Outputs:
    report: Path | None = None  # JSON
    summary: Path | None = None  # Markdown, appended
    metrics: Path | None = None  # Prometheus textfile
    keep_history: bool = True
    measure: bool = True  # storage and sizes (asks the registry and S3)


def finish(
    project: Project,
    plan: Plan,
    results: Sequence[ImageResult],
    outputs: Outputs,
    *,
    started: datetime,
    finished: datetime,
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """Annotate `results`, write the outputs, record the history; returns the document."""
    store = _store(project, warn) if project.settings.history.store != "none" else None
    earlier = _earlier(store, warn)
    by_name = plan.by_name()
    materials = {p.name: why.material_doc(p.material) for p in plan.images if p.material and p.key}
    previous = docs.previous_materials(earlier, set(materials))
    for result in results:
        if result.status in REBUILT and result.name in by_name:
            p = by_name[result.name]
            result.why = why.reasons(
                previous.get(result.name), materials.get(result.name),
                status=p.status, detail=p.reason,
            )  # fmt: skip
    storage: dict[str, int | None] = {"registry": None, "s3": None}
    if outputs.measure:
        storage = _measure(project, results, earlier, metrics=outputs.metrics is not None)
    doc = docs.document(
        results,
        started=started,
        finished=finished,
        materials=materials,
        depends_on=plan.dependency_map(),
        storage=storage,
        revision=_revision(project),
    )
    _write(doc, outputs, earlier)
    if store is not None and outputs.keep_history:
        try:
            history.record(project, store, doc, now=started)
        except PrebuildError as error:
            warn(f"report history not written to {store.where}: {error}")
    return doc


def record_storage(
    project: Project, storage: dict[str, int | None], *, warn: Callable[[str], None]
) -> None:
    """After the nightly's gc: its report in the history gets the storage gc left."""
    if project.settings.history.store == "none":
        return
    store = _store(project, warn)
    try:
        if store is not None:
            history.amend_latest(store, {"storage": storage, "storage_after": "gc"})
    except PrebuildError as error:
        warn(f"storage not recorded in the report history: {error}")


def _measure(
    project: Project,
    results: Sequence[ImageResult],
    earlier: Iterable[dict[str, Any]],
    *,
    metrics: bool,
) -> dict[str, int | None]:
    """Sizes of what was pushed (an image skipped keeps the size its key had), and storage.

    Measuring costs one request per tag, so it is avoided where the answer is known: when
    the nightly's gc runs next (`[gc] after_build`, only after a successful build) it
    measures for free while it inspects every tag (record_storage); when nothing was pushed,
    storage is what the newest report says (only a push or a gc changes it). Otherwise, and
    for the metrics file, which is written now, it is measured here.
    """
    from prebuild.report.storage import image_sizes, measure

    client = make_client(project)
    newest = next(iter(earlier), {})  # sizes are carried forward night after night
    known = {i.get("key"): i.get("size") for i in newest.get("images") or []}
    built = [r.ref for r in results if r.ref and r.status == "built"]
    sizes = image_sizes(client, built)
    for result in results:
        carried = known.get(result.key) if result.status == "skipped" else None
        result.size = sizes.get(result.ref or "", carried)
    if project.settings.gc_after_build and exit_code(results) == 0 and not metrics:
        return {"registry": None, "s3": None}
    last = newest.get("storage") or {}
    if not built and last.get("registry") is not None:
        return {"registry": last.get("registry"), "s3": last.get("s3")}
    return measure(project, client).as_json()


def _store(project: Project, warn: Callable[[str], None]) -> history.Store | None:
    try:
        return history.open_store(project)
    except PrebuildError as error:
        warn(f"report history unavailable: {error}")
        return None


class _Earlier:
    """The kept reports, newest first, read only as far as a reader goes (each read is a
    request or two: the usual night needs just the newest one)."""

    def __init__(self, store: history.Store | None, warn: Callable[[str], None]) -> None:
        self.store, self.warn = store, warn
        self.read: list[dict[str, Any]] = []
        self._rest: Iterator[tuple[str, dict[str, Any]]] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from list(self.read)
        if self.store is None:
            return
        try:
            if self._rest is None:
                self._rest = history.newest_first(self.store)
            for _, doc in self._rest:
                self.read.append(doc)
                yield doc
        except PrebuildError as error:
            self.warn(f"report history not read from {self.store.where}: {error}")
        self.store = None  # read to the end (or failed): nothing more to fetch


def _earlier(store: history.Store | None, warn: Callable[[str], None]) -> _Earlier:
    return _Earlier(store, warn)


def _targets(outputs: Outputs) -> list[tuple[str, Target]]:
    found = []
    if outputs.report is not None:
        found.append(("report", Target(outputs.report, "--report", append=False)))
    if outputs.summary is not None:  # $GITHUB_STEP_SUMMARY is appended to
        found.append(("summary", Target(outputs.summary, "--summary", append=True)))
    if outputs.metrics is not None:
        found.append(("metrics", Target(outputs.metrics, "--metrics", append=False, mkdir=True)))
    return found


def check(outputs: Outputs) -> None:
    """Raise a UsageError (exit 2) now for an output `finish` could not write: called before
    the build, so a run that could not report pushes nothing."""
    for _, target in _targets(outputs):
        target.check()


def _write(doc: dict[str, Any], outputs: Outputs, earlier: Iterable[dict[str, Any]]) -> None:
    """The report is replaced whole (temp file + rename), the summary appended in one write,
    the metrics written by prometheus_client (which also renames a temp file)."""
    for kind, target in _targets(outputs):
        if kind == "report":
            target.write(docs.to_json(doc) + "\n")
        elif kind == "summary":
            from prebuild.report.markdown import to_markdown

            target.write(to_markdown(doc))
        else:
            from prebuild.report.metrics import write_textfile

            try:
                write_textfile(target.path, doc, earlier)
            except OSError as error:
                raise target.error(error.strerror or str(error)) from None


def _revision(project: Project) -> str | None:
    from prebuild.build import revision

    return revision.revision(project.repo_root)
