"""`prebuild report --html FILE`: one self-contained page, the last nightly and the trends.

Everything is inline (CSS and SVG plots), nothing is fetched: the file can be attached to a CI
run, mailed or opened offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from prebuild.report.markdown import human_bytes, why_text
from prebuild.report.results import OUTCOMES

Doc = Mapping[str, Any]

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; white-space: nowrap; }
.status-built { color: #1a7f37; } .status-failed, .status-blocked { color: #cf222e; }
.status-skipped { color: #666; } .summary { color: #444; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
section.plot { border: 1px solid #eee; padding: 4px; }
"""


def _row(image: Doc) -> str:
    status = str(image.get("status"))
    steps = int(image.get("cache_steps") or 0)
    cache = f"{image.get('cache_hits') or 0}/{steps}" if steps else ""
    why = why_text(image)
    cells = [
        f"<td>{escape(str(image.get('name')))}</td>",
        f'<td class="status-{escape(status)}">{escape(status)}</td>',
        f"<td>{escape(why)}</td>",
        f'<td class="num">{float(image.get("seconds") or 0):.1f} s</td>',
        f'<td class="num">{cache}</td>',
        f'<td class="num">{escape(human_bytes(image.get("size")))}</td>',
    ]
    return f'<tr data-image="{escape(str(image.get("name")))}">{"".join(cells)}</tr>'


def _summary(doc: Doc) -> str:
    counts = doc.get("summary") or {}
    storage = doc.get("storage") or {}
    parts = [f"{counts.get(status, 0)} {status}" for status in OUTCOMES]
    parts.append(f"{float(doc.get('seconds') or 0):.1f} s wall time")
    parts.append(f"registry {human_bytes(storage.get('registry')) or 'not measured'}")
    if storage.get("s3") is not None:
        parts.append(f"S3 {human_bytes(storage.get('s3'))}")
    if doc.get("revision"):
        parts.append(f"revision {str(doc['revision'])[:12]}")
    return " · ".join(escape(p) for p in parts)


def _plot(plot_id: str, svg: str) -> str:
    return f'<section class="plot" id="plot-{plot_id}">{svg}</section>'


def render(docs: Sequence[Doc], *, where: str) -> str:
    """The page for the kept history `docs` (oldest first); the last one is 'the nightly'."""
    from prebuild.report import plots

    last = docs[-1]
    rows = "\n".join(_row(image) for image in last.get("images") or [])
    trends = "\n".join(_plot(pid, svg) for pid, svg in plots.trends(docs).items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>prebuild nightly {escape(str(last.get("started")))}</title>
<style>{CSS}</style></head>
<body>
<h1>prebuild nightly: {escape(str(last.get("started")))}</h1>
<p class="summary">{_summary(last)}</p>
<table id="images">
<thead><tr><th>image</th><th>status</th><th>why</th><th>duration</th><th>cache hits</th>
<th>size</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Build waves</h2>
<div class="plots">{_plot("timeline", plots.timeline(last))}</div>
<h2>Trends over the last {len(docs)} nights</h2>
<div class="plots">
{trends}
</div>
<p class="summary">history: {escape(where)}</p>
</body></html>
"""
