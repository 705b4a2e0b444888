"""The report of a build stopped by Ctrl-C or SIGTERM: written from the signal handler.

It must be quick and must not touch the network (the registry may be what hangs): no history,
no storage measurement, no "why". What finished keeps its result; every other planned image
is `interrupted` (a build that had started was killed before its push).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from prebuild.outfiles import Target
from prebuild.report import document as docs
from prebuild.report.nightly import Outputs
from prebuild.report.results import ImageResult

Planned = tuple[str, str | None, str | None]  # (name, key, ref)


def results(
    planned: Sequence[Planned], done: Mapping[str, ImageResult], signal_name: str
) -> list[ImageResult]:
    why = f"interrupted by {signal_name} before this image finished"
    return [
        done.get(name) or ImageResult(name, "interrupted", key=key, ref=ref, reason=why)
        for name, key, ref in planned
    ]


def write(
    planned: Sequence[Planned],
    done: Mapping[str, ImageResult],
    outputs: Outputs,
    *,
    signal_name: str,
    started: datetime,
) -> None:
    rows = results(planned, done, signal_name)
    doc = docs.document(
        rows,
        started=started,
        finished=datetime.now(UTC),
        materials={},
        depends_on={},
        storage={"registry": None, "s3": None},
    )
    doc["interrupted"] = signal_name
    doc["exit_code"] = 1
    doc["summary"]["interrupted"] = sum(1 for r in rows if r.status == "interrupted")
    if outputs.report is not None:
        Target(outputs.report, "--report", append=False).write(docs.to_json(doc) + "\n")
    if outputs.summary is not None:
        from prebuild.report.markdown import to_markdown

        title = f"prebuild (interrupted by {signal_name})"
        Target(outputs.summary, "--summary", append=True).write(to_markdown(doc, title=title))
