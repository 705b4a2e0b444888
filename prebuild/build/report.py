"""Build reports: JSON for machines, Markdown for $GITHUB_STEP_SUMMARY and humans."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Outcome = Literal["built", "skipped", "failed", "blocked", "planned"]


@dataclass
class ImageResult:
    name: str
    status: Outcome
    key: str | None = None
    ref: str | None = None
    seconds: float = 0.0
    cache_hits: int = 0
    cache_steps: int = 0
    reason: str = ""
    error_tail: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)


def exit_code(results: Sequence[ImageResult]) -> int:
    return 1 if any(r.status in ("failed", "blocked") for r in results) else 0


def to_json(results: Sequence[ImageResult]) -> str:
    counts = {
        s: sum(1 for r in results if r.status == s)
        for s in ("built", "skipped", "failed", "blocked")
    }
    return json.dumps({"summary": counts, "images": [asdict(r) for r in results]}, indent=2)


def to_markdown(results: Sequence[ImageResult], *, title: str = "prebuild") -> str:
    icon = {"built": "✅", "skipped": "⏭️", "failed": "❌", "blocked": "⛔", "planned": "📝"}
    lines = [
        f"### {title}",
        "",
        "| image | result | cache | time | ref / reason |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cache = f"{r.cache_hits}/{r.cache_steps}" if r.cache_steps else ""
        detail = r.reason if r.status in ("failed", "blocked") else (r.ref or r.reason)
        result = f"{icon.get(r.status, '')} {r.status}"
        lines.append(f"| `{r.name}` | {result} | {cache} | {r.seconds:.0f}s | {_cell(detail)} |")
    failed = [r for r in results if r.status == "failed" and r.error_tail]
    for r in failed:
        lines += ["", f"<details><summary>{r.name}: last lines</summary>", "", "```"]
        lines += [*r.error_tail, "```", "</details>"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(results: Sequence[ImageResult], *, report: Path | None, summary: Path | None) -> None:
    if report is not None:
        report.write_text(to_json(results) + "\n")
    if summary is not None:
        with open(summary, "a") as handle:  # $GITHUB_STEP_SUMMARY is appended to
            handle.write(to_markdown(results))
