"""The Markdown summary of a run: $GITHUB_STEP_SUMMARY and whoever reads the nightly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prebuild import sizes
from prebuild.report.why import FIRST_BUILD

ICON = {"built": "✅", "skipped": "⏭️", "failed": "❌", "blocked": "⛔", "planned": "📝"}


def human_bytes(size: int | None) -> str:
    """sizes.human_bytes, blank when the size is unknown."""
    return "" if size is None else sizes.human_bytes(size)


def why_text(image: Mapping[str, Any]) -> str:
    """`rebuilt: a changed; b added` for a built image, the reason otherwise."""
    why = image.get("why") or []
    if image.get("status") in ("built", "planned") and why:
        return why[0] if why == [FIRST_BUILD] else "rebuilt: " + "; ".join(why)
    return str(image.get("reason") or "")


def to_markdown(doc: Mapping[str, Any], *, title: str = "prebuild") -> str:
    lines = [
        f"### {title}",
        "",
        "| image | result | why | cache | time | size | ref |",
        "|---|---|---|---|---|---|---|",
    ]
    for image in doc.get("images") or []:
        steps = image.get("cache_steps") or 0
        cache = f"{image.get('cache_hits', 0)}/{steps}" if steps else ""
        status = str(image.get("status"))
        result = f"{ICON.get(status, '')} {status}"
        ref = image.get("ref") or "" if status in ("built", "skipped", "planned") else ""
        cells = [
            f"`{image.get('name')}`", result, _cell(why_text(image)), cache,
            f"{float(image.get('seconds') or 0):.0f}s", human_bytes(image.get("size")), _cell(ref),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    for image in doc.get("images") or []:
        if image.get("status") == "failed" and image.get("error_tail"):
            lines += ["", f"<details><summary>{image['name']}: last lines</summary>", "", "```"]
            lines += [*image["error_tail"], "```", "</details>"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
