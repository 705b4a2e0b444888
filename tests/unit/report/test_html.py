"""The HTML page: self-contained, the last night's table, one point per night in every trend."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from prebuild.report.html import render


def night(n: int, *, s3: int | None = None) -> dict:
    return {
        "started": f"2026-11-{n + 1:02d}T03:00:00Z",
        "seconds": 60.0 + n,
        "summary": {"built": 1, "skipped": 1, "failed": 0, "blocked": 0},
        "storage": {"registry": 1_000_000 * (n + 1), "s3": s3},
        "images": [
            {"name": "base", "status": "built", "seconds": 30.0, "cache_hits": n,
             "cache_steps": 5, "why": ["ci/base/<setup>.sh changed"], "size": 2_000_000,
             "start_offset": 0.0, "wave": 0},
            {"name": "app", "status": "skipped", "seconds": 0.0, "reason": "present in registry",
             "start_offset": None, "wave": 1},
        ],
    }  # fmt: skip


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.rows: list[str] = []
        self.sections: dict[str, str] = {}
        self.remote: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attr = dict(attrs)
        if tag == "tr" and "data-image" in attr:
            self.rows.append(attr["data-image"])
        if tag == "section":
            self.sections[attr["id"]] = ""
        for name in ("src", "href"):
            if attr.get(name) and not str(attr[name]).startswith("#"):
                self.remote.append(str(attr[name]))


def dots(page: str, plot_id: str) -> list[int]:
    """Points drawn per series inside one plot's SVG."""
    section = page.split(f'id="plot-{plot_id}"', 1)[1].split("</section>", 1)[0]
    parts = re.split(r'<g class="series serie-(\d+)', section)[1:]  # pygal: several layers
    counts: dict[int, int] = {}
    for index, body in zip(parts[::2], parts[1::2], strict=True):
        counts[int(index)] = counts.get(int(index), 0) + len(re.findall(r'<circle[^>]*"dot', body))
    return [counts[i] for i in sorted(counts)]


def test_page_has_the_table_and_five_points_per_trend() -> None:
    page = render([night(n) for n in range(5)], where="dir")
    parsed = Collect()
    parsed.feed(page)
    assert parsed.rows == ["base", "app"]
    assert set(parsed.sections) == {
        "plot-timeline", "plot-duration", "plot-rebuilt", "plot-storage", "plot-cache"
    }  # fmt: skip
    assert parsed.remote == []  # nothing to fetch: no scripts, stylesheets or images by URL
    assert "rebuilt: ci/base/&lt;setup&gt;.sh changed" in page  # escaped
    assert dots(page, "duration") == [5, 5]
    assert dots(page, "rebuilt") == [5, 5]
    assert dots(page, "storage") == [5, 0]  # no S3 cache configured: no S3 points
    assert dots(page, "cache") == [5]


def test_s3_storage_is_plotted_when_measured() -> None:
    page = render([night(n, s3=500_000) for n in range(3)], where="dir")
    assert dots(page, "storage") == [3, 3]
